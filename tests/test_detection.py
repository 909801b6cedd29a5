"""Threshold benchmark: a metric that *is* the human CSF scores 0, PSNR's score is the spread of log contrast
energy, feature banks reproduce PerceptualDistance exactly, and the score bookkeeping is right."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from psychofeat.errors import InputError, UnknownNameError
from psychofeat.hvs.detection import (
    POOLED,
    ClassicBank,
    DetectionConfig,
    FeatureBank,
    FeatureMetric,
    build_banks,
    detect,
    random_summary,
    score_rows,
)
from psychofeat.hvs.threshold_stimuli import threshold_stimuli


@pytest.fixture(scope="module")
def stimuli(data_root):
    return threshold_stimuli("all")


class ContrastTimesCSF:
    """Oracle metric: d = c · S_human, with c measured from the image (projection onto the stimulus's unit
    pattern) and S_human the row's measured sensitivity — 'exactly the human CSF'."""

    label = "oracle"
    names = ["contrast x csf"]
    groups = ["oracle"]

    def __init__(self, stimuli) -> None:
        self.stimuli = stimuli

    def distances(self, images: torch.Tensor, blank: torch.Tensor, index: np.ndarray) -> np.ndarray:
        out = []
        for img, i in zip(images[:, 0].double().numpy(), index, strict=True):
            r = self.stimuli.rows.iloc[int(i)]
            p = self.stimuli.pattern(int(i))
            c = float(np.sum((img / r["mean"] - 1.0) * p) / np.sum(p * p))
            out.append([c * r["sensitivity"]])
        return np.asarray(out)


def test_human_csf_metric_scores_zero(stimuli) -> None:
    res = detect([ContrastTimesCSF(stimuli)], stimuli, DetectionConfig(n_steps=5), progress=False)
    ref = res.scores[res.scores["group"] == "reference"].set_index("dataset")
    h = stimuli.rows.set_index("dataset")["log10_threshold"]
    assert ref.loc["modelfest", "rmse"] == pytest.approx(h.loc["modelfest"].std(ddof=0))  # the 'predict nothing' RMSE
    sc = res.scores[res.scores["group"] != "reference"].set_index("dataset")
    assert set(sc.index) == {"modelfest", "hdrvdp_csf", "rovamo1993", POOLED}
    assert (sc["score"] < 1e-6).all()
    assert (sc["rmse"] < 1e-4).all()  # d is linear in c: bisection + log-log interpolation is exact
    assert (sc["spearman"] > 0.999).all()  # not exactly 1: rovamo1993 has tied thresholds
    assert np.allclose(sc["exponent"], 1.0, atol=1e-4)


