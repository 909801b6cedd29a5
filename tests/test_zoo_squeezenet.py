"""SqueezeNet 1.1: torchvision-compatible names, faithful layer outputs, the ncnn import paths, and verification."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from psychofeat.backbones import load_backbone
from psychofeat.backbones import squeezenet as sq
from psychofeat.backbones.verify import REFERENCE_IMAGES, verify_classifier
from psychofeat.errors import WeightsError
from psychofeat.features import FeatureExtractor
from psychofeat.weights.cache import read_manifest

# torchvision.models.squeezenet1_1(): features index -> Fire(in, squeeze, expand1x1, expand3x3), from torchvision's
# source (torchvision is not installed here)
TORCHVISION_FIRES = {
    3: (64, 16, 64, 64), 4: (128, 16, 64, 64), 6: (128, 32, 128, 128), 7: (256, 32, 128, 128),
    9: (256, 48, 192, 192), 10: (384, 48, 192, 192), 11: (384, 64, 256, 256), 12: (512, 64, 256, 256),
}  # fmt: skip
TORCHVISION_SHAPES = {"features.0.weight": (64, 3, 3, 3), "features.0.bias": (64,)}
for _idx, (_cin, _s, _e1, _e3) in TORCHVISION_FIRES.items():
    TORCHVISION_SHAPES |= {
        f"features.{_idx}.squeeze.weight": (_s, _cin, 1, 1), f"features.{_idx}.squeeze.bias": (_s,),
        f"features.{_idx}.expand1x1.weight": (_e1, _s, 1, 1), f"features.{_idx}.expand1x1.bias": (_e1,),
        f"features.{_idx}.expand3x3.weight": (_e3, _s, 3, 3), f"features.{_idx}.expand3x3.bias": (_e3,),
    }  # fmt: skip
TORCHVISION_SHAPES |= {"classifier.1.weight": (1000, 512, 1, 1), "classifier.1.bias": (1000,)}


def test_parameter_names_match_torchvision() -> None:
    state = sq.SqueezeNet11().state_dict()
    assert [k for k in state] == list(TORCHVISION_SHAPES)
    assert {k: tuple(v.shape) for k, v in state.items()} == TORCHVISION_SHAPES


def test_every_named_layer_is_the_right_tensor() -> None:
    b = load_backbone("squeezenet1_1", weights="random:0")
    x = torch.rand(1, 3, 96, 96)
    f = FeatureExtractor(b, b.layer_names())(x)
    # recompute from the modules by hand, without hooks
    net = b.net
    h = b.preprocess(x)
    conv1 = net.features[0](h)
    torch.testing.assert_close(f["conv1"], conv1)
    torch.testing.assert_close(f["relu1"], conv1.clamp_min(0))
    fire2 = net.features[3]
    s = fire2.squeeze(f["pool1"])
    torch.testing.assert_close(f["fire2_squeeze"], s)
    torch.testing.assert_close(f["fire2_relu_squeeze"], s.clamp_min(0))
    e1 = fire2.expand1x1(s.clamp_min(0)).clamp_min(0)
    e3 = fire2.expand3x3(s.clamp_min(0)).clamp_min(0)
    torch.testing.assert_close(f["fire2_relu_expand1x1"], e1)
    torch.testing.assert_close(f["fire2"], torch.cat([e1, e3], 1))
    assert {n: f[n].shape[1] for n in sq.DEFAULT_LAYERS} == {
        "relu1": 64, "fire2": 128, "fire3": 128, "fire4": 256, "fire5": 256, "fire6": 384, "fire7": 384,
        "fire8": 512, "fire9": 512,
    }  # fmt: skip
    assert f["relu10"].shape[1] == 1000 and f["pool10"].shape[-2:] == (1, 1)


@pytest.fixture(scope="module")
def ncnn_dir(squeezenet_ncnn_dir: Path) -> Path:
    return squeezenet_ncnn_dir


@pytest.fixture(scope="module")
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture(scope="module")
def pretrained(ncnn_dir: Path, home: Path):  # type: ignore[no-untyped-def]
    return load_backbone("squeezenet1_1")


def test_import_from_shared_folder_records_both_checksums(  # type: ignore[no-untyped-def]
    pretrained, home: Path, ncnn_dir: Path
) -> None:
    info = pretrained.weights_info
    assert info.source == "imagenet" and info.params_sha256 == sq.IMAGENET_PARAMS_SHA256
    assert info.extra["source_sha256"] == sq.BIN_SHA256
    manifest = read_manifest(home / "weights" / "squeezenet1_1_imagenet_caffe.pth")
    assert manifest is not None
    assert manifest["source"] == str(ncnn_dir / sq.BIN_NAME) and manifest["source_param_sha256"] == sq.PARAM_SHA256
    assert manifest["preprocessing"]["channel_order"] == "BGR"
    assert manifest["preprocessing"]["mean"] == [104.0, 117.0, 123.0]
    assert float(pretrained.net.features[0].bias[0]) == sq.FIRST_BIAS


def test_verify_rejects_other_weights(pretrained) -> None:  # type: ignore[no-untyped-def]
    net = sq.SqueezeNet11()
    net.load_state_dict(pretrained.net.state_dict())
    sq.verify_imagenet(net)
    with torch.no_grad():
        net.classifier[1].weight[0, 0, 0, 0] += 1e-3
    with pytest.raises(WeightsError, match="parameter checksum"):
        sq.verify_imagenet(net)


def test_online_path_downloads_checks_and_converts(
    ncnn_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No shared folder: the files come from ASSETS_URL (here a file:// mirror), sha256-checked."""
    monkeypatch.setenv("PSYCHOFEAT_WEIGHTS_DIR", str(tmp_path / "absent"))
    monkeypatch.setattr(sq, "ASSETS_URL", ncnn_dir.as_uri() + "/")
    manifest = sq.import_imagenet(tmp_path / "sq.pth")
    assert manifest["source"] == ncnn_dir.as_uri() + "/" + sq.BIN_NAME and manifest["source_sha256"] == sq.BIN_SHA256
    bad = tmp_path / "mirror"
    bad.mkdir()
    shutil.copy(ncnn_dir / sq.PARAM_NAME, bad)
    (bad / sq.BIN_NAME).write_bytes((ncnn_dir / sq.BIN_NAME).read_bytes()[:-4] + bytes(4))
    monkeypatch.setattr(sq, "ASSETS_URL", bad.as_uri() + "/")
    with pytest.raises(WeightsError, match="sha256"):
        sq.import_imagenet(tmp_path / "sq2.pth")


