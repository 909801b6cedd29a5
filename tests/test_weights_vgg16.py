"""VGG-16 weights: sources, cache, sha256-checked download (file:// URL), importers and refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from psychofeat.backbones import get_spec, load_backbone
from psychofeat.backbones.vgg import VGG16Trunk, layer_paths
from psychofeat.errors import UnknownNameError, WeightsError
from psychofeat.io import sha256_file
from psychofeat.weights import obtain
from psychofeat.weights.sources import import_source
from psychofeat.weights.vgg16_import import CONVS, FIRST_BIAS, conv_state_shapes, import_vgg16


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PSYCHOFEAT_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "weights"


def fake_vgg_state(seed: int = 0, first_bias: float | None = None) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    sd = VGG16Trunk().state_dict()
    if first_bias is not None:
        sd["features.0.bias"][0] = first_bias
    return sd


def test_layer_names_map_to_torchvision_indices() -> None:
    paths = layer_paths()
    assert paths["conv1_1"] == "features.0" and paths["relu1_2"] == "features.3" and paths["pool1"] == "features.4"
    assert paths["relu3_3"] == "features.15" and paths["relu5_3"] == "features.29" and paths["pool5"] == "features.30"
    assert len([k for k in paths if k.startswith("relu")]) == 13
    assert set(VGG16Trunk().state_dict()) == {
        f"features.{i}.{p}" for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28) for p in ("weight", "bias")
    }


def test_importer_expects_the_trunks_shapes() -> None:
    """The importer's own description of the 13 convolutions (used when no caller hands it the trunk's state dict)
    is the trunk's: same keys, in the same order, same shapes."""
    trunk = VGG16Trunk().state_dict()
    shapes = conv_state_shapes()
    assert list(shapes) == list(trunk)
    assert all(tuple(shapes[k].shape) == tuple(v.shape) and shapes[k].is_meta for k, v in trunk.items())


def test_unknown_layer_lists_close_matches() -> None:
    b = load_backbone("vgg16", "random")
    with pytest.raises(UnknownNameError, match=r"relu3_3"):
        b.resolve_layer("relu3_4")
    assert b.resolve_layer("features.15") == "features.15" and b.canonical_layer("features.15") == "relu3_3"


def test_unknown_model_and_weights_source() -> None:
    with pytest.raises(UnknownNameError, match="vgg16"):
        load_backbone("vgg61")
    with pytest.raises(UnknownNameError, match="imagenet"):
        load_backbone("vgg16", "imagenett")


def test_random_weights_are_seeded() -> None:
    a, b, c = (load_backbone("vgg16", w) for w in ("random", "random:0", "random:1"))
    assert a.weights_info.params_sha256 == b.weights_info.params_sha256 != c.weights_info.params_sha256
    assert a.preprocessing.name == "caffe-vgg"  # the control sees the same input pipeline as the pretrained net