def _gabor_energy(c: np.ndarray, f: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """∫∫ (c·exp(−r²/2σ²)·cos(2π f x))² dx dy = c²·(πσ²/2)·(1 + exp(−(2π f σ)²))  [deg²], in closed form."""
    return c**2 * (math.pi * sigma**2 / 2) * (1 + np.exp(-((2 * math.pi * f * sigma) ** 2)))


def test_psnr_score_is_the_spread_of_log_contrast_energy(stimuli) -> None:
    gabors = stimuli.subset(stimuli.rows["aperture"].to_numpy() == "gauss")
    res = detect([ClassicBank(["psnr"])], gabors, DetectionConfig(n_steps=3), progress=False)
    r = gabors.rows
    energy = _gabor_energy(r["threshold_contrast"].to_numpy(), r["s_frequency"].to_numpy(), r["ge_sigma"].to_numpy())
    np.testing.assert_allclose(gabors.contrast_energy(), energy, rtol=1e-3)  # the renderer's own energy, in deg²
    scores = res.scores[res.scores["group"] != "reference"]
    for ds, g in scores[scores["dataset"] != POOLED].groupby("dataset"):
        e = np.log10(energy[r["dataset"].to_numpy() == ds])
        assert g["score"].iloc[0] == pytest.approx(e.std(), abs=1e-4)
    # and it is std(PSNR)/10 dB, computed with psychofeat.classic.psnr directly
    from psychofeat.classic import psnr

    mf = np.flatnonzero(r["dataset"].to_numpy() == "modelfest")
    p = psnr(gabors.render(mf).double(), gabors.blank(224).double().expand(len(mf), -1, -1, -1)).numpy()
    got = scores.set_index("dataset").loc["modelfest", "score"]
    assert got == pytest.approx(p.std() / 10, rel=1e-9)
    assert scores["exponent"].between(1.99, 2.01).all()  # MSE ∝ c²


@pytest.fixture(scope="module")
def random_vgg():
    from psychofeat.backbones import load_backbone

    return load_backbone("vgg16", "random")


@pytest.mark.numerics
def test_feature_bank_equals_perceptual_distance(random_vgg) -> None:
    from psychofeat.metric import PerceptualDistance
    from psychofeat.selection import Selection

    rng = np.random.default_rng(0)
    layers = ["relu1_2", "relu2_2", "relu3_1"]
    n_ch = random_vgg.layer_channels(layers)
    chans = {k: np.sort(rng.choice(n, n // 4, replace=False)) for k, n in n_ch.items()}
    sel = Selection(model="vgg16", channels=chans, n_channels=n_ch, method="custom",
                    weights={"source": random_vgg.weights_info.source,
                             "params_sha256": random_vgg.weights_info.params_sha256})
    bank = FeatureBank(random_vgg, [FeatureMetric("sel", chans),
                                    FeatureMetric("all-mse", {k: None for k in layers}, "mse"),
                                    FeatureMetric("one", {"relu2_2": None})], "vgg16@random")
    x = 0.5 + 0.1 * torch.rand(3, 3, 48, 48)
    blank = torch.full((1, 3, 48, 48), 0.5)
    got = bank.distances(x, blank, np.arange(3))
    ref = [
        PerceptualDistance(random_vgg, selection=sel, reduction="none")(x, blank.expand(3, -1, -1, -1)),
        PerceptualDistance(random_vgg, layers=layers, mode="mse", reduction="none")(x, blank.expand(3, -1, -1, -1)),
        PerceptualDistance(random_vgg, layers=["relu2_2"], reduction="none")(x, blank.expand(3, -1, -1, -1)),
    ]
    np.testing.assert_allclose(got, torch.stack(ref, 1).double().numpy(), rtol=1e-5)


def test_feature_bank_keeps_one_reference_per_blank(random_vgg) -> None:
    """Blanks of the same size but another mean level (displays differ by dataset) are separate references."""
    metrics = [FeatureMetric("all", {"relu1_2": None, "relu2_2": None})]
    x = 0.45 + 0.05 * torch.rand(2, 3, 32, 32)
    blank = torch.full((1, 3, 32, 32), 0.4)
    bank = FeatureBank(random_vgg, metrics, "vgg16@random")
    bank.distances(x, torch.full((1, 3, 32, 32), 0.5), np.arange(2))
    fresh = FeatureBank(random_vgg, metrics, "vgg16@random")
    np.testing.assert_array_equal(bank.distances(x, blank, np.arange(2)), fresh.distances(x, blank, np.arange(2)))


def test_feature_bank_is_precise_at_threshold_contrasts(random_vgg) -> None:
    """At a 10⁻⁴ perturbation the bank still matches the definition evaluated directly in float64
    (unit-normalise each position's selected channels, subtract, square, sum, average)."""
    from psychofeat.features import FeatureExtractor

    layers = ["relu1_1", "relu2_1"]
    chans = {"relu1_1": np.arange(0, 64, 3), "relu2_1": None}
    bank = FeatureBank(random_vgg, [FeatureMetric("m", chans)], "vgg16@random")
    blank = torch.full((1, 3, 40, 40), 0.5)
    x = blank + 1e-4 * torch.randn(2, 3, 40, 40)
    got = bank.distances(x, blank, np.arange(2))[:, 0]
    fx, fy = FeatureExtractor(random_vgg, layers)(x), FeatureExtractor(random_vgg, layers)(blank)
    ref = np.zeros(2)
    for lay in layers:
        a, b = fx[lay].double(), fy[lay].double()
        if chans[lay] is not None:
            a, b = a[:, chans[lay]], b[:, chans[lay]]
        na = a / torch.sqrt((a * a).sum(1, keepdim=True) + 1e-10)
        nb = b / torch.sqrt((b * b).sum(1, keepdim=True) + 1e-10)
        ref += ((na - nb) ** 2).sum(1).mean((1, 2)).numpy() / len(layers)
    assert np.all(ref > 0)
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_score_rows_pooling_and_random_summary() -> None:
    rows = []
    rng = np.random.default_rng(1)
    for metric, group in [("top", "pe-top"), ("r0", "pe-random"), ("r1", "pe-random"), ("r2", "pe-random")]:
        for ds, n in [("modelfest", 5), ("rovamo1993", 4)]:
            h = rng.normal(-2, 0.3, n)
            rows.append(pd.DataFrame({"bank": "b", "metric": metric, "group": group, "dataset": ds,
                                      "log10_human": h, "log10_pred": h + rng.normal(0, 0.1, n),
                                      "log10_distance": rng.normal(0, 0.2, n), "status": "ok", "exponent": 2.0}))
    per_row = pd.concat(rows, ignore_index=True)
    sc = score_rows(per_row)
    for metric, g in sc.groupby("metric"):
        g = g.set_index("dataset")
        pooled = math.sqrt((5 * g.loc["modelfest", "score"] ** 2 + 4 * g.loc["rovamo1993", "score"] ** 2) / 9)
        assert g.loc[POOLED, "score"] == pytest.approx(pooled, rel=1e-12)
        raw = per_row[per_row["metric"] == metric]
        for ds in ("modelfest", "rovamo1993"):
            d = raw[raw["dataset"] == ds]["log10_distance"]
            assert g.loc[ds, "score"] == pytest.approx(d.std(ddof=0), rel=1e-12)
    rs = random_summary(sc).set_index("dataset")
    r = sc[(sc["group"] == "pe-random") & (sc["dataset"] == "modelfest")]["score"]
    assert rs.loc["modelfest", "score_mean"] == pytest.approx(r.mean())
    assert rs.loc["modelfest", "score_sd"] == pytest.approx(r.std(ddof=1))
    top = sc[(sc["group"] == "pe-top") & (sc["dataset"] == "modelfest")]["score"].iloc[0]
    assert rs.loc["modelfest", "pe-top_score_frac_random_better"] == pytest.approx((r < top).mean())


def test_bad_metric_tokens() -> None:
    with pytest.raises(UnknownNameError):
        build_banks(["vgg17"])
    with pytest.raises(InputError, match="selection"):
        build_banks(["pe"])
    with pytest.raises(InputError, match="variant"):
        build_banks(["vgg16:bogus"])


def test_cli_detect_writes_outputs(data_root, tmp_path) -> None:
    from psychofeat.cli import main

    out = tmp_path / "d"
    assert main(["hvs", "detect", "--metrics", "psnr", "--datasets", "modelfest", "--steps", "2",
                 "--out", str(out)]) == 0
    for name in ("detection_scores.csv", "detection_rows.csv", "detection_random.csv", "stimuli.csv",
                 "stimuli_skipped.csv", "manifest.json", "report.html"):
        assert (out / name).is_file()
    scores = pd.read_csv(out / "detection_scores.csv")
    assert list(scores["metric"]) == ["psnr", "constant threshold"] and list(scores["n"]) == [13, 13]
    # a metric that needs a selection, without one: a user error (exit 2), and no output folder
    assert main(["hvs", "detect", "--metrics", "pe", "--out", str(tmp_path / "e")]) == 2
    assert not (tmp_path / "e").exists()


def test_moved_names_keep_working() -> None:
    """The banks live in psychofeat.metric_banks, the scores in hvs.detection_scores and run_detect in
    hvs.detection_report; the old names remain."""
    import psychofeat.hvs.detection as old
    import psychofeat.hvs.detection_report as report
    import psychofeat.hvs.detection_scores as scores
    import psychofeat.metric_banks as banks

    for name in ("DistanceBank", "FeatureMetric", "FeatureBank", "ClassicBank"):
        assert getattr(old, name) is getattr(banks, name)
    for name in ("score_rows", "constant_threshold_reference", "random_summary", "summary_table"):
        assert getattr(old, name) is getattr(scores, name)
    with pytest.warns(DeprecationWarning, match=r"detection\.run_detect is deprecated.*detection_report"):
        assert old.run_detect is report.run_detect
