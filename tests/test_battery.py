"""Low-level vision battery (`psychofeat.hvs.battery`): stimuli, criterion search and known-truth observers.

Truths are computed here independently: analytic luminance maps, a brute-force sweep of the distance, an ideal
observer whose masking function is known in closed form, and PSNR, which cannot mask.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from psychofeat.hvs.battery import BatteryConfig, MemoBank, bank_distances, quick_config, run_masking, run_matching
from psychofeat.hvs.battery_scoring import pe_correlations, search_sampled
from psychofeat.hvs.battery_stimuli import (
    Viewing,
    detection_stimuli,
    gabor_pattern,
    human_masking,
    human_matching,
    masking_test,
    michelson,
)
from psychofeat.metric_banks import ClassicBank

pytestmark = pytest.mark.usefixtures("data_root")
VIEW = Viewing()


def _coords(view: Viewing) -> tuple[np.ndarray, np.ndarray]:
    c = (view.size - 1) / 2
    i = np.arange(view.size, dtype=np.float64)
    x = (i - c) / view.ppd
    return np.broadcast_to(x[None, :], (view.size, view.size)), np.broadcast_to(-x[:, None], (view.size, view.size))


def _decoded(view: Viewing, lum: np.ndarray) -> np.ndarray:
    img = view.images(lum)  # float32, what the networks see
    return view.display.luminance_from_image(img[:, 0].double().numpy())


# --------------------------------------------------------------------------------------------- stimuli
def test_coherent_masking_stimulus_matches_analytic_luminance() -> None:
    x, y = _coords(VIEW)
    f, sigma, lb, cm, ct = 2.0, 0.5, 32.0, 0.1, 0.05
    truth = lb * (1 + cm * np.cos(2 * np.pi * f * x)
                  + ct * np.exp(-(x**2 + y**2) / (2 * sigma**2)) * np.cos(2 * np.pi * f * x))
    mt = masking_test("masking_coherent", VIEW)
    lum, clipped = mt.luminance(cm, ct)
    assert clipped[0] == 0
    back = _decoded(VIEW, lum)[0]
    assert np.max(np.abs(back / truth - 1)) < 1e-6
    # stated test contrast: projection of (L/L_b − 1 − c_m·M) on the test pattern
    ref = _decoded(VIEW, mt.luminance(cm, 0.0)[0])[0]
    t = mt.test_pattern
    est = float(np.sum((back - ref) / lb * t) / np.sum(t * t))
    assert abs(est - ct) < 1e-6 * ct + 1e-9
    mask_truth = lb * (1 + cm * np.cos(2 * np.pi * f * x))
    assert abs(michelson(ref) / michelson(mask_truth) - 1) < 1e-6
    assert abs(float(np.mean(ref)) / float(np.mean(mask_truth)) - 1) < 1e-6


def test_noise_mask_has_stated_rms_contrast_and_spectrum() -> None:
    mt = masking_test("masking_incoherent", VIEW)
    lb, cm = 37.0, 0.05
    ref = _decoded(VIEW, mt.luminance(cm, 0.0)[0])[0]
    assert abs(float(np.mean(ref)) / lb - 1) < 1e-6
    assert abs(float(np.std(ref / lb - 1)) - cm) < 1e-6 * cm
    spec = np.abs(np.fft.fft2(mt.mask_pattern))
    fr = np.fft.fftfreq(VIEW.size) * VIEW.ppd
    rho = np.hypot(fr[None, :], fr[:, None])
    assert spec[rho > 12.0].max() < 1e-9 * spec.max()


def test_matching_and_detection_stimuli_match_stated_luminance() -> None:
    x, _ = _coords(VIEW)
    lum = human_matching()  # the data load
    assert len(lum) == 72
    from psychofeat.hvs.battery_stimuli import MatchingTest

    mt = MatchingTest()
    out = _decoded(VIEW, mt.luminance(VIEW, 5.0, 0.3))[0]
    truth = 10.0 * (1 + 0.3 * np.sin(2 * np.pi * 5.0 * x))
    assert np.max(np.abs(out / truth - 1)) < 1e-6
    stim = detection_stimuli(VIEW, max_rows=2)
    for i in range(len(stim)):
        row = stim.rows.iloc[i]
        img = stim.render([i], [row["threshold_contrast"]])[:, 0].double().numpy()
        back = VIEW.display.luminance_from_image(img)[0]
        truth = row["luminance"] * (1 + row["threshold_contrast"] * stim.pattern(i))
        assert np.max(np.abs(back / truth - 1)) < 1e-6, row["dataset"]
        blank = VIEW.display.luminance_from_image(stim.blank(VIEW.size, row["mean"])[0, 0].double().numpy())
        assert np.allclose(blank, row["luminance"], rtol=1e-6)


# --------------------------------------------------------------------------------------------- search
def _curve(logc: np.ndarray) -> np.ndarray:
    """A smooth monotone distance with a bend (threshold-like, then compressive)."""
    c = 10.0**logc
    return c**2 / (1e-4 + c**0.6)


def test_sampled_search_agrees_with_brute_force_sweep() -> None:
    rng = np.random.default_rng(0)
    step = math.log10(2) / 2
    x0 = rng.uniform(-3.5, -2.5, 50)
    n = np.full(50, 25)
    grid = x0[:, None] + np.arange(25) * step
    target = _curve(rng.uniform(-2.2, -0.5, 50))
    logc, status = search_sampled(x0, step, n, np.log10(_curve(grid)), np.log10(target))
    assert (status == "ok").all()
    sweep = np.linspace(-3.5, 0.5, 200_001)
    dense = _curve(sweep)
    brute = np.array([sweep[np.argmax(dense >= t)] for t in target])
    assert np.max(np.abs(logc - brute)) < 0.01
    # a power law is exactly linear in log–log: the search is then exact
    logc2, _ = search_sampled(x0, step, n, 2 * grid, np.full(50, -3.0))
    assert np.max(np.abs(logc2 + 1.5)) < 1e-6


class IdealObserver:
    """Energy of a quadrature pair matched to the test Gabor, in luminance contrast (decoded through the display),
    with noise proportional to the reference's energy: D = |E_T − E_R| / (E_R + E_0). Known truth: on a
    same-phase grating mask E ∝ (c_m + c_t)², so at c_m² ≫ E_0 D = 2r + r², r = c_t/c_m: Weber's law, slope 1."""

    label = "ideal"
    names = ["ideal"]
    groups = ["ideal"]

    def __init__(self, view: Viewing, freq: float, sigma: float, background: float) -> None:
        self.view, self.bg = view, background
        self.even = gabor_pattern(view, freq, sigma)
        self.odd = gabor_pattern(view, freq, sigma, phase=0.0)
        self.e0 = float((1e-3 * np.sum(self.even**2)) ** 2)

    def _energy(self, images: torch.Tensor) -> np.ndarray:
        c = self.view.display.luminance_from_image(images[:, 0].double().numpy()) / self.bg - 1.0
        return np.einsum("nij,ij->n", c, self.even) ** 2 + np.einsum("nij,ij->n", c, self.odd) ** 2

    def distances(self, images: torch.Tensor, blank: torch.Tensor, index: np.ndarray) -> np.ndarray:
        et, er = self._energy(images), self._energy(blank)
        return (np.abs(et - er) / (er + self.e0))[:, None]