def test_explicit_file_and_mismatch_refusals(tmp_path: Path) -> None:
    good = tmp_path / "vgg.pth"
    torch.save(fake_vgg_state(3), good)
    b = load_backbone("vgg16", str(good))
    assert b.weights_info.source == "file" and b.weights_info.sha256 == sha256_file(good)
    assert b.preprocessing.name == "torchvision"  # a bare .pth is assumed torchvision-style
    wrong = fake_vgg_state()
    wrong["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(WeightsError, match=r"features\.5\.weight.*\(128, 32, 3, 3\).*\(128, 64, 3, 3\)"):
        load_backbone("vgg16", str(tmp_path / "wrong.pth"))
    other = {"conv.weight": torch.zeros(8, 3, 3, 3)}
    torch.save(other, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"features\.0\.weight.*missing"):
        load_backbone("vgg16", str(tmp_path / "other.pth"))
    data = good.read_bytes()
    (tmp_path / "trunc.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="corrupt, truncated"):
        load_backbone("vgg16", str(tmp_path / "trunc.pth"))
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        load_backbone("vgg16", str(tmp_path / "empty.pth"))
    nan = fake_vgg_state()
    nan["features.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(nan, tmp_path / "nan.pth")
    with pytest.raises(WeightsError, match="NaN"):
        load_backbone("vgg16", str(tmp_path / "nan.pth"))


def test_full_model_file_with_classifier_is_accepted(tmp_path: Path) -> None:
    sd = fake_vgg_state()
    sd["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(sd, tmp_path / "full.pth")
    load_backbone("vgg16", str(tmp_path / "full.pth"))


def test_url_download_is_sha256_checked_and_cached(cache: Path, tmp_path: Path) -> None:
    src_file = tmp_path / "published.pth"
    torch.save(fake_vgg_state(5), src_file)
    digest = sha256_file(src_file)
    spec = get_spec("vgg16")
    tv = dataclasses.replace(spec.sources["torchvision"], url=src_file.as_uri(), url_sha256=digest)
    path, manifest = obtain(tv)
    assert path.parent == cache and manifest["source_sha256"] == digest and manifest["source"] == src_file.as_uri()
    assert manifest["preprocessing"]["name"] == "torchvision"
    # second call: from the cache, no download (the URL is gone)
    src_file.unlink()
    assert obtain(tv)[1]["sha256"] == manifest["sha256"]
    # a corrupted cache entry is detected by its manifest checksum
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(WeightsError, match="corrupt"):
        obtain(tv)


def test_torchvision_weights_load_through_load_backbone(cache: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The original weights' fingerprint check belongs to that source, not to every VGG-16 source."""
    src_file = tmp_path / "vgg16-397923af.pth"
    state = fake_vgg_state(7)
    torch.save(state, src_file)
    spec = get_spec("vgg16")
    tv = dataclasses.replace(spec.sources["torchvision"], url=src_file.as_uri(), url_sha256=sha256_file(src_file))
    monkeypatch.setitem(spec.sources, "torchvision", tv)  # type: ignore[arg-type]
    b = load_backbone("vgg16", "torchvision")
    assert b.weights_info.source == "torchvision" and b.preprocessing.name == "torchvision"
    assert torch.equal(b.net.features[28].weight, state["features.28.weight"])


def test_url_with_wrong_checksum_is_refused(cache: Path, tmp_path: Path) -> None:
    src_file = tmp_path / "published.pth"
    torch.save(fake_vgg_state(6), src_file)
    tv = dataclasses.replace(get_spec("vgg16").sources["torchvision"], url=src_file.as_uri(), url_sha256="0" * 64)
    with pytest.raises(WeightsError, match="expected 0000"):
        obtain(tv)
    assert not any(cache.glob("*.pth")), "a file failing its checksum must not be kept"


def test_unreachable_url_falls_back_and_reports_what_was_tried(cache: Path, tmp_path: Path) -> None:
    tv = dataclasses.replace(get_spec("vgg16").sources["torchvision"], url=(tmp_path / "missing.pth").as_uri())
    with pytest.raises(WeightsError, match="Tried: cache.*download"):
        obtain(tv)


def test_import_from_pth_checks_the_fingerprint(cache: Path, tmp_path: Path) -> None:
    torch.save(fake_vgg_state(1), tmp_path / "not_original.pth")
    with pytest.raises(WeightsError, match="first bias"):
        import_vgg16(cache / "x.pth", tmp_path / "not_original.pth")
    torch.save(fake_vgg_state(1, first_bias=FIRST_BIAS), tmp_path / "orig.pth")
    manifest = import_vgg16(cache / "x.pth", tmp_path / "orig.pth")
    assert manifest["preprocessing"]["name"] == "caffe-vgg"
    assert manifest["source_sha256"] == sha256_file(tmp_path / "orig.pth")
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(WeightsError, match="sha256"):
        import_vgg16(cache / "y.pth", tmp_path / "bad.onnx")
    with pytest.raises(WeightsError, match="expected .whl, .onnx"):
        (tmp_path / "w.txt").write_text("x")
        import_vgg16(cache / "y.pth", tmp_path / "w.txt")


def _write_keras_h5(path: Path, state: dict[str, torch.Tensor], skip: str | None = None) -> None:
    """Keras' VGG-16 weights layout: model_weights/blockB_convC/blockB_convC/{kernel:0 (HWIO), bias:0}."""
    h5py = pytest.importorskip("h5py", reason="h5py is not installed (test extra)")
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights")
        for block, conv, idx in CONVS:
            name = f"block{block}_conv{conv}"
            if name == skip:
                continue
            group = root.create_group(name).create_group(name)
            group["kernel:0"] = state[f"features.{idx}.weight"].permute(2, 3, 1, 0).numpy()
            group["bias:0"] = state[f"features.{idx}.bias"].numpy()


def test_import_from_keras_h5_transposes_kernels(cache: Path, tmp_path: Path) -> None:
    state = fake_vgg_state(3, first_bias=FIRST_BIAS)
    _write_keras_h5(tmp_path / "vgg16_weights.h5", state)
    manifest = import_vgg16(cache / "k.pth", tmp_path / "vgg16_weights.h5")
    assert manifest["source_sha256"] == sha256_file(tmp_path / "vgg16_weights.h5")
    imported = torch.load(cache / "k.pth", weights_only=True)
    assert set(imported) == set(state)
    for k, v in state.items():
        assert torch.equal(imported[k], v), k
    _write_keras_h5(tmp_path / "partial.h5", state, skip="block4_conv2")
    with pytest.raises(WeightsError, match="'block4_conv2' not found"):
        import_vgg16(cache / "p.pth", tmp_path / "partial.h5")


def test_import_source_from_file_checks_published_checksum(cache: Path, tmp_path: Path) -> None:
    torch.save(fake_vgg_state(2), tmp_path / "vgg16-397923af.pth")
    with pytest.raises(WeightsError, match="expected 397923af"):
        import_source(get_spec("vgg16").sources["torchvision"], tmp_path / "vgg16-397923af.pth")
