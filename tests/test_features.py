"""Feature extraction: early exit at the deepest requested layer, in-place safety, any nn.Module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from psychofeat.backbones import from_module, load_backbone
from psychofeat.errors import InputError, UnknownNameError
from psychofeat.features import FeatureExtractor


def test_stops_at_deepest_requested_layer() -> None:
    b = load_backbone("vgg16", "random")
    calls: list[str] = []
    for name, m in b.net.features.named_children():
        m.register_forward_hook(lambda *_a, n=name: calls.append(n))
    feats = FeatureExtractor(b, ["relu2_2", "relu1_1"])(torch.rand(1, 3, 32, 32))
    assert list(feats) == ["relu2_2", "relu1_1"]
    assert calls[-1] == "8"  # relu2_2 is features.8: nothing after it ran
    assert feats["relu1_1"].shape == (1, 64, 32, 32) and feats["relu2_2"].shape == (1, 128, 16, 16)


def test_captured_conv_output_is_not_clobbered_by_inplace_relu() -> None:
    b = load_backbone("vgg16", "random")
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        feats = FeatureExtractor(b, ["conv1_1", "relu1_1"])(x)
    direct = b.net.features[0](b.preprocess(x))
    assert torch.allclose(feats["conv1_1"], direct, atol=1e-5)
    assert (feats["conv1_1"] < 0).any()  # pre-ReLU values survived
    assert torch.allclose(feats["relu1_1"], direct.clamp_min(0), atol=1e-5)


def test_any_module_with_dotted_paths() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(4, 5, 3), nn.ReLU()))
    b = from_module(net, ["0", "2.1"])
    feats = FeatureExtractor(b, ["2.1"])(torch.rand(1, 3, 16, 16))
    assert feats["2.1"].shape == (1, 5, 12, 12)
    assert b.layer_channels() == {"0": 4, "2.1": 5}
    with pytest.raises(UnknownNameError, match="2.1"):
        b.resolve_layer("2.2")


def test_layer_that_never_runs_is_reported() -> None:
    class Skips(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 2, 1)
            self.unused = nn.Conv2d(2, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.a(x)

    b = from_module(Skips(), ["a", "unused"])
    with pytest.raises(InputError, match="never executed"):
        FeatureExtractor(b, ["unused"])(torch.rand(1, 3, 8, 8))
