"""torchvision:/timm: models (with fake packages injected), from_module, and the registry's refusals."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from psychofeat.backbones import from_module, load_backbone
from psychofeat.backbones.base import TORCHVISION
from psychofeat.backbones.external import MissingPackageError, trace_layers
from psychofeat.backbones.squeezenet import SqueezeNet11
from psychofeat.errors import InputError, UnknownNameError, WeightsError
from psychofeat.features import FeatureExtractor


class TinyNet(nn.Module):
    """A stem, a Sequential of two blocks, a module reused twice, and a 2-D head: every case the tracer sorts."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.Conv2d(6, 8, 3, stride=2, padding=1))
        self.act = nn.ReLU()  # called twice
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem(x))
        x = self.act(self.body(x))
        return self.fc(torch.flatten(self.pool(x), 1))


@pytest.fixture
def fake_torchvision(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    tv = types.ModuleType("torchvision")
    tv.models = types.SimpleNamespace(  # type: ignore[attr-defined]
        list_models=lambda: ["tinynet", "resnet18"],
        get_model=lambda name, weights=None: TinyNet(),
    )
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    return tv


def test_torchvision_model_with_random_weights(fake_torchvision: types.ModuleType) -> None:
    b = load_backbone("torchvision:tinynet", weights="random:2")
    again = load_backbone("torchvision:tinynet", weights="random:2")
    assert b.weights_info.source == "random:2" and b.weights_info.params_sha256 == again.weights_info.params_sha256
    assert b.preprocessing == TORCHVISION
    assert b.layer_names() == ["stem", "body", "body.0", "body.1"]  # 4-D, spatial, run once: not act/pool/fc
    assert b.default_layers == ["stem", "body.0", "body.1"]
    assert b.layer_channels() == {"stem": 4, "body": 8, "body.0": 6, "body.1": 8}


def test_torchvision_model_from_a_weights_file(fake_torchvision: types.ModuleType, tmp_path: Path) -> None:
    src = TinyNet()
    torch.save(src.state_dict(), tmp_path / "tiny.pth")
    b = load_backbone("torchvision:tinynet", weights=tmp_path / "tiny.pth")
    assert b.weights_info.source == "file" and b.weights_info.sha256 is not None
    torch.testing.assert_close(b.net.stem.weight, src.stem.weight)
    torch.save(SqueezeNet11().state_dict(), tmp_path / "squeeze.pth")
    with pytest.raises(WeightsError, match="parameter 'stem.weight'"):
        load_backbone("torchvision:tinynet", weights=tmp_path / "squeeze.pth")


def test_external_needs_explicit_weights_and_known_names(fake_torchvision: types.ModuleType) -> None:
    with pytest.raises(InputError, match="--weights PATH"):
        load_backbone("torchvision:tinynet")
    with pytest.raises(UnknownNameError, match="tinynet"):
        load_backbone("torchvision:tinynett", weights="random")


def test_missing_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(MissingPackageError, match="pip install timm"):
        load_backbone("timm:resnet18", weights="random")


def test_timm_model_uses_its_recorded_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    def create_model(name: str, pretrained: bool = False) -> nn.Module:
        net = TinyNet()
        net.pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}  # type: ignore[assignment]
        return net

    timm = types.ModuleType("timm")
    timm.list_models = lambda: ["tinynet"]  # type: ignore[attr-defined]
    timm.create_model = create_model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "timm", timm)
    b = load_backbone("timm:tinynet", weights="random:0")
    assert (b.preprocessing.mean, b.preprocessing.std) == ((0.5,) * 3, (0.5,) * 3)
    assert b.preprocessing.channel_order == "RGB"


def test_trace_counts_reused_modules() -> None:
    traced = trace_layers(TinyNet(), size=32)
    assert traced["act"].calls == 2 and not traced["act"].probeable
    assert traced["body.1"].shape == (1, 8, 8, 8) and traced["fc"].shape == (1, 5)


def test_from_module_wraps_any_module() -> None:
    net = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 0, -1.0]]).view(2, 3, 1, 1))
    b = from_module(net, ["0", "1"])
    x = torch.rand(1, 3, 8, 8)
    f = FeatureExtractor(b, ["1"])(x)
    normed = (x - torch.tensor(TORCHVISION.mean).view(1, 3, 1, 1)) / torch.tensor(TORCHVISION.std).view(1, 3, 1, 1)
    torch.testing.assert_close(f["1"], torch.stack([normed[:, 0], -normed[:, 2]], 1).clamp_min(0))
    assert b.layer_channels() == {"0": 2, "1": 2} and b.weights_info.source == "module"


def test_unknown_model_lists_available_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        load_backbone("squeezenet1_0")
    msg = str(err.value)
    assert "Did you mean: squeezenet1_1" in msg
    assert all(m in msg for m in ("efficientnet_lite0", "squeezenet1_1", "vgg16"))


def test_wrong_architecture_file_names_first_mismatching_parameter(tmp_path: Path) -> None:
    torch.save(SqueezeNet11().state_dict(), tmp_path / "squeezenet.pth")
    # features.0 has the same shape in both networks; VGG's next convolution is features.2, a pool in SqueezeNet
    with pytest.raises(WeightsError, match=r"parameter 'features\.2\.weight' \(shape \(64, 64, 3, 3\)\) is missing"):
        load_backbone("vgg16", weights=tmp_path / "squeezenet.pth")
