"""The all-channel normalized metric against an independent implementation: the `lpips` package's baseline.

`lpips.LPIPS(net="vgg", lpips=False)` is LPIPS without its learned linear layers: channel-unit-normalised
features of the same five VGG-16 layers (relu1_2 ... relu5_3), squared differences summed over channels,
averaged over positions, summed over layers. psychofeat's `mode="normalized"` over those layers is the same
arithmetic with layer weights 1/5 (and ε inside the square root instead of beside it), so with the same conv
weights and the same input scaling (lpips' ScalingLayer is torchvision's ImageNet mean/std) they must agree.

`lpips` needs torchvision, which the project's CPU-only environment does not install: this test runs in the
benchmark environment (benchmarks/requirements.txt) and is skipped elsewhere.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

lpips = pytest.importorskip("lpips", reason="the lpips package (and torchvision) is not installed; "
                                            "see benchmarks/requirements.txt")

from psychofeat.backbones import load_backbone  # noqa: E402
from psychofeat.errors import WeightsError  # noqa: E402
from psychofeat.metric import PerceptualDistance  # noqa: E402

LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]


def _lpips_baseline(backbone: torch.nn.Module, spatial: bool = False) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="vgg", lpips=False, pnet_rand=True, spatial=spatial, verbose=False)
    features = backbone.net.features
    with torch.no_grad():
        for name, p in model.net.named_parameters():
            _slice, idx, kind = name.split(".")  # slice1.0.weight: idx is torchvision's features index
            p.copy_(getattr(features[int(idx)], kind))
    return model.eval()


def _pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth images and distorted versions (noise, blur, a shift in brightness), N×3×H×W in [0, 1]."""
    g = torch.Generator().manual_seed(0)
    base = F.interpolate(torch.rand(4, 3, 12, 16, generator=g), size=(72, 96), mode="bicubic", align_corners=False)
    y = base.clamp(0, 1)
    noisy = (y + 0.05 * torch.randn(y.shape, generator=g)).clamp(0, 1)
    blurred = F.avg_pool2d(F.pad(y, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    brighter = (y + 0.1).clamp(0, 1)
    x = torch.cat([noisy[:2], blurred[2:3], brighter[3:]])
    return x, y


@pytest.mark.parametrize("weights", ["random:0", "imagenet"])
def test_normalized_metric_equals_lpips_baseline(weights: str) -> None:
    # ImageNet's Caffe weights are fed lpips' (torchvision) scaling here: the check is of the arithmetic.
    try:
        backbone = load_backbone("vgg16", weights, preprocessing="torchvision")
    except WeightsError as exc:
        pytest.skip(f"VGG-16 {weights} weights not available: {exc}")
    reference = _lpips_baseline(backbone)
    metric = PerceptualDistance(backbone, layers=LAYERS, mode="normalized", reduction="none")
    x, y = _pairs()
    with torch.no_grad():
        ref_total, ref_layers = reference(x, y, retPerLayer=True, normalize=True)
        out = metric(x, y, per_layer=True)
    torch.testing.assert_close(out.distance * len(LAYERS), ref_total.flatten(), rtol=1e-5, atol=1e-8)
    for k, layer in enumerate(LAYERS):
        torch.testing.assert_close(out.per_layer[layer], ref_layers[k].flatten(), rtol=1e-5, atol=1e-8)


def test_spatial_map_equals_lpips_baseline() -> None:
    backbone = load_backbone("vgg16", "random:0", preprocessing="torchvision")
    reference = _lpips_baseline(backbone, spatial=True)
    metric = PerceptualDistance(backbone, layers=LAYERS, layer_weights=dict.fromkeys(LAYERS, 1.0),
                                reduction="none")
    x, y = _pairs()
    with torch.no_grad():
        ref_map = reference(x, y, normalize=True)
        out = metric(x, y, spatial=True)
    torch.testing.assert_close(out.spatial, ref_map, rtol=1e-5, atol=1e-7)
