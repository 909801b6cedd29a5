"""The VQEG 4-parameter logistic fit behind PLCC and RMSE, batched Levenberg-Marquardt over resamples."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import expit as _expit

from psychofeat.errors import InputError
from psychofeat.stats.core import ArrayLike, _as_pair, _rowwise_pearson

#: Levenberg-Marquardt settings of the logistic fit
_LM_MAX_ITER = 500
_LM_TOL = 1.49012e-8  # MINPACK's default ftol/xtol (scipy.optimize.curve_fit)
#: a logistic whose scale exceeds this many SDs of x is a straight line over the data (its cubic term is
#: below 1e-4 of the linear one within 3 SD): the fit is heading for the limit b4 -> infinity and is
#: stopped as not converged
_LM_LINEAR_LIMIT = math.log(1e2)


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