@pytest.fixture(scope="module")
def ideal_masking() -> tuple[pd.DataFrame, pd.DataFrame]:
    obs = IdealObserver(VIEW, 2.0, 0.5, 32.0)
    res, curves, _ = run_masking("masking_coherent", [obs], VIEW, BatteryConfig(), None, progress=False)
    return res, curves


def test_ideal_observer_gives_weber_masking(ideal_masking: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    res, curves = ideal_masking
    row = res[res["metric"] == "ideal"].iloc[0]
    assert abs(row["slope"] - 1.0) < 0.05
    c = curves[curves["metric"] == "ideal"]
    hi = c[c["x"] >= 0.03]
    local = np.diff(np.log10(hi["predicted"])) / np.diff(np.log10(hi["x"]))
    assert np.all(np.abs(local - 1.0) < 0.05)
    assert row["n_censored"] == 0


def test_criterion_search_agrees_with_brute_force_on_the_model(ideal_masking: tuple[pd.DataFrame,
                                                                                    pd.DataFrame]) -> None:
    """Search on the samples vs a brute-force sweep of rendered stimuli through the same observer."""
    res, curves = ideal_masking
    obs = IdealObserver(VIEW, 2.0, 0.5, 32.0)
    mt = masking_test("masking_coherent", VIEW)
    human = human_masking("masking_coherent")
    # the criterion the battery used: geometric mean of D at the human thresholds
    d_h = [obs.distances(VIEW.images(mt.luminance(cm, h)[0]), VIEW.images(mt.luminance(cm, 0.0)[0]), np.arange(1))
           for cm, h in zip(human["mask_contrast"], human["test_contrast"], strict=True)]
    kappa = 10 ** np.mean(np.log10(np.concatenate(d_h)))
    c = curves[curves["metric"] == "ideal"].reset_index(drop=True)
    for j in (1, len(human) - 1):
        cm = human["mask_contrast"].iloc[j]
        sweep = 10 ** np.linspace(np.log10(c["predicted"].iloc[j]) - 0.1, np.log10(c["predicted"].iloc[j]) + 0.1, 201)
        d = obs.distances(VIEW.images(mt.luminance(cm, sweep)[0]), VIEW.images(mt.luminance(cm, 0.0)[0]),
                          np.arange(sweep.size))[:, 0]
        brute = sweep[np.argmax(d >= kappa)]
        assert abs(math.log10(brute) - math.log10(c["predicted"].iloc[j])) < 0.003


# --------------------------------------------------------------------------------------------- PSNR
def test_psnr_cannot_mask_and_matches_by_contrast_constancy() -> None:
    cfg = quick_config()
    bank = [ClassicBank(["psnr"])]
    for test in ("masking_coherent", "masking_incoherent"):
        res, curves, _ = run_masking(test, bank, VIEW, cfg, None, progress=False)
        p = np.log10(curves["predicted"].to_numpy())
        assert np.ptp(p) < 0.02, test
        assert abs(res.loc[res["metric"] == "psnr", "slope"].iloc[0]) < 0.03
    res, curves, _ = run_matching(bank, VIEW, cfg, None, progress=False)
    dev = np.log10(curves["predicted"]) - np.log10(curves["reference"])
    assert np.max(np.abs(dev)) < 0.02  # partial cycles in the 3.7° field only
    at5 = curves["x"] == 5.0
    assert np.max(np.abs(dev[at5])) < 0.005  # the same grating: only the interpolation between samples


# --------------------------------------------------------------------------------------------- plumbing
def test_memo_bank_runs_each_image_once() -> None:
    calls = []

    class Counting:
        label, names, groups = "c", ["c"], ["c"]

        def distances(self, images: torch.Tensor, blank: torch.Tensor, index: np.ndarray) -> np.ndarray:
            calls.append(images.shape[0])
            return images.mean(dim=(1, 2, 3)).double().numpy()[:, None]

    memo = MemoBank(Counting())
    a, b = torch.rand(3, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    first = memo.distances(a, b, np.arange(3))
    again = memo.distances(torch.cat([a[1:], a[:1]]), b, np.arange(3))
    assert calls == [3] and np.allclose(again[:, 0], first[[1, 2, 0], 0])
    d, ch = bank_distances(memo, b, a, 2, channels=True)
    assert ch == {} and np.allclose(d, first)


def test_pe_correlations_find_a_planted_effect_and_holm_adjusts() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for layer, effect in (("a", 1.0), ("b", 0.0)):
        pe = rng.uniform(0, 1, 60)
        rows.append(pd.DataFrame({"layer": layer, "pe": pe, "mu1": rng.uniform(0, 1, 60), "mu2": np.nan,
                                  "s": effect * pe + 0.1 * rng.standard_normal(60)}))
    out = pe_correlations(pd.concat(rows, ignore_index=True), ["s"], 500, 0)
    a = out[(out["measure"] == "pe") & (out["layer"] == "a")].iloc[0]
    b = out[(out["measure"] == "pe") & (out["layer"] == "b")].iloc[0]
    assert a["rho"] > 0.9 and a["p_value"] < 0.01 and a["p_holm"] >= a["p_value"]
    assert b["p_value"] > 0.01
    assert set(out["measure"]) == {"pe", "mu1"}  # mu2 missing → not tested
