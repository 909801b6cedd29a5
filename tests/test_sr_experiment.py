"""The SR experiment (`psychofeat sr experiment`) and the perceptual columns of `sr eval`.

The end-to-end run is a structure check, not science: a 1-block, 8-channel SRResNet, 2 steps per stage on 32 px patches
from two training images, one Set5 image, SqueezeNet only, and a selection with *synthetic* PE scores (the test must not
depend on a multi-minute `psychofeat analyze`). Everything else here needs no data or only the SqueezeNet weights.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from synthetic_nets import synthetic_selection

from psychofeat.cli import main
from psychofeat.errors import InputError, UnknownNameError, WeightsError
from psychofeat.sr.evaluate import (
    DEFAULT_PERCEPTUAL,
    PerceptualColumn,
    perceptual_column_name,
    perceptual_metrics,
    training_backbones,
)
from psychofeat.sr.experiment import FEATURE_LOSSES, METHODS, TINY, make_config, paired_comparisons

LAYERS = {"relu2_2": 128, "relu3_3": 256, "relu4_3": 512}
SMOKE = ["--tiny", "--stage1-steps", "2", "--stage2-steps", "2", "--batch", "2", "--patch", "32", "--blocks", "1",
         "--channels", "8", "--limit", "1", "--perceptual", "squeezenet1_1", "--train-pattern", "kodak24_kodim0[12]*",
         "--log-every", "1"]


# ---------------------------------------------------------------------------------------------- configuration


def test_stage2_runs_differ_only_in_the_loss(tmp_path: Path) -> None:
    cfg = make_config(str(tmp_path / "selection.json"))
    stages = cfg.stage_configs(tmp_path / "runs")
    assert list(stages) == list(METHODS)
    pixel = stages["pixel"]
    assert (pixel.loss, pixel.steps, pixel.learning_rate, pixel.init) == ("pixel", 5000, 2e-4, None)
    dicts = [stages[m].to_dict() for m in FEATURE_LOSSES]
    for d in dicts:
        assert {k for k in d if d[k] != dicts[0][k]} <= {"loss"}
    first = stages["all"]
    assert first.init == str((tmp_path / "runs" / "pixel" / "final.pt").resolve())
    assert (first.steps, first.learning_rate, first.lam, first.layers) == (2500, 1e-4, 0.1, list(LAYERS))
    assert (first.seed, first.batch, first.patch) == (pixel.seed, pixel.batch, pixel.patch)


def test_presets_overrides_and_validation(tmp_path: Path) -> None:
    sel = str(tmp_path / "s.json")
    tiny = make_config(sel, tiny=True, batch=None)
    assert all(getattr(tiny, k) == v for k, v in TINY.items())
    assert make_config(sel, tiny=True, stage2_steps=3).stage2_steps == 3
    with pytest.raises(UnknownNameError):
        make_config(sel, stage_steps=3)
    with pytest.raises(InputError, match="lambda"):
        make_config(sel, lam=0.0)
    with pytest.raises(InputError, match="selection"):
        make_config("")


def test_cli_default_perceptual_matches_the_library() -> None:
    from psychofeat.cli.commands import sr

    assert sr.DEFAULT_PERCEPTUAL == DEFAULT_PERCEPTUAL


# ---------------------------------------------------------------------------------------------- paired comparisons


def test_paired_comparisons_direction_ties_and_interval() -> None:
    rows = []
    for i, (p_all, p_top, d_all, d_top) in enumerate([(30.0, 31.0, 0.2, 0.1), (28.0, 28.0, 0.3, 0.4),
                                                        (25.0, 25.5, 0.4, 0.2)]):
        rows += [{"set": "Set5", "name": f"img_{i}", "canonical_name": f"c{i}", "method": "all", "psnr": p_all,
                  "net_all": d_all},
                 {"set": "Set5", "name": f"img_{i}", "canonical_name": f"c{i}", "method": "top", "psnr": p_top,
                  "net_all": d_top}]
    df = paired_comparisons(pd.DataFrame(rows), comparisons=[("top", "all"), ("top", "random")], n_boot=500)
    assert set(df["reference"]) == {"all"}  # no "random" model: that pair is left out
    psnr = df.set_index("score").loc["psnr"]
    assert psnr["mean_diff"] == pytest.approx(0.5) and psnr["wins"] == pytest.approx(2.5 / 3)  # a tie counts half
    assert psnr["ci_low"] <= 0.5 <= psnr["ci_high"] and psnr["better"] == "higher"
    dist = df.set_index("score").loc["net_all"]
    assert dist["mean_diff"] == pytest.approx(-0.2 / 3) and dist["wins"] == pytest.approx(2 / 3)  # lower is better
    assert dist["better"] == "lower"


# ---------------------------------------------------------------------------------------------- perceptual columns


def test_column_names_mark_the_training_network() -> None:
    assert perceptual_column_name("squeezenet1_1", {"vgg16"}) == "squeezenet1_1_all"
    assert perceptual_column_name("vgg16", {"vgg16"}) == "vgg16_all (training net)"
    assert training_backbones({"loss": "top", "backbone": "vgg16"}) == {"vgg16"}
    assert training_backbones({"loss": "pixel", "backbone": "vgg16"}) == set() == training_backbones(None)


def test_unavailable_network_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    class Fake:
        def __init__(self, model: str, **_: object) -> None:
            if model == "efficientnet_lite0":
                raise WeightsError("optional package not installed")

    monkeypatch.setattr("psychofeat.metric.PerceptualDistance", Fake)
    with caplog.at_level(logging.WARNING, logger="psychofeat.sr.evaluate"):
        metrics, skipped = perceptual_metrics(["squeezenet1_1", "efficientnet_lite0", "vgg16"],
                                              training_backbones={"vgg16"})
    assert list(metrics) == ["squeezenet1_1_all", "vgg16_all (training net)"]
    assert list(skipped) == ["efficientnet_lite0"] and "efficientnet_lite0" in caplog.text
    with pytest.raises(UnknownNameError):
        perceptual_metrics(["squeezenet1_2"])  # a typo is an error, not a skip
    assert list(perceptual_metrics(["squeezenet", "squeezenet1_1"])[0]) == ["squeezenet1_1_all"]  # alias


def test_perceptual_column_reuses_reference_features_and_matches_the_metric() -> None:
    from psychofeat.metric import PerceptualDistance

    try:
        metric = PerceptualDistance("squeezenet1_1", reduction="none")
    except WeightsError as exc:
        pytest.skip(f"SqueezeNet weights unavailable: {exc}")
    calls = []
    real_reference = metric.reference
    metric.reference = lambda y: calls.append(1) or real_reference(y)  # type: ignore[method-assign]
    col = PerceptualColumn(metric)
    g = torch.Generator().manual_seed(0)
    hr1, hr2, a, b = (torch.rand(1, 3, 40, 48, generator=g, dtype=torch.float64) for _ in range(4))
    got = [col(a, hr1), col(b, hr1), col(a, hr2)]
    assert len(calls) == 2  # one reference pass per distinct HR
    want = [metric(a.float(), hr1.float()), metric(b.float(), hr1.float()), metric(a.float(), hr2.float())]
    for g_, w in zip(got, want):
        torch.testing.assert_close(g_, w, rtol=1e-5, atol=1e-6)


def test_sr_eval_perceptual_option(tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from psychofeat import metric as metric_module
    from psychofeat.sr.checkpoint import save_checkpoint
    from psychofeat.sr.model import SRResNet

    real = metric_module.PerceptualDistance

    def no_efficientnet(model: str, **kw: object) -> object:
        if model == "efficientnet_lite0":
            raise WeightsError("pretend the optional package is missing")
        return real(model, **kw)

    monkeypatch.setattr(metric_module, "PerceptualDistance", no_efficientnet)
    m = SRResNet(n_blocks=1, channels=8)
    ckpt = save_checkpoint(tmp_path / "m.pt", {"model": m.state_dict(), "model_config": m.config.to_dict(), "step": 0,
                                               "train_config": {"loss": "top", "backbone": "vgg16"}})
    out = tmp_path / "eval"
    args = ["sr", "eval", "--checkpoint", str(ckpt), "--sets", "set5", "--limit", "1", "--out", str(out)]
    assert main([*args, "--perceptual", "squeezenet1_1,efficientnet_lite0"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["set", "method", "n_images", "psnr", "ssim", "squeezenet1_1_all"]
    assert (summary["squeezenet1_1_all"] >= 0).all()
    assert "Skipped (network unavailable): efficientnet_lite0" in (out / "report.html").read_text()
    assert json.loads((out / "manifest.json").read_text())["perceptual_skipped"].keys() == {"efficientnet_lite0"}
    assert main([*args, "--perceptual", "none", "--overwrite"]) == 0
    assert list(pd.read_csv(out / "summary.csv").columns) == ["set", "method", "n_images", "psnr", "ssim"]


# ---------------------------------------------------------------------------------------------- end to end


def test_experiment_smoke(tmp_path: Path, data_root: Path) -> None:
    # no weights checksum, so any VGG-16 weights fit
    sel = synthetic_selection(tmp_path / "selection.json", LAYERS, provenance={"note": "synthetic, for tests"})
    out = tmp_path / "exp"
    args = ["sr", "experiment", "--selection", str(sel), "--out", str(out), *SMOKE]
    assert main(args) == 0

    for m in METHODS:
        assert (out / "runs" / m / "final.pt").is_file()
    stages = json.loads((out / "experiment.json").read_text())["stages"]
    assert {stages[m]["init"] for m in FEATURE_LOSSES} == {str((out / "runs" / "pixel" / "final.pt").resolve())}

    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == ["set", "name", "canonical_name", "method", "psnr", "ssim", "squeezenet1_1_all"]
    assert list(results["method"]) == ["bicubic", *METHODS] and set(results["set"]) == {"Set5"}
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["set", "method", "n_images", "psnr", "ssim", "squeezenet1_1_all"]
    assert list(summary["method"]) == ["bicubic", *METHODS] and (summary["n_images"] == 1).all()
    assert np.isfinite(summary[["psnr", "ssim", "squeezenet1_1_all"]].to_numpy()).all()
    paired = pd.read_csv(out / "paired.csv")
    assert len(paired) == 5 * 3  # five comparisons × (psnr, ssim, one distance)
    html = (out / "report.html").read_text()
    assert "Paired differences" in html and "grating stimuli only" in html and "squeezenet1_1_all" in html
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["timing_s"]) == {*(f"train_{m}" for m in METHODS), "evaluate", "total"}

    # a rerun never mixes results silently, and --resume refuses changed training settings before any work
    assert main(args) == 2
    assert main([*args, "--resume", "--lambda", "0.5"]) == 2


def _documented_cpu_preset() -> dict[str, str]:
    """The `--preset cpu` table of docs/sr.md: {setting: value as written}."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "sr.md").read_text(encoding="utf-8")
    section = text.split("### CPU preset", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[1].strip("`")
    return rows


def test_cpu_preset_is_the_documented_one(tmp_path: Path) -> None:
    from psychofeat.sr.experiment import CPU, PRESETS

    documented = _documented_cpu_preset()
    cfg = make_config(str(tmp_path / "s.json"), preset="cpu")
    assert set(CPU) <= set(documented), f"undocumented preset settings: {set(CPU) - set(documented)}"
    for key, text in documented.items():
        value = getattr(cfg, key)
        shown = ",".join(value) if isinstance(value, list) else ("default" if value is None else f"{value:g}"
                                                                  if isinstance(value, float) else str(value))
        assert shown == text, f"docs/sr.md says {key} = {text}, the preset has {shown}"
    # the preset changes budget-related settings only: losses, λ, layers, rates, seed and selection stay the GPU run's
    gpu = make_config(str(tmp_path / "s.json"))
    for key in ("stage1_lr", "stage2_lr", "lam", "layers", "feature_mode", "frac", "seed", "selection_seed",
                "backbone", "batch"):
        assert getattr(cfg, key) == getattr(gpu, key), key
    assert PRESETS["tiny"] == TINY and PRESETS["gpu"] == {}
    assert make_config(str(tmp_path / "s.json"), preset="cpu", stage2_steps=7).stage2_steps == 7
    cfg.perceptual.append("vgg16")  # a config's lists are its own, not the preset's
    assert "vgg16" not in CPU["perceptual"]
    with pytest.raises(UnknownNameError, match="preset"):
        make_config(str(tmp_path / "s.json"), preset="cpu-fast")
    with pytest.raises(InputError, match="tiny"):
        make_config(str(tmp_path / "s.json"), tiny=True, preset="cpu")


def test_patch_below_the_loss_minimum_is_refused_before_training() -> None:
    """Stage 2's feature losses take HR patches of at least 32 px (the metric's and the loss's minimum)."""
    with pytest.raises(InputError, match="--patch must be ≥ 32 px"):
        make_config("sel.json", tiny=True, patch=28)
    assert make_config("sel.json", tiny=True, patch=32).patch == 32
