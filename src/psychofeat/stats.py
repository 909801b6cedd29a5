"""Agreement between a metric and human judgments: SRCC, KRCC, PLCC (after a logistic fit), RMSE, 2AFC.

Conventions (SCIENCE.md, "Agreement with humans"):

* **Sign.** Correlations are reported so that *positive means agreement*. A distance grows with the damage,
  as DMOS does, so distance vs DMOS is used as is; MOS grows with quality, so the distance is negated
  (`orient`). PLCC keeps that sign although the logistic fit may be increasing or decreasing (see
  `fit_logistic`); RMSE is unsigned and in the units of the human scores.
* **Logistic fit.** VQEG (2000, 2003) 4-parameter curve `f(x) = (b1 - b2) / (1 + exp(-(x - b3)/|b4|)) + b2`,
  fitted by least squares. It maps metric values onto the human scale before PLCC and RMSE, so a metric is
  not penalised for a monotone non-linearity that Spearman/Kendall ignore anyway.
* **Confidence intervals.** Percentile bootstrap over images (rows), `n_boot` resamples with a fixed seed, so
  a rerun gives identical numbers and two metrics evaluated with the same `n` and `seed` see the *same*
  resamples (paired comparison). Every statistic, including the logistic fit, is recomputed on every
  resample, vectorised over resamples (a batched Levenberg-Marquardt for the fit; Kendall's tau above 200
  rows loops over scipy's O(n log n) routine, which is faster there than any O(n^2) vectorisation).
* **2AFC** (BAPPS): `h` is the fraction of humans who chose p0; a triplet scores `h` when d0 < d1, `1 - h` when
  d0 > d1 and 1/2 when the distances tie (LPIPS's `score_2afc_dataset`, whose `judge` is `1 - h`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from scipy import stats as _sst
from scipy.special import expit as _expit

from psychofeat.errors import InputError, unknown_name

ScoreType = Literal["mos", "dmos"]
ArrayLike: TypeAlias = Sequence[float] | np.ndarray
SCORE_TYPES: tuple[str, ...] = ("mos", "dmos")

#: default number of bootstrap resamples and the CI level (SCIENCE.md)
N_BOOT = 1000
CI_LEVEL = 0.95
#: above this many rows, Kendall's tau on resamples loops over scipy's O(n log n) routine, which is then faster than
#: the vectorised O(n^2) pair comparison (measured crossover: about 200 rows)
KENDALL_VECTOR_MAX_N = 200
#: rows x resamples processed at once (bounds memory to a few tens of MB)
_CHUNK_ELEMENTS = 4_000_000
#: Levenberg-Marquardt settings of the logistic fit
_LM_MAX_ITER = 500
_LM_TOL = 1.49012e-8  # MINPACK's default ftol/xtol (scipy.optimize.curve_fit)
#: a logistic whose scale exceeds this many SDs of x is a straight line over the data (its cubic term is
#: below 1e-4 of the linear one within 3 SD): the fit is heading for the limit b4 -> infinity and is
#: stopped as not converged
_LM_LINEAR_LIMIT = math.log(1e2)


# --------------------------------------------------------------------------------------------------- inputs
def check_score_type(score_type: str) -> ScoreType:
    """Normalise a score type ("mos" | "dmos", any case); unknown names raise `UnknownNameError`."""
    st = str(score_type).strip().lower()
    if st not in SCORE_TYPES:
        raise unknown_name(
            "score type", str(score_type), SCORE_TYPES, "MOS: higher = better quality; DMOS: higher = worse."
        )
    return st  # type: ignore[return-value]


def orient(pred: ArrayLike, score_type: str) -> np.ndarray:
    """Metric values turned so that positive correlation with the human scores means agreement.

    `pred` is a *distance* (larger = more different from the reference). DMOS also grows with damage, so it
    is returned as is; MOS falls with damage, so the distance is negated. For a similarity (larger = better)
    pass its negative.
    """
    st = check_score_type(score_type)
    x = np.asarray(pred, dtype=np.float64)
    return -x if st == "mos" else x.copy()


def _as_pair(x: ArrayLike, y: ArrayLike, min_n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim != 1 or ya.ndim != 1:
        raise InputError(f"expected two 1-D arrays, got shapes {xa.shape} and {ya.shape}.")
    if xa.shape != ya.shape:
        raise InputError(f"metric values and human scores differ in length: {xa.size} vs {ya.size}.")
    if xa.size < min_n:
        raise InputError(f"at least {min_n} images are needed, got {xa.size}.")
    bad = ~(np.isfinite(xa) & np.isfinite(ya))
    if bad.any():
        rows = np.flatnonzero(bad)[:10].tolist()
        raise InputError(f"{int(bad.sum())} rows hold NaN or infinite values (first rows: {rows}); remove them first.")
    return xa, ya


# ------------------------------------------------------------------------------- row-wise (batched) statistics
def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of `a` with the same row of `b` (NaN where a row is constant)."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    num = (a * b).sum(axis=-1)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r[~(den > 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho per row: Pearson of average ranks (the tie-corrected definition scipy uses)."""
    return _rowwise_pearson(_sst.rankdata(a, axis=-1), _sst.rankdata(b, axis=-1))


