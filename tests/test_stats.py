"""psychofeat.stats against scipy, numpy and hand-computed cases."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import optimize, stats

from psychofeat import stats as S
from psychofeat.errors import InputError, UnknownNameError
from psychofeat.stats import core, logistic, resampling
from psychofeat.stats.core import _chunks
from psychofeat.stats.resampling import _kendall_rows


def _tied_data(seed: int, n: int = 47) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=n), 1)  # many ties
    y = np.round(x + rng.normal(size=n), 1)
    return x, y


# ----------------------------------------------------------------------------------------- correlations
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_match_scipy(seed: int) -> None:
    x, y = _tied_data(seed)
    assert S.srcc(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert S.krcc(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert S.pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


def test_srcc_rows_match_scipy_per_row() -> None:
    rng = np.random.default_rng(11)
    human = rng.normal(size=30)
    preds = np.round(rng.normal(size=(7, 30)) + human, 1)
    preds[3] = 1.0  # a dead channel
    got = S.srcc_rows(preds, human)
    want = [stats.spearmanr(p, human).statistic for k, p in enumerate(preds) if k != 3]
    np.testing.assert_allclose(np.delete(got, 3), want, atol=1e-12)
    assert np.isnan(got[3])


def test_bootstrap_statistics_equal_scipy_on_the_same_resamples() -> None:
    x, y = _tied_data(3, n=30)
    boot = S.bootstrap_statistics(x, y, n_boot=60, seed=5)
    idx = S.bootstrap_indices(x.size, 60, 5)
    want_s = [stats.spearmanr(x[i], y[i]).statistic for i in idx]
    want_k = [stats.kendalltau(x[i], y[i]).statistic for i in idx]
    np.testing.assert_allclose(boot["srcc"], want_s, atol=1e-12)
    np.testing.assert_allclose(boot["krcc"], want_k, atol=1e-12)


def test_kendall_loop_path_equals_vectorised_path(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _tied_data(4, n=40)
    idx = S.bootstrap_indices(x.size, 25, 0)
    vec = _kendall_rows(x[idx], y[idx])
    monkeypatch.setattr(resampling, "KENDALL_VECTOR_MAX_N", 10)
    loop = _kendall_rows(x[idx], y[idx])
    np.testing.assert_allclose(vec, loop, atol=1e-12)


def test_chunked_bootstrap_draws_the_same_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _tied_data(5, n=25)
    whole = S.bootstrap_statistics(x, y, n_boot=40, seed=9)
    monkeypatch.setattr(core, "_CHUNK_ELEMENTS", 100)  # forces many small chunks
    assert len(_chunks(40, 25, 25 * 12)) > 5
    chunked = S.bootstrap_statistics(x, y, n_boot=40, seed=9)
    for key in ("srcc", "krcc", "plcc", "rmse"):
        np.testing.assert_allclose(chunked[key], whole[key], atol=1e-12)
    np.testing.assert_array_equal(S.bootstrap_indices(25, 40, 9), np.random.default_rng(9).integers(0, 25, (40, 25)))


# ------------------------------------------------------------------------------------------ logistic fit
@pytest.mark.parametrize("true", [(80.0, 5.0, 4.0, 1.2), (2.0, 9.0, -1.0, 0.3)])
def test_logistic_fit_recovers_known_parameters(true: tuple[float, float, float, float]) -> None:
    rng = np.random.default_rng(0)
    b1, b2, b3, b4 = true
    x = rng.uniform(b3 - 5 * b4, b3 + 5 * b4, 200)
    y = S.logistic4(x, *true) + rng.normal(0, 0.002 * abs(b1 - b2), x.size)
    fit = S.fit_logistic(x, y)
    assert fit.method == "logistic"
    assert [fit.b1, fit.b2, fit.b3, fit.b4] == pytest.approx(list(true), rel=0.02, abs=0.02)
    assert fit.increasing == (b1 > b2)
    # the same least-squares optimum as MINPACK (scipy.optimize.curve_fit) started at the truth
    p, _ = optimize.curve_fit(S.logistic4, x, y, p0=true)
    sse_scipy = float(((S.logistic4(x, *p) - y) ** 2).sum())
    assert fit.sse == pytest.approx(sse_scipy, rel=1e-6)


def test_logistic_fit_does_not_depend_on_the_metric_units() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 59)
    y = S.logistic4(x, 90, 0, 0.4, 0.08) + rng.normal(0, 4, x.size)
    base = S.fit_logistic(x, y)
    for scale in (1e-6, 1e6):
        fit = S.fit_logistic(x * scale, y)
        assert fit.sse == pytest.approx(base.sse, rel=1e-6)
        assert fit.b3 == pytest.approx(base.b3 * scale, rel=1e-4)
        assert S.plcc(x * scale, y) == pytest.approx(S.plcc(x, y), abs=1e-9)


def test_plcc_and_rmse_are_those_of_the_fitted_curve() -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 10, 80)
    y = S.logistic4(x, 60, 10, 5, 1.5) + rng.normal(0, 3, x.size)
    fit = S.fit_logistic(x, y)
    mapped = S.logistic4(x, fit.b1, fit.b2, fit.b3, fit.b4)
    assert S.plcc(x, y) == pytest.approx(stats.pearsonr(mapped, y).statistic, abs=1e-10)
    assert S.rmse(x, y) == pytest.approx(math.sqrt(np.mean((mapped - y) ** 2)), rel=1e-10)
    assert S.rmse(x, y) == pytest.approx(3.0, rel=0.2)  # the noise we added
    # PLCC keeps the sign: a metric that disagrees with the humans gets a negative PLCC
    assert S.plcc(-x, y) == pytest.approx(-S.plcc(x, y), abs=1e-8)


def test_linear_fallback_when_the_fit_does_not_converge(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    y = 2.0 * x + 1.0 + rng.normal(0, 0.5, x.size)
    monkeypatch.setattr(logistic, "_LM_MAX_ITER", 1)  # no start can converge in one step
    fit = S.fit_logistic(x, y)
    assert fit.method == "linear"
    slope, intercept = np.polyfit(x, y, 1)
    assert (fit.slope, fit.intercept) == pytest.approx((slope, intercept), rel=1e-10)
    assert math.isnan(fit.b1)
    assert S.plcc(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    res = S.agreement(x, y, "dmos", n_boot=20)
    assert res["fit_method"] == "linear" and res["boot_linear_fallbacks"] == 20


def test_constant_input_cannot_be_fitted() -> None:
    with pytest.raises(InputError, match="all equal"):
        S.fit_logistic(np.ones(10), np.arange(10.0))


# ------------------------------------------------------------------------------- sign convention, agreement
def test_orient_follows_the_score_type() -> None:
    d = np.array([0.1, 0.5, 0.2])
    np.testing.assert_array_equal(S.orient(d, "dmos"), d)
    np.testing.assert_array_equal(S.orient(d, "MOS"), -d)
    with pytest.raises(UnknownNameError, match="dmos"):
        S.orient(d, "dmoss")


def test_agreement_is_positive_for_a_good_distance_on_both_score_types() -> None:
    rng = np.random.default_rng(4)
    damage = rng.uniform(0, 1, 59)
    dist = damage + rng.normal(0, 0.1, damage.size)
    dmos = 100 * damage
    mos = 5 - 4 * damage
    a_dmos = S.agreement(dist, dmos, "dmos", n_boot=200)
    a_mos = S.agreement(dist, mos, "mos", n_boot=200)
    for key in ("srcc", "krcc", "plcc"):
        assert a_dmos[key] > 0.7 and a_mos[key] > 0.7
        assert a_dmos[key] == pytest.approx(a_mos[key], abs=1e-9)  # same ranks, same fit up to scale
    assert a_dmos["srcc"] == pytest.approx(stats.spearmanr(dist, dmos).statistic, abs=1e-12)
    assert a_mos["srcc"] == pytest.approx(-stats.spearmanr(dist, mos).statistic, abs=1e-12)
    assert a_mos["rmse"] == pytest.approx(a_dmos["rmse"] * 4 / 100, rel=1e-6)  # RMSE in the human units


def test_agreement_output_is_reproducible_and_complete() -> None:
    x, y = _tied_data(6, n=40)
    a = S.agreement(x, y, "dmos", n_boot=100, seed=1)
    b = S.agreement(x, y, "dmos", n_boot=100, seed=1)
    c = S.agreement(x, y, "dmos", n_boot=100, seed=2)
    assert json.dumps(a) == json.dumps(b)  # (NaN-safe equality: the fit may be the linear fallback)
    assert a["srcc_lo"] != c["srcc_lo"]
    for key in ("srcc", "krcc", "plcc", "rmse"):
        assert a[f"{key}_lo"] <= a[key] <= a[f"{key}_hi"]
    assert a["n"] == 40 and a["n_boot"] == 100 and a["ci_level"] == 0.95
    none = S.agreement(x, y, "dmos", n_boot=0)
    assert math.isnan(none["srcc_lo"]) and none["srcc"] == a["srcc"]


def test_ci_contains_the_truth_on_synthetic_data() -> None:
    # bivariate normal: Spearman = 6/pi asin(rho/2), Kendall = 2/pi asin(rho) (Kruskal 1958)
    rho = 0.6
    rng = np.random.default_rng(7)
    xy = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=240)
    a = S.agreement(xy[:, 0], xy[:, 1], "dmos", n_boot=1000, seed=0)
    truth = {"srcc": 6 / math.pi * math.asin(rho / 2), "krcc": 2 / math.pi * math.asin(rho), "plcc": rho}
    for key, value in truth.items():
        assert a[f"{key}_lo"] < value < a[f"{key}_hi"], (key, a[f"{key}_lo"], value, a[f"{key}_hi"])
    # and the interval narrows like 1/sqrt(n)
    small = S.agreement(xy[:60, 0], xy[:60, 1], "dmos", n_boot=1000, seed=0)
    ratio = (small["srcc_hi"] - small["srcc_lo"]) / (a["srcc_hi"] - a["srcc_lo"])
    assert 1.5 < ratio < 2.7


def test_percentile_ci_matches_numpy_and_ignores_nan() -> None:
    v = np.arange(1001.0)
    assert S.percentile_ci(v) == pytest.approx((25.0, 975.0))
    assert S.percentile_ci(np.append(v, np.nan)) == pytest.approx((25.0, 975.0))
    with pytest.raises(InputError):
        S.percentile_ci(v, 1.5)


def test_agreement_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="length"):
        S.agreement([1, 2, 3, 4, 5], [1, 2, 3, 4], "dmos")
    with pytest.raises(InputError, match="NaN"):
        S.agreement([1, 2, np.nan, 4, 5], [1, 2, 3, 4, 5], "dmos")
    with pytest.raises(InputError, match="at least"):
        S.agreement([1, 2], [1, 2], "dmos")


def test_agreement_table_has_one_row_per_metric() -> None:
    x, y = _tied_data(8, n=30)
    table = S.agreement_table({"a": x, "b": -x}, y, "dmos", n_boot=50)
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "srcc"] == pytest.approx(-table.loc["b", "srcc"])


# --------------------------------------------------------------------------------------------------- 2AFC
def test_two_afc_hand_computed() -> None:
    d0 = [1.0, 2.0, 3.0, 3.0]
    d1 = [2.0, 1.0, 3.0, 5.0]
    h = [0.8, 0.6, 0.3, 1.0]  # fraction of humans who chose p0
    np.testing.assert_allclose(S.two_afc_scores(d0, d1, h), [0.8, 0.4, 0.5, 1.0])
    assert S.two_afc_score(d0, d1, h) == pytest.approx(0.675)
    # LPIPS's score_2afc_dataset, whose judge is the fraction who chose p1
    gts = 1 - np.array(h)
    a, b = np.array(d0), np.array(d1)
    lpips = (a < b) * (1.0 - gts) + (b < a) * gts + (b == a) * 0.5
    assert S.two_afc_score(d0, d1, h) == pytest.approx(lpips.mean())


def test_two_afc_ci_and_ceiling() -> None:
    rng = np.random.default_rng(0)
    h = rng.choice([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], size=500)
    d0 = rng.normal(size=500)
    d1 = d0 + (h - 0.5) + rng.normal(0, 0.3, 500)  # p0 closer when humans prefer it
    res = S.two_afc(d0, d1, h, n_boot=500)
    assert res["two_afc_lo"] < res["two_afc"] < res["two_afc_hi"]
    assert res["two_afc_max"] == pytest.approx(np.maximum(h, 1 - h).mean())
    assert 0.5 < res["two_afc"] <= res["two_afc_max"]
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        S.two_afc_scores([1.0], [2.0], [1.5])


# ------------------------------------------------------------------------------------- permutation test
def test_permutation_p_value_matches_exact_enumeration() -> None:
    x = np.array([1.0, 2, 3, 4, 5, 6, 7])
    y = np.array([2.0, 1, 4, 3, 7, 5, 6])
    rho = stats.spearmanr(x, y).statistic
    perms = np.array(list(itertools.permutations(y)))
    exact = np.mean([abs(stats.spearmanr(x, p).statistic) >= abs(rho) - 1e-12 for p in perms])
    res = S.spearman_permutation_test(x, y, n_permutations=20000, seed=0)
    assert res.rho == pytest.approx(rho, abs=1e-12)
    se = math.sqrt(exact * (1 - exact) / 20000)
    assert abs(res.p_value - exact) < 4 * se + 1 / 20001
    assert S.spearman_permutation_test(x, y, 20000, seed=0) == res  # fixed seed: reproducible


def test_permutation_p_value_is_never_zero() -> None:
    x = np.arange(30.0)
    res = S.spearman_permutation_test(x, x**2, n_permutations=999, seed=1)
    assert res.rho == pytest.approx(1.0)
    assert res.p_value == pytest.approx(1 / 1000)


# --- paired per-image comparisons (shared by the SR experiment and feature inversion) --------------------------
def test_paired_comparisons_match_a_direct_computation() -> None:
    """Any group/unit column names; wins by the score's direction (ties half); non-finite differences left out."""
    import pandas as pd

    rng = np.random.default_rng(11)
    images = [f"im{i}" for i in range(7)]
    vals = {m: rng.normal(size=(2, len(images))) for m in ("a", "b")}
    vals["a"][0, 2] = vals["b"][0, 2]  # a tie in "q"
    vals["a"][1, 5] = np.inf  # a non-finite difference in "d"
    rows = [{"grp": g, "img": im, "method": m, "q": vals[m][0, i] + k, "d": vals[m][1, i]}
            for k, g in enumerate(("G1", "G2")) for m in ("a", "b") for i, im in enumerate(images)]
    n_boot = 300
    got = S.paired_comparisons(pd.DataFrame(rows), [("a", "b"), ("a", "missing")], scores=["q", "d"],
                               higher_better={"q"}, group="grp", unit="img", n_boot=n_boot, seed=3)
    assert list(got.columns) == ["grp", "score", "method", "reference", "n_images", "mean_diff", "ci_low", "ci_high",
                                 "wins", "better"]
    assert got[["grp", "score"]].values.tolist() == [["G1", "q"], ["G1", "d"], ["G2", "q"], ["G2", "d"]]
    for _, row in got.iterrows():
        i = 0 if row["score"] == "q" else 1
        diff = vals["a"][i] - vals["b"][i]
        diff = diff[np.isfinite(diff)]
        sign = 1.0 if row["score"] == "q" else -1.0
        assert row["n_images"] == diff.size and row["mean_diff"] == pytest.approx(diff.mean())
        assert row["wins"] == pytest.approx((np.sum(sign * diff > 0) + 0.5 * np.sum(diff == 0)) / diff.size)
        idx = np.random.default_rng(3).integers(0, diff.size, size=(n_boot, diff.size))
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(np.percentile(diff[idx].mean(1), [2.5, 97.5])))
        assert row["better"] == ("higher" if sign > 0 else "lower")
