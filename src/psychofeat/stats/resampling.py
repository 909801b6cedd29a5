"""Bootstrap over images, paired comparisons, the agreement entry point, and the Spearman permutation test."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _sst

from psychofeat.errors import InputError
from psychofeat.stats import core as _core
from psychofeat.stats.core import (
    CI_LEVEL,
    KENDALL_VECTOR_MAX_N,
    N_BOOT,
    ArrayLike,
    _as_pair,
    _chunks,
    _rowwise_kendall,
    _rowwise_pearson,
    _rowwise_spearman,
    check_score_type,
    krcc,
    orient,
    srcc,
)
from psychofeat.stats.logistic import _fit_one, _plcc_rmse_rows


# ---------------------------------------------------------------------------------------------- bootstrap
def bootstrap_indices(n: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """n_boot x n row indices drawn with replacement (numpy PCG64, `seed`): the same for the same (n, seed).

    This is the resampling every bootstrap here uses; `_bootstrap_chunks` draws the same stream in pieces.
    """
    return np.concatenate([idx for _, idx in _bootstrap_chunks(n, n_boot, seed, n)])


def _bootstrap_chunks(n: int, n_boot: int, seed: int, per_row_cost: int) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, indices) pieces of `bootstrap_indices(n, n_boot, seed)`, drawn lazily to bound memory.

    Drawing a (k1 + k2) x n block at once or as k1 x n then k2 x n from one Generator gives identical
    numbers, so the chunking never changes the result (checked in the tests).
    """
    if n_boot < 1:
        raise InputError(f"n_boot must be at least 1, got {n_boot}.")
    rng = np.random.default_rng(seed)
    for sl in _chunks(n_boot, n, per_row_cost):
        yield sl, rng.integers(0, n, size=(sl.stop - sl.start, n))