def _rowwise_kendall(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-b per row from all pairs i < j: (C - D) / sqrt((n0 - n1)(n0 - n2)).

    Pairs tied in one variable count in neither C nor D and shrink that variable's denominator, which is
    exactly scipy's tau-b. Memory grows as rows x n^2, so callers chunk the rows.
    """
    n = a.shape[-1]
    iu, ju = np.triu_indices(n, k=1)
    sa = np.sign(a[:, iu] - a[:, ju])
    sb = np.sign(b[:, iu] - b[:, ju])
    num = (sa * sb).sum(axis=-1)
    den = np.sqrt(np.abs(sa).sum(axis=-1) * np.abs(sb).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        t = num / den
    t[~(den > 0)] = np.nan
    return t


def _chunks(n_rows: int, n_cols: int, per_row_cost: int | None = None) -> list[slice]:
    cost = per_row_cost if per_row_cost is not None else n_cols
    step = max(1, _CHUNK_ELEMENTS // max(cost, 1))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


# ---------------------------------------------------------------------------------------- correlations
def srcc(pred: ArrayLike, human: ArrayLike) -> float:
    """Spearman rank correlation (ties: average ranks). Equals `scipy.stats.spearmanr(...).statistic`."""
    x, y = _as_pair(pred, human)
    return float(_rowwise_spearman(x[None], y[None])[0])


def srcc_rows(preds: np.ndarray, human: ArrayLike) -> np.ndarray:
    """SRCC of every row of a C x n matrix with the n human scores, e.g. one per channel, in one pass.

    Orient first (`orient`) if the rows are distances and the scores MOS. NaN for a constant row.
    """
    p = np.asarray(preds, dtype=np.float64)
    if p.ndim != 2:
        raise InputError(f"expected a C x n matrix, got shape {p.shape}.")
    _, y = _as_pair(p[0] if len(p) else np.empty(0), human)
    if not np.isfinite(p).all():
        raise InputError("the metric values hold NaN or infinite values.")
    return _rowwise_spearman(p, y[None])


def krcc(pred: ArrayLike, human: ArrayLike) -> float:
    """Kendall's tau-b (tie-corrected). Equals `scipy.stats.kendalltau(...).statistic`."""
    x, y = _as_pair(pred, human)
    return float(_sst.kendalltau(x, y).statistic)


def pearson(pred: ArrayLike, human: ArrayLike) -> float:
    """Plain Pearson correlation (no fit)."""
    x, y = _as_pair(pred, human)
    return float(_rowwise_pearson(x[None], y[None])[0])


# ------------------------------------------------------------------------------------------ logistic fit
@dataclass(frozen=True)
class LogisticFit:
    """A fitted 4-parameter logistic `f(x) = (b1 - b2) / (1 + exp(-(x - b3)/|b4|)) + b2`.

    `method` is "logistic" when Levenberg-Marquardt converged, "linear" when it did not and the fallback,
    the ordinary least-squares line `slope * x + intercept`, was used instead (then b1..b4 are NaN; for
    "logistic" slope and intercept are NaN). `sse`: residual sum of squares of the mapping used.
    """

    b1: float
    b2: float
    b3: float
    b4: float
    method: Literal["logistic", "linear"]
    sse: float
    slope: float = float("nan")
    intercept: float = float("nan")

    @property
    def increasing(self) -> bool:
        """Whether the mapping grows with x (b1 > b2 for the logistic, slope > 0 for the line)."""
        return self.b1 > self.b2 if self.method == "logistic" else self.slope > 0

    def __call__(self, x: ArrayLike) -> np.ndarray:
        xa = np.asarray(x, dtype=np.float64)
        if self.method == "linear":
            return self.slope * xa + self.intercept
        return logistic4(xa, self.b1, self.b2, self.b3, self.b4)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The VQEG 4-parameter logistic; numerically stable for any sign of the exponent."""
    z = (np.asarray(x, dtype=np.float64) - b3) / abs(b4)
    return (b1 - b2) * _expit(z) + b2


def _logistic_eval(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model values and Jacobian (B x n x 4) for parameters p = (b1, b2, b3, log b4) per row."""
    b1, b2, b3, t = (p[:, k : k + 1] for k in range(4))
    b4 = np.exp(t)
    z = (x - b3) / b4
    s = _expit(z)
    amp = b1 - b2
    ds = amp * s * (1.0 - s)
    jac = np.stack([s, 1.0 - s, -ds / b4, -ds * z], axis=-1)
    return amp * s + b2, jac


def _lm_batch(x: np.ndarray, y: np.ndarray, p0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares logistic fits of many rows at once (Levenberg-Marquardt, Marquardt's diagonal scaling).

    x, y: B x n (standardised by the caller); p0: B x 4 starting points (b1, b2, b3, log b4). The scale is
    fitted on a log scale so it stays positive (the model only uses |b4|). Each row has its own damping; a
    step is kept only if it does not raise that row's SSE. A row has *converged* when an accepted step
    changes its SSE or its parameters by less than a relative 1.5e-8 (MINPACK's ftol/xtol, as in
    `scipy.optimize.curve_fit`), or when even a heavily damped (gradient-descent) step cannot lower the SSE
    (a stationary point to machine precision). Rows still moving after 500 iterations have not converged,
    nor have rows whose scale passed 100 SDs of x: near-linear data, whose best "logistic" is the limit
    b4 -> infinity, i.e. the line the caller falls back to.
    Returns parameters, SSE and the converged flag per row.
    """
    p = p0.astype(np.float64, copy=True)
    f, jac = _logistic_eval(x, p)
    r = y - f
    sse = (r * r).sum(axis=1)
    lam = np.full(p.shape[0], 1e-3)
    converged = np.zeros(p.shape[0], dtype=bool)
    active = np.isfinite(sse)
    eye = np.eye(4)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for _ in range(_LM_MAX_ITER):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            ja = jac[idx]
            jtj = ja.transpose(0, 2, 1) @ ja
            g = (ja.transpose(0, 2, 1) @ r[idx][..., None])[..., 0]
            scale = np.maximum(np.diagonal(jtj, axis1=1, axis2=2), 1e-12)
            a = jtj + lam[idx, None, None] * eye * scale[:, None, :]
            step = _solve(a, g)
            p_try = p[idx] + step
            p_try[:, 3] = np.clip(p_try[:, 3], -30.0, 30.0)
            f_try, jac_try = _logistic_eval(x[idx], p_try)
            r_try = y[idx] - f_try
            sse_try = (r_try * r_try).sum(axis=1)
            ok = np.isfinite(sse_try) & (sse_try <= sse[idx])
            rel = np.abs(sse[idx] - sse_try) / np.maximum(sse[idx], 1e-300)
            acc = idx[ok]
            p[acc], r[acc], jac[acc], sse[acc] = p_try[ok], r_try[ok], jac_try[ok], sse_try[ok]
            lam[acc] = np.maximum(lam[acc] / 3.0, 1e-12)
            lam[idx[~ok]] *= 4.0
            small_step = np.abs(step).max(axis=1) <= _LM_TOL * (_LM_TOL + np.abs(p_try).max(axis=1))
            done = (ok & ((rel < _LM_TOL) | small_step)) | (~ok & (lam[idx] > 1e10))
            converged[idx[done]] = True
            line_limit = p[idx, 3] > _LM_LINEAR_LIMIT
            active[idx[done | line_limit]] = False
    return p, sse, converged


def _solve(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Batched solve that tolerates singular systems (then: least squares for those rows)."""
    try:
        return np.linalg.solve(a, g[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.stack([np.linalg.lstsq(ai, gi, rcond=None)[0] for ai, gi in zip(a, g)])


def _fit_rows(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Fit the logistic to every row of x -> y (B x n). Returns fitted values and parameters per row.

    Robust initialisation: x and y are standardised per row (so the starting point does not depend on the
    metric's units), then two starts are refined and the converged one with the lowest SSE is kept:
    a full-range S running the way the least-squares line does (b1 = max y, b2 = min y for a rising line,
    swapped for a falling one; b3 = median x; b4 = 1 SD of x), and a wide S (b4 = 2 SD) whose central slope
    equals the line's, for near-linear data. If neither converges, the least-squares line itself is used
    (`method` "linear"; PLCC then equals Pearson's r).
    """
    b = x.shape[0]
    mx, sx = x.mean(axis=1, keepdims=True), x.std(axis=1, keepdims=True)
    my, sy = y.mean(axis=1, keepdims=True), y.std(axis=1, keepdims=True)
    degenerate = (sx[:, 0] <= 0) | (sy[:, 0] <= 0)
    sx_safe, sy_safe = np.where(sx > 0, sx, 1.0), np.where(sy > 0, sy, 1.0)
    xs, ys = (x - mx) / sx_safe, (y - my) / sy_safe
    slope = (xs * ys).mean(axis=1)  # OLS slope of standardised data (= Pearson's r)
    lo, hi, med = ys.min(axis=1), ys.max(axis=1), np.median(xs, axis=1)
    wide = np.log(2.0)
    amp = 4.0 * slope * 2.0  # a logistic with scale 2 and this amplitude has the line's slope at its centre
    up = slope >= 0
    starts = [
        np.stack([np.where(up, hi, lo), np.where(up, lo, hi), med, np.zeros(b)], axis=1),
        np.stack([amp / 2.0, -amp / 2.0, np.zeros(b), np.full(b, wide)], axis=1),
    ]
    fits = [_lm_batch(xs, ys, s0) for s0 in starts]
    sse_all = np.stack([np.where(c & np.isfinite(e), e, np.inf) for _, e, c in fits], axis=1)
    best = sse_all.argmin(axis=1)
    logistic_ok = np.isfinite(sse_all[np.arange(b), best]) & ~degenerate
    p_std = np.stack([fits[k][0][i] for i, k in enumerate(best)]) if b else np.zeros((0, 4))

    fitted_std = np.where(logistic_ok[:, None], _logistic_eval(xs, p_std)[0], slope[:, None] * xs)
    fitted = my + sy * fitted_std
    params = np.column_stack(
        [
            my[:, 0] + sy[:, 0] * p_std[:, 0],
            my[:, 0] + sy[:, 0] * p_std[:, 1],
            mx[:, 0] + sx[:, 0] * p_std[:, 2],
            sx[:, 0] * np.exp(p_std[:, 3]),
        ]
    )
    linear = np.column_stack([sy[:, 0] * slope / sx_safe[:, 0], my[:, 0] - sy[:, 0] * slope * mx[:, 0] / sx_safe[:, 0]])
    increasing = np.where(logistic_ok, params[:, 0] > params[:, 1], slope > 0)
    fitted[degenerate] = np.nan
    return {
        "fitted": fitted,
        "params": params,
        "linear": linear,
        "logistic_ok": logistic_ok,
        "increasing": increasing,
        "degenerate": degenerate,
    }


def _fit_one(x: np.ndarray, y: np.ndarray) -> tuple[LogisticFit, float, float]:
    """The fit of one data set, with its signed PLCC and its RMSE."""
    res = _fit_rows(x[None], y[None])
    if res["degenerate"][0]:
        raise InputError("cannot fit a logistic: the metric values or the human scores are all equal.")
    resid = y - res["fitted"][0]
    sse = float(resid @ resid)
    nan = float("nan")
    if res["logistic_ok"][0]:
        b1, b2, b3, b4 = (float(v) for v in res["params"][0])
        fit = LogisticFit(b1, b2, b3, b4, "logistic", sse)
    else:
        slope, icpt = (float(v) for v in res["linear"][0])
        fit = LogisticFit(nan, nan, nan, nan, "linear", sse, slope, icpt)
    plcc_v, rmse_v = _plcc_rmse_from(res, y[None])
    return fit, float(plcc_v[0]), float(rmse_v[0])


def fit_logistic(pred: ArrayLike, human: ArrayLike) -> LogisticFit:
    """Fit the VQEG 4-parameter logistic mapping metric values onto human scores (see `_fit_rows`)."""
    x, y = _as_pair(pred, human, min_n=5)
    return _fit_one(x, y)[0]


def _plcc_rmse_from(res: Mapping[str, np.ndarray], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sign = np.where(res["increasing"], 1.0, -1.0)
    plcc_v = _rowwise_pearson(res["fitted"], y) * sign
    rmse_v = np.sqrt(np.mean((y - res["fitted"]) ** 2, axis=1))
    return plcc_v, rmse_v


def _plcc_rmse_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PLCC (signed by the direction of the fitted curve) and RMSE per row, plus the logistic-ok flags."""
    res = _fit_rows(x, y)
    plcc_v, rmse_v = _plcc_rmse_from(res, y)
    return plcc_v, rmse_v, res["logistic_ok"]


def plcc(pred: ArrayLike, human: ArrayLike) -> float:
    """Pearson correlation between the logistic-mapped metric and the human scores.

    Signed: negative when the fitted curve decreases (the metric disagrees with the humans once oriented).
    """
    x, y = _as_pair(pred, human, min_n=5)
    return _fit_one(x, y)[1]


def rmse(pred: ArrayLike, human: ArrayLike) -> float:
    """Root-mean-square error of the logistic-mapped metric, in the units of the human scores."""
    x, y = _as_pair(pred, human, min_n=5)
    return _fit_one(x, y)[2]


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


# --------------------------------------------------------------------------------------------------- 2AFC
def _check_2afc(d0: ArrayLike, d1: ArrayLike, h: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b, c = (np.asarray(v, dtype=np.float64).ravel() for v in (d0, d1, h))
    if not (a.size == b.size == c.size) or a.size == 0:
        raise InputError(f"d0, d1 and h must be non-empty and of equal length, got {a.size}, {b.size}, {c.size}.")
    if not (np.isfinite(a).all() and np.isfinite(b).all() and np.isfinite(c).all()):
        raise InputError("d0, d1 and h must be finite.")
    if (c < 0).any() or (c > 1).any():
        raise InputError("h is the fraction of humans who chose p0 and must lie in [0, 1].")
    return a, b, c


def two_afc_scores(d0: ArrayLike, d1: ArrayLike, h: ArrayLike) -> np.ndarray:
    """Per-triplet 2AFC agreement: h where d0 < d1, 1 - h where d0 > d1, 1/2 on a tie.

    `h` is the fraction of humans who judged p0 closer to the reference. A tie (equal distances, e.g. a
    metric that saturates) is an undecided answer and is credited half, as in LPIPS; it is neither dropped
    (which would favour metrics that tie on hard cases) nor counted as wrong.
    """
    a, b, c = _check_2afc(d0, d1, h)
    return np.where(a < b, c, np.where(a > b, 1.0 - c, 0.5))


def two_afc_score(d0: ArrayLike, d1: ArrayLike, h: ArrayLike) -> float:
    """Mean 2AFC agreement in [0, 1] (SCIENCE.md); 0.5 is chance, a perfect metric reaches mean(max(h, 1-h))."""
    return float(two_afc_scores(d0, d1, h).mean())


def two_afc(
    d0: ArrayLike, d1: ArrayLike, h: ArrayLike, n_boot: int = N_BOOT, seed: int = 0, ci_level: float = CI_LEVEL
) -> dict[str, Any]:
    """2AFC score with a percentile-bootstrap CI over triplets.

    Also returns `two_afc_max = mean(max(h, 1 - h))`, the score of a metric that always sides with the
    majority: the ceiling set by the humans' own disagreement.
    """
    s = two_afc_scores(d0, d1, h)
    _, _, c = _check_2afc(d0, d1, h)
    out: dict[str, Any] = {"n": int(s.size), "two_afc": float(s.mean())}
    if n_boot > 0:
        boot = np.concatenate([s[idx].mean(axis=1) for _, idx in _bootstrap_chunks(s.size, n_boot, seed, s.size)])
        out["two_afc_lo"], out["two_afc_hi"] = percentile_ci(boot, ci_level)
    else:
        out["two_afc_lo"] = out["two_afc_hi"] = float("nan")
    out["two_afc_max"] = float(np.maximum(c, 1.0 - c).mean())
    out.update({"n_boot": int(n_boot), "seed": int(seed), "ci_level": float(ci_level)})
    return out


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
    step = max(1, _CHUNK_ELEMENTS // xa.size)
    hits = sum(int((np.abs(null) >= abs(rho) - 1e-12).sum())
               for _, null in permuted_rhos(rx, ry, den, rng, n_permutations, step))
    return PermutationResult(rho, (1 + hits) / (1 + n_permutations), int(n_permutations), int(seed))


__all__ = [
    "CI_LEVEL",
    "N_BOOT",
    "SCORE_TYPES",
    "LogisticFit",
    "PermutationResult",
    "agreement",
    "agreement_table",
    "bootstrap_indices",
    "bootstrap_statistics",
    "centred_ranks",
    "check_score_type",
    "fit_logistic",
    "krcc",
    "logistic4",
    "orient",
    "pearson",
    "percentile_ci",
    "permuted_rhos",
    "plcc",
    "rmse",
    "spearman_permutation_test",
    "srcc",
    "srcc_resamples",
    "srcc_rows",
    "two_afc",
    "two_afc_score",
    "two_afc_scores",
]
