"""The metric registry: names, metadata (pyiqa-style), and the modules `create_metric` builds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from psychofeat import bundled
from psychofeat.classic import psnr, ssim
from psychofeat.errors import InputError, UnknownNameError
from psychofeat.metrics_registry import create_metric, list_metrics, metric_info


def _expected_k(n: int, fraction: float) -> int:
    return max(1, int(round(fraction * n)))


def test_names_cover_every_bundled_network() -> None:
    names = list_metrics()
    assert bundled.bundled_models(), "no bundled selection: run scripts/bundle_selections.py"
    for model in bundled.bundled_models():
        for suffix in ("pe-top25", "pe-bottom25", "all"):
            assert f"{model}-{suffix}" in names
    assert list_metrics("classic") == ["psnr", "ssim"]
    assert set(list_metrics("deep")) | {"psnr", "ssim"} == set(names)
    with pytest.raises(InputError, match="kind must be"):
        list_metrics("fr")


def test_listing_does_not_import_torch() -> None:
    code = ("import sys, psychofeat; psychofeat.list_metrics(); psychofeat.metric_info('vgg16-pe-top25'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_deep_metadata_matches_the_bundled_selection() -> None:
    sel = bundled.load_bundled("vgg16")
    info = metric_info("vgg16-pe-top25")
    assert info.lower_better and info.kind == "deep" and info.network == "vgg16"
    assert info.input_range == (0.0, 1.0)
    from psychofeat.metric import MIN_SIZE

    assert info.min_size == MIN_SIZE  # the registry states it without importing torch: keep the two in step
    assert info.weights["params_sha256"] == sel.weights["params_sha256"]
    assert list(info.channels) == sel.layers
    assert info.channels == {k: _expected_k(n, 0.25) for k, n in sel.n_channels.items()}
    assert info.n_channels == sum(info.channels.values())
    assert metric_info("vgg16-pe-bottom25").channels == info.channels
    assert metric_info("vgg16-all").channels == sel.n_channels
    assert metric_info("vgg16-all").n_channels == 4224  # the 13 ReLU layers of VGG-16
    assert info.to_dict()["n_channels"] == info.n_channels


def test_classic_metadata() -> None:
    assert not metric_info("psnr").lower_better and not metric_info("ssim").lower_better
    from psychofeat.classic import SSIM_WIN

    assert metric_info("ssim").min_size == SSIM_WIN and metric_info("psnr").network is None


def test_unknown_metric_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: vgg16-pe-top25"):
        metric_info("vgg16-pe-top52")
    with pytest.raises(UnknownNameError):
        create_metric("lpips")


def test_classic_modules_equal_the_functions() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 24, 24, generator=g), torch.rand(2, 3, 24, 24, generator=g)
    m = create_metric("psnr")
    assert m.lower_better is False and m.info.name == "psnr"
    torch.testing.assert_close(m(x, y), psnr(x, y))
    torch.testing.assert_close(create_metric("ssim")(x, y), ssim(x, y))
    with pytest.raises(InputError, match="not a loss"):
        create_metric("psnr", as_loss=True)


def test_create_deep_metric_and_loss(vgg16_imagenet) -> None:  # noqa: ANN001
    from psychofeat.loss import PerceptualLoss
    from psychofeat.metric import PerceptualDistance

    metric = create_metric("vgg16-pe-top25")
    assert metric.lower_better is True and metric.info.network == "vgg16"
    want = bundled.load_bundled("vgg16")
    for layer in want.layers:
        np.testing.assert_array_equal(metric.selection.channels[layer], want.channels[layer])
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 40, 40, generator=g), torch.rand(2, 3, 40, 40, generator=g)
    reference = PerceptualDistance(vgg16_imagenet, selection=want, reduction="none")
    with torch.no_grad():
        torch.testing.assert_close(metric(x, y), reference(x, y), rtol=1e-5, atol=1e-8)

    bottom = create_metric("vgg16-pe-bottom25")
    expected = want.select("bottom", 0.25)
    for layer in want.layers:
        np.testing.assert_array_equal(bottom.selection.channels[layer], expected.channels[layer])
    loss = create_metric("vgg16-pe-top25", as_loss=True, pixel_weight=1.0)
    assert isinstance(loss, PerceptualLoss) and loss.pixel_weight == 1.0
