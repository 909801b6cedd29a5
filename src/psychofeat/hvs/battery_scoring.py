"""Scoring of the low-level vision battery: criterion search on sampled distances and the scores (docs/battery.md).

Every test samples a model's distance D at fixed log-spaced test contrasts per condition (a mask contrast, a test
frequency); every metric, channel selection and single channel is read off the same images. Thresholds and
matches are then found with the shared search `psychofeat.hvs.threshold_search.bisect_log_contrast`, whose
evaluator is the piecewise log–log interpolant of the samples (exact at the samples; the bisection refines to
well below the sample spacing and its last step interpolates within one segment, so the result is that
interpolant's crossing). A brute-force sweep of the true distance agrees with it to the interpolation error
(tests/test_battery.py).

Scores (the CVPR 2025 choices where they state one):

* ``spearman``: the CVPR 2025 score of detection and masking: at every human threshold point the test contrast is
  multiplied by 2^(j/2), j = −2..2 (0.5 … 2; the CVPR code uses 10 multipliers over the same span) and Spearman's
  rho between the multiplier and the model's distance, pooled over the points. 1 when the distance at every human
  threshold is the same (the model's threshold curve has the human shape), lower when it is not.
* ``rmse``/``bias``: predicted thresholds t (criterion κ: log κ = mean of log D at the human thresholds, one
  per metric and test, as `psychofeat hvs detect`) vs human h, in log10 units; for matching, the log10 RMSE of the
  matched contrasts (no criterion: equal distances), as the CVPR 2025 paper.
* ``slope``: masking only — least-squares slope of log threshold vs log mask contrast over masks ≥ 0.03
  (Weber's law: 1; the human data: ~0.7; no masking: 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from psychofeat.hvs.threshold_search import STATUS_BELOW, STATUS_UNDETECTED, bisect_log_contrast

TINY = np.finfo(np.float64).tiny
SLOPE_MIN_MASK = 0.03


def log_distance(d: np.ndarray) -> np.ndarray:
    """log10 D with zeros (silent channels) at log10 of the smallest float (kept finite for interpolation)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.maximum(np.asarray(d, dtype=np.float64), TINY))