def test_truncated_local_file_is_refused_naming_the_layer(ncnn_dir: Path, tmp_path: Path) -> None:
    shutil.copy(ncnn_dir / sq.PARAM_NAME, tmp_path)
    (tmp_path / sq.BIN_NAME).write_bytes((ncnn_dir / sq.BIN_NAME).read_bytes()[:-100])
    with pytest.raises(WeightsError, match="sha256"):  # the importer refuses it before reading
        sq.import_imagenet(tmp_path / "x.pth", tmp_path / sq.BIN_NAME)
    with pytest.raises(WeightsError, match="layer 'conv10' needs"):  # the reader alone names the layer
        sq.state_dict_from_ncnn(tmp_path / sq.PARAM_NAME, tmp_path / sq.BIN_NAME)


def test_classifies_reference_photos(pretrained) -> None:  # type: ignore[no-untyped-def]
    results = {r.image: r for r in verify_classifier(pretrained)}
    assert set(results) == set(REFERENCE_IMAGES)
    for r in results.values():
        assert r.passed, f"{r.image}: top-3 {[(p.index, p.name, round(p.probability, 3)) for p in r.top[:3]]}"
    assert results["chelsea"].top[0].probability > 0.3
    assert results["coffee"].top[0].index == 967 and results["coffee"].top[0].probability > 0.8  # espresso
