"""EfficientNet-Lite0: TF "SAME" padding, parity with the PyPI definition, layer outputs, optional extra,
verification."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from psychofeat.backbones import efficientnet as eff
from psychofeat.backbones import load_backbone
from psychofeat.backbones.verify import verify_classifier
from psychofeat.errors import WeightsError
from psychofeat.features import FeatureExtractor
from psychofeat.weights.cache import read_manifest


@pytest.mark.parametrize(
    ("size", "stride", "kernel", "pads"), [(8, 2, 3, (0, 1)), (7, 2, 3, (1, 1)), (8, 2, 5, (1, 2)), (9, 1, 5, (2, 2))]
)
def test_tensorflow_same_padding(size: int, stride: int, kernel: int, pads: tuple[int, int]) -> None:
    """TF 'SAME': output ceil(n/s); total padding split with the extra pixel at the end (known from TF's docs)."""
    conv = eff.Conv2dSame(1, 1, kernel, stride=stride, bias=False)
    x = torch.randn(1, 1, size, size)
    expected = F.conv2d(F.pad(x, [pads[0], pads[1], pads[0], pads[1]]), conv.weight, stride=stride)
    out = conv(x)
    assert out.shape[-1] == -(-size // stride)
    torch.testing.assert_close(out, expected)


def test_layers_are_module_outputs_with_the_documented_shapes() -> None:
    b = load_backbone("efficientnet_lite0", weights="random:0")
    f = FeatureExtractor(b, ["stem", "block2_1_expand", "block2_2", "block7_1", "head"])(torch.rand(1, 3, 224, 224))
    assert tuple(f["stem"].shape) == (1, 32, 112, 112) and 0 <= f["stem"].min() and f["stem"].max() <= 6
    assert tuple(f["block2_1_expand"].shape) == (1, 96, 112, 112)
    assert tuple(f["block2_2"].shape) == (1, 24, 56, 56)
    assert tuple(f["block7_1"].shape) == (1, 320, 7, 7)
    assert tuple(f["head"].shape) == (1, 1280, 7, 7) and f["head"].max() <= 6
    assert len(b.net._blocks) == 16
    last_of_each_stage = ["block1_1", "block2_2", "block3_2", "block4_3", "block5_3", "block6_4", "block7_1"]
    assert b.default_layers == ["stem", *last_of_each_stage, "head"]


def test_missing_optional_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, eff.WEIGHTS_PACKAGE, None)  # makes the import fail
    monkeypatch.setenv("PSYCHOFEAT_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match=r'pip install "psychofeat\[efficientnet\]"'):
        load_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Iterator:  # type: ignore[type-arg]
    pytest.importorskip(eff.WEIGHTS_PACKAGE, reason=f"optional weights package absent: {eff.EXTRA_HINT}")
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("psychofeat_home")
        mp.setenv("PSYCHOFEAT_HOME", str(home))
        b = load_backbone("efficientnet_lite0")
        yield b, home


def test_import_records_source_and_fingerprint(pretrained) -> None:  # type: ignore[no-untyped-def]
    b, home = pretrained
    assert b.weights_info.params_sha256 == eff.IMAGENET_PARAMS_SHA256
    manifest = read_manifest(home / "weights" / "efficientnet_lite0_imagenet.pth")
    assert manifest is not None and manifest["source_sha256"] == eff.CHECKPOINT_SHA256
    assert b.preprocessing == eff.TF_LITE


def test_wrong_checkpoint_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / eff.CHECKPOINT_NAME
    torch.save(eff.EfficientNetLite0().state_dict(), bad)
    with pytest.raises(WeightsError, match="sha256"):
        eff.import_imagenet(tmp_path / "out.pth", bad)


def test_same_logits_as_the_pypi_definition(pretrained) -> None:  # type: ignore[no-untyped-def]
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch not installed")
    b, _ = pretrained
    ref = ref_pkg.EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(b.net.state_dict())
    ref.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(b.net(x), ref(x), rtol=1e-5, atol=1e-5)


def test_classifies_reference_photos(pretrained) -> None:  # type: ignore[no-untyped-def]
    b, _ = pretrained
    for r in verify_classifier(b):
        assert r.passed, f"{r.image}: top-3 {[(p.index, p.name, round(p.probability, 3)) for p in r.top[:3]]}"
