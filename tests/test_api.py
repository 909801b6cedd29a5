"""The top-level API: lazy names, the version, and inputs of any float dtype."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from torch import nn

import psychofeat
from psychofeat.backbones import from_module
from psychofeat.errors import InputError
from psychofeat.loss import PerceptualLoss
from psychofeat.metric import PerceptualDistance

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light() -> None:
    """`import psychofeat` (what `psychofeat --help` pays) must not import torch, pandas or matplotlib."""
    code = "import sys, psychofeat; print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", [n for n in psychofeat.__all__ if n != "__version__"])
def test_lazy_names_are_the_submodules_objects(name: str) -> None:
    obj = getattr(psychofeat, name)
    assert obj is getattr(importlib.import_module(psychofeat._LAZY[name]), name)
    assert name in dir(psychofeat)


def test_documented_one_line_imports() -> None:
    from psychofeat import PerceptualDistance as PD
    from psychofeat import PerceptualLoss, Selection, analyze, load_backbone, perceptual_distance  # noqa: F401

    assert PD is PerceptualDistance


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        psychofeat.nope  # noqa: B018


def test_version_matches_pyproject() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert psychofeat.__version__ == meta["project"]["version"]


def test_cli_version() -> None:
    out = subprocess.run([sys.executable, "-m", "psychofeat", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"psychofeat {psychofeat.__version__}"


# -- inputs in float16 / float64: cast, same value as float32 ---------------------------------------------------
@pytest.fixture(scope="module")
def tiny_backbone():  # noqa: ANN201
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()).eval()
    return from_module(net, layers=["1", "3"])


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 40, 40, generator=g)
    return x, (x + 0.1 * torch.rand(2, 3, 40, 40, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_metric_accepts_any_float_dtype(tiny_backbone, dtype: torch.dtype) -> None:  # noqa: ANN001
    metric = PerceptualDistance(tiny_backbone, reduction="none")
    x, y = _pair()
    ref = metric(x.to(dtype).float(), y.to(dtype).float())  # the same values, already in float32
    got = metric(x.to(dtype), y.to(dtype))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-7)
    cached = metric(x.to(dtype), ref=metric.reference(y.to(dtype)))
    torch.testing.assert_close(cached, ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_loss_accepts_any_float_dtype_and_backpropagates(tiny_backbone, dtype: torch.dtype) -> None:  # noqa: ANN001
    loss = PerceptualLoss(tiny_backbone, pixel_weight=1.0)
    x, y = _pair()
    pred = x.to(dtype).requires_grad_(True)
    value = loss(pred, y.to(dtype))
    torch.testing.assert_close(value, loss(x.to(dtype).float(), y.to(dtype).float()), rtol=1e-5, atol=1e-7)
    value.backward()
    assert pred.grad is not None and pred.grad.dtype == dtype and torch.isfinite(pred.grad.float()).all()


def test_integer_and_complex_inputs_still_refused(tiny_backbone) -> None:  # noqa: ANN001
    metric = PerceptualDistance(tiny_backbone)
    x, y = _pair()
    with pytest.raises(InputError, match="uint8"):
        metric((x * 255).to(torch.uint8), y)
    with pytest.raises(InputError, match="dtype"):
        metric(x.to(torch.complex64), y)