def percentile_ci(values: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap values (NaN resamples, e.g. a constant resample, are ignored)."""
    if not 0.0 < level < 1.0:
        raise InputError(f"the CI level must lie in (0, 1), got {level}.")
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(v, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


#: the columns of `paired_comparisons`' table after the group column
PAIRED_COLUMNS = ("score", "method", "reference", "n_images", "mean_diff", "ci_low", "ci_high", "wins", "better")


def paired_comparisons(
    per_image: pd.DataFrame,
    comparisons: Sequence[tuple[str, str]],
    *,
    scores: Sequence[str],
    higher_better: Collection[str],
    group: str = "set",
    unit: str = "name",
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per `group` and score: mean of (method − reference) over the images, its bootstrap 95 % interval and wins.

    `per_image` has one row per (group, unit, method) with the `scores` as columns. Images are resampled with
    replacement (percentile interval, `bootstrap_indices`/`percentile_ci`); `wins` is the fraction of images on which
    the method scores better than the reference (higher for the scores in `higher_better`, lower for the others;
    ties count half). Pairs whose method or reference is missing are left out, and so are non-finite differences
    (an infinite PSNR: a perfect image). Shared by the SR experiment and feature inversion.
    """
    rows: list[dict[str, Any]] = []
    scores = list(scores)
    wide = per_image.pivot_table(index=[group, unit], columns="method", values=scores, sort=False)
    for set_name in per_image[group].drop_duplicates():
        block = wide.xs(set_name, level=group)
        for metric in scores:
            higher = metric in higher_better
            for method, ref in comparisons:
                if (metric, method) not in block.columns or (metric, ref) not in block.columns:
                    continue
                diff = (block[(metric, method)] - block[(metric, ref)]).to_numpy(dtype=np.float64)
                diff = diff[np.isfinite(diff)]
                if diff.size == 0:
                    continue
                sign = 1.0 if higher else -1.0
                boot = diff[bootstrap_indices(diff.size, n_boot, seed)].mean(axis=1)
                lo, hi = percentile_ci(boot)
                rows.append({group: set_name, "score": metric, "method": method, "reference": ref,
                             "n_images": int(diff.size), "mean_diff": float(diff.mean()), "ci_low": lo, "ci_high": hi,
                             "wins": float(np.mean(np.sign(sign * diff) / 2 + 0.5)),
                             "better": "higher" if higher else "lower"})
    return pd.DataFrame(rows, columns=[group, *PAIRED_COLUMNS])


def _kendall_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = a.shape[1]
    if n > KENDALL_VECTOR_MAX_N:  # O(n^2) memory per row would dominate: use scipy's O(n log n) per row
        return np.array([_sst.kendalltau(ai, bi).statistic for ai, bi in zip(a, b)], dtype=np.float64)
    out = np.empty(a.shape[0])
    for sl in _chunks(a.shape[0], n, per_row_cost=n * (n - 1)):
        out[sl] = _rowwise_kendall(a[sl], b[sl])
    return out


def bootstrap_statistics(
    x: np.ndarray, y: np.ndarray, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, np.ndarray]:
    """SRCC, KRCC, PLCC and RMSE of every bootstrap resample (arrays of length n_boot).

    `x` must already be oriented (see `orient`). Also returns `logistic_ok` (False where the logistic fit
    of that resample fell back to the line).
    """
    xa, ya = _as_pair(x, y, min_n=5)
    out = {k: np.empty(n_boot) for k in ("srcc", "krcc", "plcc", "rmse")}
    out["logistic_ok"] = np.empty(n_boot, dtype=bool)
    for sl, idx in _bootstrap_chunks(xa.size, n_boot, seed, per_row_cost=xa.size * 12):
        xb, yb = xa[idx], ya[idx]
        out["srcc"][sl] = _rowwise_spearman(xb, yb)
        out["krcc"][sl] = _kendall_rows(xb, yb)
        out["plcc"][sl], out["rmse"][sl], out["logistic_ok"][sl] = _plcc_rmse_rows(xb, yb)
    return out


# ----------------------------------------------------------------------------------------- entry point
def agreement(
    pred: ArrayLike,
    human: ArrayLike,
    score_type: str,
    n_boot: int = N_BOOT,
    seed: int = 0,
    ci_level: float = CI_LEVEL,
) -> dict[str, Any]:
    """Agreement of a distance with human scores: SRCC, KRCC, PLCC, RMSE, each with a bootstrap CI.

    `pred` is a distance (larger = more different); it is oriented for `score_type` ("mos" | "dmos") so
    that positive correlations mean agreement. PLCC and RMSE come after the 4-parameter logistic fit.
    CIs: percentile bootstrap over images, `n_boot` resamples drawn with `seed` (`n_boot=0`: no CIs).
    Returns a flat, JSON-ready dict: `srcc`, `srcc_lo`, `srcc_hi`, ... `rmse_hi`, the fit (`fit_method`,
    `b1`..`b4`, or `fit_slope`/`fit_intercept` for the linear fallback), `n`, `score_type`, `n_boot`,
    `seed`, `ci_level` and `boot_linear_fallbacks` (resamples whose logistic fit did not converge and used
    the line).
    """
    st = check_score_type(score_type)
    x, y = _as_pair(orient(pred, st), human, min_n=5)
    fit, plcc_v, rmse_v = _fit_one(x, y)
    point = {"srcc": srcc(x, y), "krcc": krcc(x, y), "plcc": plcc_v, "rmse": rmse_v}
    out: dict[str, Any] = {"n": int(x.size), "score_type": st}
    boot = bootstrap_statistics(x, y, n_boot, seed) if n_boot > 0 else None
    for key, value in point.items():
        out[key] = value
        lo, hi = percentile_ci(boot[key], ci_level) if boot is not None else (float("nan"), float("nan"))
        out[f"{key}_lo"], out[f"{key}_hi"] = lo, hi
    out.update({"fit_method": fit.method, "b1": fit.b1, "b2": fit.b2, "b3": fit.b3, "b4": fit.b4})
    out.update({"fit_slope": fit.slope, "fit_intercept": fit.intercept})
    out.update({"n_boot": int(n_boot), "seed": int(seed), "ci_level": float(ci_level)})
    out["boot_linear_fallbacks"] = int((~boot["logistic_ok"]).sum()) if boot is not None else 0
    return out


def agreement_table(
    preds: Mapping[str, ArrayLike],
    human: ArrayLike,
    score_type: str,
    n_boot: int = N_BOOT,
    seed: int = 0,
    ci_level: float = CI_LEVEL,
) -> pd.DataFrame:
    """`agreement` for several metrics, one row each (index: metric name). Same seed -> paired resamples."""
    rows = {name: agreement(p, human, score_type, n_boot, seed, ci_level) for name, p in preds.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("metric")



# ------------------------------------------------------------------------------------ permutation test
@dataclass(frozen=True)
class PermutationResult:
    """Spearman's rho and its two-sided permutation p-value."""

    rho: float
    p_value: float
    n_permutations: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def centred_ranks(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Average ranks of x and y minus their means, and the denominator of Spearman's rho (0: a constant side)."""
    rx, ry = _sst.rankdata(x), _sst.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return rx, ry, float(np.sqrt((rx @ rx) * (ry @ ry)))


def permuted_rhos(
    rx: np.ndarray, ry: np.ndarray, den: float, rng: np.random.Generator, n_permutations: int, step: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """The permutation null of Spearman's rho: y's ranks shuffled against x's, `step` permutations at a time."""
    for start in range(0, n_permutations, step):
        m = min(step, n_permutations - start)
        yield slice(start, start + m), rng.permuted(np.broadcast_to(ry, (m, ry.size)), axis=1) @ rx / den


def srcc_resamples(preds: Mapping[str, np.ndarray], human: ArrayLike, idx: np.ndarray) -> dict[str, np.ndarray]:
    """SRCC of each metric on each resample (rows of `idx`, e.g. `bootstrap_indices`); the scores ranked once."""
    ry = _sst.rankdata(np.asarray(human, dtype=np.float64)[idx], axis=-1)
    return {k: _rowwise_pearson(_sst.rankdata(np.asarray(v, dtype=np.float64)[idx], axis=-1), ry)
            for k, v in preds.items()}


def srcc_with_resamples(
    preds: Mapping[str, np.ndarray], human: ArrayLike, score_type: str, n_boot: int, seed: int
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """SRCC of each metric (oriented to `score_type`) on the data and on `n_boot` common bootstrap resamples
    (`bootstrap_indices(n, n_boot, seed)`; with n_boot = 0 the one "resample" is the data itself)."""
    y = np.asarray(human, dtype=np.float64)
    idx = bootstrap_indices(y.size, n_boot, seed) if n_boot > 0 else np.arange(y.size)[None]
    oriented = {k: orient(v, score_type) for k, v in preds.items()}
    return {k: srcc(v, y) for k, v in oriented.items()}, srcc_resamples(oriented, y, idx)


def spearman_permutation_test(
    x: ArrayLike, y: ArrayLike, n_permutations: int = 10_000, seed: int = 0
) -> PermutationResult:
    """Two-sided permutation test of Spearman's rho (e.g. PE vs single-channel agreement across channels).

    The null hypothesis is exchangeability: y's ranks are shuffled against x's (ties keep their average
    ranks, so the tie structure is preserved). p = (1 + #{|rho_perm| >= |rho|}) / (1 + n_permutations)
    (Phipson & Smyth 2010): never exactly 0, and exact-size under the null. A small tolerance counts
    permutations whose |rho| equals the observed one up to rounding.
    """
    xa, ya = _as_pair(x, y, min_n=3)
    if n_permutations < 1:
        raise InputError(f"n_permutations must be at least 1, got {n_permutations}.")
    rx, ry, den = centred_ranks(xa, ya)
    if den == 0:
        return PermutationResult(float("nan"), float("nan"), int(n_permutations), int(seed))
    rho = float(rx @ ry / den)
    rng = np.random.default_rng(seed)
    step = max(1, _core._CHUNK_ELEMENTS // xa.size)  # read at call time: one setting for the package
    hits = sum(int((np.abs(null) >= abs(rho) - 1e-12).sum())
               for _, null in permuted_rhos(rx, ry, den, rng, n_permutations, step))
    return PermutationResult(rho, (1 + hits) / (1 + n_permutations), int(n_permutations), int(seed))


# ---------------------------------------------------------------------------------- many tests at once
def holm(p: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN): the per-layer tests are many, the claim is one."""
    p = np.asarray(p, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(p))
    out = np.full(p.shape, np.nan)
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def mean_rho_permutation_test(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], n_permutations: int, seed: int
) -> dict[str, float]:
    """One test over all layers: the mean across layers of Spearman's rho, with a two-sided permutation p-value.

    The null permutes y against x *within* each layer (layers stay separate, as PE is normalised per layer), so
    every layer contributes one permuted rho per permutation and their mean forms the null distribution;
    p = (1 + #{|mean_perm| ≥ |mean_obs|}) / (1 + n_permutations), as `spearman_permutation_test`.
    """
    rng = np.random.default_rng(seed)
    observed, null = [], np.zeros(n_permutations)
    used = 0
    for x, y in pairs:
        rx, ry, den = centred_ranks(x, y)
        if x.size < 3 or den == 0:
            continue
        used += 1
        observed.append(float(rx @ ry) / den)
        for sl, rhos in permuted_rhos(rx, ry, den, rng, n_permutations, max(1, 2_000_000 // x.size)):
            null[sl] += rhos
    if not used:
        return {"mean_rho": float("nan"), "p_value": float("nan"), "n_layers": 0}
    mean_obs = float(np.mean(observed))
    null /= used
    hits = int((np.abs(null) >= abs(mean_obs) - 1e-12).sum())
    return {"mean_rho": mean_obs, "p_value": (1 + hits) / (1 + n_permutations), "n_layers": used,
            "n_permutations": int(n_permutations), "seed": int(seed)}