def search_sampled(x0: np.ndarray, step: float, n: np.ndarray, log_d: np.ndarray, log_target: np.ndarray,
                   n_steps: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Where each of S sampled curves reaches its target: (log10 contrast, status) per search.

    Search s has samples log c = x0[s] + k·step, k < n[s], with log10 D in `log_d[s, k]` (S×K, extra columns
    ignored). `bisect_log_contrast` runs on the curves' log–log interpolants; a curve below its target at its last
    sample is ``undetected``, one at or above it at its first is ``below_range``."""
    x0 = np.asarray(x0, dtype=np.float64)
    n = np.asarray(n, dtype=np.int64)
    y = np.asarray(log_d, dtype=np.float64)

    def evaluate(s: np.ndarray, x: np.ndarray) -> np.ndarray:
        pos = (x - x0[s]) / step
        j = np.clip(np.floor(pos + 1e-9).astype(np.int64), 0, n[s] - 2)
        t = pos - j
        y0, y1 = y[s, j], y[s, j + 1]
        return 10.0 ** (y0 + t * (y1 - y0))

    hi = x0 + (n - 1) * step
    res = bisect_log_contrast(evaluate, 10.0 ** np.asarray(log_target, dtype=np.float64), (x0, hi), n_steps)
    return res.log10_threshold, res.status.astype(str)


def clamp_censored(logc: np.ndarray, status: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Censored searches at their range ends (undetected → upper, below range → lower), as the CVPR code does."""
    out = np.where(status == STATUS_UNDETECTED, hi, logc)
    return np.where(status == STATUS_BELOW, lo, out)


def multiplier_spearman(k: np.ndarray, d: np.ndarray) -> np.ndarray:
    """CVPR score per column: Spearman(multiplier index, distance) pooled over points; `k` (P,), `d` (P×M)."""
    from psychofeat.stats import srcc_rows

    ok = np.isfinite(d).all(axis=1)
    k, d = np.asarray(k, dtype=np.float64)[ok], d[ok]
    out = srcc_rows(d.T, k)
    const = np.ptp(d, axis=0) == 0
    return np.where(const, np.nan, out)


def ls_slope(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return float("nan")
    return float(np.polyfit(x[ok], y[ok], 1)[0])


def masking_scores(d: np.ndarray, log_c: np.ndarray, n: np.ndarray, center: int, mk: int, step: float,
                   human_mask: np.ndarray, human_test: np.ndarray, n_steps: int = 16) -> dict[str, np.ndarray]:
    """Scores of M columns on one masking test. `d`: J conditions × K samples × M distances at log contrasts
    `log_c` (J×K, human threshold at sample `center`), `n` valid samples per condition.

    Returns per column: spearman, rmse, bias, spearman_thr, slope, n_censored, log10_kappa; and the
    predicted log10 thresholds (J×M) as ``pred``."""
    from psychofeat.stats import srcc_rows

    j_n, k_n, m_n = d.shape
    ld = log_distance(d)
    alive = np.nanmax(d.reshape(-1, m_n), axis=0) > 0
    log_kappa = ld[:, center, :].mean(axis=0)
    rep_j = np.repeat(np.arange(j_n), m_n)
    rep_m = np.tile(np.arange(m_n), j_n)
    x0 = log_c[:, 0]
    logc, status = search_sampled(x0[rep_j], step, n[rep_j], ld[rep_j, :, rep_m], log_kappa[rep_m], n_steps)
    pred = clamp_censored(logc, status, x0[rep_j], x0[rep_j] + (n[rep_j] - 1) * step).reshape(j_n, m_n)
    censored = (status != "ok").reshape(j_n, m_n).sum(axis=0)
    lh = np.log10(human_test)
    err = pred - lh[:, None]
    sl = slice(center - mk, center + mk + 1)
    kk = np.tile(np.arange(-mk, mk + 1), j_n)
    spear = multiplier_spearman(kk, d[:, sl, :].reshape(-1, m_n))
    lm = np.log10(human_mask)
    hi_mask = human_mask >= SLOPE_MIN_MASK
    out = {
        "spearman": spear,
        "rmse": np.sqrt(np.mean(err**2, axis=0)),
        "bias": err.mean(axis=0),
        "spearman_thr": srcc_rows(pred.T, lh) if j_n >= 3 else np.full(m_n, np.nan),
        "slope": np.array([ls_slope(lm[hi_mask], pred[hi_mask, m]) for m in range(m_n)]),
        "n_censored": censored.astype(float),
        "log10_kappa": log_kappa,
        "pred": pred,
    }
    for key in ("spearman", "rmse", "bias", "spearman_thr", "slope", "log10_kappa"):
        out[key] = np.where(alive, out[key], np.nan)
    return out


def matching_scores(d_ref: np.ndarray, d_test: np.ndarray, x0: float, step: float, k_n: int,
                    pairs: pd.DataFrame, freqs: Sequence[float], n_steps: int = 16) -> dict[str, np.ndarray]:
    """Matches of M columns: `d_ref` R×M (reference gratings vs blank), `d_test` F×K×M (test gratings at
    log c = x0 + k·step vs blank). `pairs`: rows (reference_index, test_frequency, match_contrast) to score.
    Returns rmse, bias, n_censored per column and ``pred`` (rows × M log10 matched contrasts)."""
    m_n = d_ref.shape[1]
    fi = np.array([list(freqs).index(f) for f in pairs["test_frequency"]], dtype=np.int64)
    ri = pairs["reference_index"].to_numpy(dtype=np.int64)
    p_n = len(pairs)
    rep_p = np.repeat(np.arange(p_n), m_n)
    rep_m = np.tile(np.arange(m_n), p_n)
    ld = log_distance(d_test)
    target = log_distance(d_ref)[ri[rep_p], rep_m]
    logc, status = search_sampled(np.full(rep_p.size, x0), step, np.full(rep_p.size, k_n),
                                  ld[fi[rep_p], :, rep_m], target, n_steps)
    pred = clamp_censored(logc, status, np.full(rep_p.size, x0), np.full(rep_p.size, x0 + (k_n - 1) * step))
    pred = pred.reshape(p_n, m_n)
    alive = (np.nanmax(d_test.reshape(-1, m_n), axis=0) > 0) & (d_ref.max(axis=0) > 0)
    err = pred - np.log10(pairs["match_contrast"].to_numpy(dtype=np.float64))[:, None]
    out = {"rmse": np.sqrt(np.mean(err**2, axis=0)), "bias": err.mean(axis=0),
           "n_censored": (status != "ok").reshape(p_n, m_n).sum(axis=0).astype(float), "pred": pred}
    for key in ("rmse", "bias"):
        out[key] = np.where(alive, out[key], np.nan)
    return out


def pe_correlations(channels: pd.DataFrame, score_cols: Sequence[str], n_permutations: int,
                    seed: int) -> pd.DataFrame:
    """Per layer and pooled: Spearman of PE, mu1, mu2 with each channel score, permutation p, Holm over layers.

    Holm corrects each (score, channel measure) family over its layers; the pooled row is the mean rho over
    layers with a within-layer permutation null (as `psychofeat iqa-claim`)."""
    from psychofeat.stats import holm, mean_rho_permutation_test, spearman_permutation_test

    recs: list[dict[str, Any]] = []
    measures = [m for m in ("pe", "mu1", "mu2") if m in channels and channels[m].notna().any()]
    for score in score_cols:
        for meas in measures:
            fam: list[dict[str, Any]] = []
            pairs = []
            for layer, g in channels.groupby("layer", sort=False):
                ok = g[score].notna() & g[meas].notna()
                x, y = g.loc[ok, meas].to_numpy(float), g.loc[ok, score].to_numpy(float)
                res = spearman_permutation_test(x, y, n_permutations, seed) if ok.sum() >= 3 else None
                fam.append({"score": score, "measure": meas, "layer": layer, "n": int(ok.sum()),
                            "rho": res.rho if res else np.nan, "p_value": res.p_value if res else np.nan})
                if ok.sum() >= 3:
                    pairs.append((x, y))
            ph = holm(np.array([r["p_value"] for r in fam]))
            for r, p in zip(fam, ph, strict=True):
                r["p_holm"] = p
            pooled = mean_rho_permutation_test(pairs, n_permutations, seed)
            fam.append({"score": score, "measure": meas, "layer": "pooled (mean rho)",
                        "n": int(sum(len(p[0]) for p in pairs)), "rho": pooled["mean_rho"],
                        "p_value": pooled["p_value"], "p_holm": pooled["p_value"]})
            recs.extend(fam)
    return pd.DataFrame.from_records(recs, columns=["score", "measure", "layer", "n", "rho", "p_value", "p_holm"])


def selection_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per bank, test and score: PE top-k, bottom-k, all channels, and random-k (mean, s.d., and the fraction of
    random seeds that do better than top-k and than bottom-k; better = higher Spearman, lower RMSE)."""
    recs = []
    for (bank, test), g in results.groupby(["bank", "test"], sort=False):
        r = g[g["group"] == "pe-random"]
        if r.empty:
            continue
        for score, higher in (("spearman", True), ("rmse", False), ("slope", None)):
            if g[score].notna().sum() == 0:
                continue
            rec: dict[str, Any] = {"bank": bank, "test": test, "score": score, "n_seeds": len(r),
                                   "random_mean": float(r[score].mean()),
                                   "random_sd": float(r[score].std(ddof=1)) if len(r) > 1 else np.nan}
            for grp in ("pe-top", "pe-bottom", "pe-all"):
                t = g[g["group"] == grp]
                v = float(t[score].iloc[0]) if len(t) else np.nan
                rec[grp] = v
                if higher is not None and grp != "pe-all":
                    better = (r[score] > v) if higher else (r[score] < v)
                    rec[f"frac_random_better_than_{grp.split('-')[1]}"] = float(better.mean())
            recs.append(rec)
    return pd.DataFrame.from_records(recs)


__all__ = [
    "SLOPE_MIN_MASK",
    "clamp_censored",
    "log_distance",
    "masking_scores",
    "matching_scores",
    "multiplier_spearman",
    "pe_correlations",
    "search_sampled",
    "selection_summary",
]
