"""`psychofeat layers`: the table, the model list, and clean refusals (exit code 2, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from psychofeat.backbones.squeezenet import SqueezeNet11
from psychofeat.cli import main


def test_lists_squeezenet_layers_with_channels_and_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "squeezenet1_1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    # 224 px: conv1 3x3/2 -> 111; ceil-mode pools -> 55, 27, 13; conv10 pads by 1 -> 15
    assert rows["relu1"] == ["features.1", "64", "111x111", "*"]
    assert rows["fire2"] == ["features.3", "128", "55x55", "*"]
    assert rows["fire2_expand3x3"] == ["features.3.expand3x3", "64", "55x55"]
    assert rows["fire9"] == ["features.12", "512", "13x13", "*"]
    assert rows["conv10"] == ["classifier.1", "1000", "15x15"]
    assert "weights random:0" in out.splitlines()[0]


def test_size_option_changes_spatial_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "efficientnet_lite0", "--size", "64"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["stem"] == ["_stem_act", "32", "32x32", "*"]
    assert rows["head"] == ["_head_act", "1280", "2x2", "*"]


def test_without_model_lists_the_networks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    assert all(m in out for m in ("vgg16", "squeezenet1_1", "efficientnet_lite0", "torchvision:<name>"))


def test_unknown_model_exits_2_listing_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "alexnet"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'alexnet'" in err and "squeezenet1_1" in err and "Traceback" not in err


def test_wrong_architecture_weights_exit_2_naming_the_parameter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.save(SqueezeNet11().state_dict(), tmp_path / "squeezenet.pth")
    assert main(["layers", "vgg16", "--weights", str(tmp_path / "squeezenet.pth")]) == 2
    assert "'features.2.weight'" in capsys.readouterr().err
