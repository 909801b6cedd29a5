"""Precision chosen for the machine (`dtype="auto"`), the machine record, and the one 8-bit quantisation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from psychofeat import machine, precision
from psychofeat.classic import quantize_uint8
from psychofeat.errors import InputError
from psychofeat.images import dequantize, load_image_uint8, quantize, save_image


@pytest.fixture
def cpu_flags(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Pretend the CPU has the given feature flags (and forget an earlier bf16 warning)."""

    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(machine, "_cpuinfo", lambda: ("Test CPU", frozenset(flags)))
        monkeypatch.setattr(precision, "_warned", set())

    return set_flags


@pytest.mark.parametrize(("flags", "native"), [(("avx2", "fma"), False), (("avx512f", "avx512_bf16"), True),
                                               (("avx512f", "amx_tile", "amx_bf16"), True), ((), False)])
def test_native_bf16_is_read_from_the_cpu_flags(cpu_flags, flags: tuple[str, ...], native: bool) -> None:  # noqa: ANN001
    cpu_flags(*flags)
    assert machine.native_bf16() is native
    assert precision.resolve_dtype("auto", "cpu") == (torch.bfloat16 if native else torch.float32)


def test_explicit_bf16_on_an_emulating_cpu_runs_and_warns_once(cpu_flags, caplog) -> None:  # noqa: ANN001
    cpu_flags("avx2")
    with caplog.at_level(logging.WARNING, logger="psychofeat"):
        assert precision.resolve_dtype("bfloat16", "cpu") == torch.bfloat16
        assert precision.resolve_dtype("bf16", "cpu") == torch.bfloat16
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "emulated" in msgs[0] and "slower than float32" in msgs[0] and "Test CPU" in msgs[0]
    assert "\n" not in msgs[0]


def test_bf16_on_a_native_cpu_is_silent(cpu_flags, caplog) -> None:  # noqa: ANN001
    cpu_flags("amx_bf16")
    with caplog.at_level(logging.WARNING, logger="psychofeat"):
        assert precision.resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    assert not caplog.records


def test_unknown_dtype_names_the_choices() -> None:
    with pytest.raises(InputError, match="auto, float32, bfloat16, float16"):
        precision.resolve_dtype("float8")
    with pytest.raises(InputError, match="unknown dtype"):
        precision.check_dtype("half-ish")


def test_auto_on_other_devices_is_fp32_unless_supported() -> None:
    assert precision.auto_dtype("meta") == torch.float32
    if not torch.cuda.is_available():
        assert precision.auto_dtype("cuda") == torch.float32


def test_machine_record_and_cpu_line(cpu_flags) -> None:  # noqa: ANN001
    cpu_flags("avx2")
    d = machine.describe()
    assert {"cpu_model", "cpu_capability", "native_bf16", "threads", "torch"} <= d.keys()
    assert d["cpu_model"] == "Test CPU" and d["native_bf16"] is False
    assert d["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    line = machine.cpu_line(d)
    assert line.startswith("CPU: Test CPU") and "native bf16: no" in line and d["cpu_capability"] in line


def test_every_manifest_records_the_machine() -> None:
    from psychofeat.io import provenance

    m = provenance(kind="test")["machine"]
    assert m["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert m["threads"] == torch.get_num_threads() and m["torch"] == torch.__version__


# ------------------------------------------------------------------------------------------------- quantisation
def _half_levels() -> torch.Tensor:
    """float32 values at (k + 0.5) / 255, where float32 and float64 rounding of x·255 disagree for many k."""
    return ((torch.arange(255, dtype=torch.float64) + 0.5) / 255).float()


def test_float32_rounding_alone_would_disagree_here() -> None:
    """Why one function: rounding x·255 in float32 and in float64 gives different levels for these inputs."""
    x = _half_levels()
    assert (x.mul(255.0).round() != x.double().mul(255.0).round().float()).any()


def test_saved_png_holds_exactly_what_is_scored(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([_half_levels(), torch.rand(3 * 16 * 16 - 255, generator=g), torch.tensor([-0.2, 1.3])])
    x = x[: 3 * 16 * 16].reshape(1, 3, 16, 16)
    q = quantize(x)
    assert q.dtype == torch.uint8 and q.shape == x.shape
    saved = load_image_uint8(save_image(x, tmp_path / "x.png"))
    np.testing.assert_array_equal(saved, q[0].permute(1, 2, 0).numpy())
    # the classic metrics' quantisation is the same function, in float
    assert torch.equal(quantize_uint8(x.double()).mul(255.0).round().to(torch.uint8), q)
    assert torch.equal(quantize_uint8(x), dequantize(q))
    assert torch.equal(dequantize(q, torch.float64).mul(255.0).round().to(torch.uint8), q)


def test_quantize_clamps_and_rounds_half_to_even() -> None:
    x = torch.tensor([-1.0, 0.0, 0.5 / 255, 1.5 / 255, 254.5 / 255, 1.0, 2.0], dtype=torch.float64)
    assert quantize(x).tolist() == [0, 0, 0, 2, 254, 255, 255]
    with pytest.raises(InputError, match="uint8"):
        dequantize(torch.zeros(2))


# ----------------------------------------------------------------------------------------------- invert default
def test_invert_default_dtype_is_auto_and_the_manifest_says_what_ran(tmp_path: Path, cpu_flags) -> None:  # noqa: ANN001
    import test_invert as ti

    from psychofeat.experiments.invert_experiment import InvertConfig
    from psychofeat.experiments.invert_report import run_invert

    assert InvertConfig().dtype == "auto"
    cpu_flags("avx2")  # a CPU without native bf16
    folder = tmp_path / "imgs"
    for s in range(2):
        save_image(ti.smooth_image(40, s), folder / f"im{s}.png")
    cfg = InvertConfig(selection=str(ti._synthetic_selection(tmp_path / "sel.json")), model="deadnet", layers=("1",),
                       seeds=1, steps=2, size=32, n_images=2, images=str(folder), perceptual=(), n_boot=20,
                       report_images=1)
    res = run_invert(cfg, tmp_path / "out", backbone=ti.dead_channel_backbone(), progress=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["dtype"] == "float32" and manifest["budget"]["dtype"] == "float32"
    assert manifest["dtype_requested"] == "auto" and manifest["machine"]["native_bf16"] is False
    assert res.info["config"]["dtype"] == "float32"
