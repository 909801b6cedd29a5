"""Selections bundled with the package: integrity, provenance, use in one line, refusal of other weights, and
agreement with a fresh probe (one layer, fast; every network, slow)."""

from __future__ import annotations

import fnmatch
import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from psychofeat import bundled
from psychofeat.analysis import AnalysisConfig, analyze
from psychofeat.backbones import vgg
from psychofeat.errors import UnknownNameError, WeightsError
from psychofeat.loss import PerceptualLoss
from psychofeat.metric import PerceptualDistance, perceptual_distance
from psychofeat.stimuli import ProbeProtocol

ROOT = Path(__file__).resolve().parents[1]
#: the budget stated in the issue: a few hundred KB for all bundled files together
MAX_TOTAL_BYTES = 400_000


def test_vgg16_is_bundled_and_files_match_the_index() -> None:
    assert "vgg16" in bundled.bundled_models()
    total = 0
    for model in bundled.bundled_models():
        e = bundled.entry(model)
        path = bundled.data_dir() / e.file
        assert bundled.file_sha256(path) == e.sha256 and path.stat().st_size == e.bytes
        total += e.bytes
    total += (bundled.data_dir() / bundled.INDEX_NAME).stat().st_size
    assert total < MAX_TOTAL_BYTES


def test_package_data_globs_cover_the_bundled_files() -> None:
    """pyproject's package-data must ship every bundled file in the wheel (the packaging test checks a real build)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = meta["tool"]["setuptools"]["package-data"]["psychofeat"]
    pkg = ROOT / "src" / "psychofeat"
    for f in bundled.data_dir().iterdir():
        rel = f.relative_to(pkg).as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel


def test_bundled_selection_is_the_default_analysis_of_the_original_weights() -> None:
    sel = bundled.load_bundled("vgg16")
    assert sel.model == "vgg16" and sel.method == "top" and sel.fraction == 0.25
    assert sel.weights == {"source": "imagenet", "params_sha256": vgg.IMAGENET_PARAMS_SHA256}
    assert sel.provenance["analysis"]["config"] == json.loads(json.dumps(AnalysisConfig().to_dict()))
    assert sel.layers == vgg.RELU_LAYERS
    # the stored selection is the top 25 % by PE (ties by channel index), recomputed here with numpy alone
    assert sel.pe is not None
    for layer, pe in sel.pe.items():
        k = max(1, round(0.25 * pe.size))
        want = np.sort(sorted(range(pe.size), key=lambda c: (-pe[c], c))[:k])
        np.testing.assert_array_equal(sel.channels[layer], want)


def test_one_line_metric_and_loss(vgg16_imagenet) -> None:  # noqa: ANN001
    sel = bundled.load_bundled("vgg16")
    metric = PerceptualDistance(vgg16_imagenet, selection="pe")
    assert metric.selection.names() == sel.names()
    loss = PerceptualLoss(vgg16_imagenet, selection="pe", which="top")
    assert loss.core.selection.names() == sel.names()
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(1, 3, 40, 40, generator=g, requires_grad=True)
    loss(pred, torch.rand(1, 3, 40, 40, generator=g)).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    bottom = PerceptualDistance(vgg16_imagenet, selection="pe", which="bottom")
    assert bottom.selection.names() == sel.select("bottom", 0.25).names()


def test_functional_twin_with_the_bundled_selection(vgg16_imagenet) -> None:  # noqa: ANN001
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 3, 36, 36, generator=g), torch.rand(2, 3, 36, 36, generator=g)
    with torch.no_grad():
        want = PerceptualDistance(vgg16_imagenet, selection=bundled.load_bundled("vgg16"), reduction="none")(x, y)
        torch.testing.assert_close(perceptual_distance(x, y, selection="pe", reduction="none"), want)


def test_refuses_other_weights() -> None:
    with pytest.raises(WeightsError, match="bundled selection of vgg16 was computed with its original ImageNet"):
        PerceptualDistance("vgg16", weights="random:0", selection="pe")


def test_refuses_networks_without_a_bundle() -> None:
    from torch import nn

    from psychofeat.backbones import from_module

    backbone = from_module(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), layers=["1"])
    with pytest.raises(UnknownNameError, match="Run `psychofeat analyze --model custom`"):
        PerceptualDistance(backbone, selection="pe")


def test_damaged_bundle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "selections"
    shutil.copytree(bundled.data_dir(), copy)
    path = copy / bundled.entry("vgg16").file
    path.write_text(path.read_text(encoding="utf-8").replace('"top"', '"bottom"', 1), encoding="utf-8")
    monkeypatch.setattr(bundled, "data_dir", lambda: copy)
    bundled._index.cache_clear()
    try:
        with pytest.raises(WeightsError, match="does not match its checksum"):
            bundled.load_bundled("vgg16")
    finally:
        bundled._index.cache_clear()


def _protocol(sel) -> ProbeProtocol:  # noqa: ANN001
    return ProbeProtocol.from_dict(sel.provenance["analysis"]["config"]["protocol"])


@pytest.mark.numerics
def test_reprobing_one_layer_gives_the_bundled_pe_ranking(vgg16_imagenet) -> None:  # noqa: ANN001
    """relu1_1 probed afresh with the bundled protocol: same PE (up to summation order), hence the same ranking."""
    sel = bundled.load_bundled("vgg16")
    config = AnalysisConfig(protocol=_protocol(sel))
    fresh = analyze(vgg16_imagenet, ["relu1_1"], config, progress=False)
    assert fresh.selection.pe is not None and sel.pe is not None
    np.testing.assert_allclose(fresh.selection.pe["relu1_1"], sel.pe["relu1_1"], rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(fresh.selection.channels["relu1_1"], sel.channels["relu1_1"])


@pytest.mark.slow
@pytest.mark.parametrize("model", bundled.MODELS)
def test_regenerating_gives_the_bundled_selection(model: str) -> None:
    """The full default analysis, run again: the same selection, the same PE up to float summation order."""
    from psychofeat.backbones import load_backbone

    if model not in bundled.bundled_models():
        pytest.skip(f"{model} is not bundled (its weights were not obtainable when bundling)")
    try:
        backbone = load_backbone(model)
    except (WeightsError, OSError, ImportError) as exc:
        pytest.skip(f"{model}'s original weights are not available here: {exc}")
    fresh = bundled.bundle_dict(analyze(backbone, progress=False).selection)
    stored = json.loads((bundled.data_dir() / bundled.entry(model).file).read_text(encoding="utf-8"))
    assert fresh.keys() == stored.keys()
    for key in fresh:
        if key == "pe":
            for layer, pe in stored["pe"].items():
                np.testing.assert_allclose(fresh["pe"][layer], pe, rtol=1e-6, atol=1e-9, err_msg=layer)
        else:
            assert json.loads(json.dumps(fresh[key])) == stored[key], key
