"""Bisection on log contrast, vectorised over many independent searches.

Shared by the network CSF (`psychofeat.hvs.network_csf`) and the detection-threshold study
(`psychofeat.hvs.detection`): both look, for many (stimulus, criterion) pairs at once, for the contrast where a
monotone statistic D reaches a target. One call of the caller's `evaluate` per step lets it batch the images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from psychofeat.errors import InputError

STATUS_OK, STATUS_UNDETECTED, STATUS_BELOW = "ok", "undetected", "below_range"


@dataclass
class ThresholdSearch:
    """Result of `bisect_log_contrast` for S searches: log10 threshold (NaN if undetected), status, local
    exponent p = dlog D / dlog c at threshold, and the number of evaluations requested."""

    log10_threshold: np.ndarray
    status: np.ndarray
    slope: np.ndarray
    n_requests: int


def _interpolate_crossing(
    lo: np.ndarray, hi: np.ndarray, d_lo: np.ndarray, d_hi: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """log c where log D reaches log target on the line through (lo, log d_lo), (hi, log d_hi); midpoint when
    that line is undefined (D ≤ 0 at the lower end). Returns (log c, slope)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ld_lo, ld_hi, lt = np.log10(d_lo), np.log10(d_hi), np.log10(target)
        slope = (ld_hi - ld_lo) / (hi - lo)
        x = lo + (lt - ld_lo) / slope
    ok = np.isfinite(x) & (slope > 0)
    x = np.where(ok, np.clip(x, lo, hi), 0.5 * (lo + hi))
    return x, np.where(ok, slope, np.nan)


def bisect_log_contrast(
    evaluate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    targets: np.ndarray,
    log_range: tuple[float | np.ndarray, float | np.ndarray],
    n_steps: int,
    on_step: Callable[[], None] | None = None,
) -> ThresholdSearch:
    """Find, for each of S searches, the log10 contrast where a monotone statistic D reaches `targets[s]`.

    `evaluate(search_index, log10_c)` returns D for those searches at those contrasts (one call per step:
    the caller batches them). Brackets start at `log_range` (two scalars, or one value per search); the first
    call evaluates both ends, each later call the midpoints; the final bracket is refined by log–log
    interpolation. A search whose D is below target at the upper end is ``undetected`` (NaN); one already at
    target at the lower end is ``below_range`` (reported at the lower end)."""
    targets = np.asarray(targets, dtype=np.float64)
    s = targets.size
    idx = np.arange(s)
    lo = np.broadcast_to(np.asarray(log_range[0], dtype=np.float64), (s,)).copy()
    hi = np.broadcast_to(np.asarray(log_range[1], dtype=np.float64), (s,)).copy()
    lo0 = lo.copy()
    if np.any(hi <= lo):
        raise InputError("bisection brackets must have lower end < upper end.")
    ends = evaluate(np.concatenate([idx, idx]), np.concatenate([lo, hi]))
    d_lo, d_hi = ends[:s].astype(np.float64), ends[s:].astype(np.float64)
    if on_step:
        on_step()
    status = np.full(s, STATUS_OK, dtype=object)
    status[d_hi < targets] = STATUS_UNDETECTED
    status[(d_lo >= targets) & (status == STATUS_OK)] = STATUS_BELOW
    active = np.flatnonzero(status == STATUS_OK)
    n_req = 2 * s
    for _ in range(n_steps):
        if active.size == 0:
            break
        mid = 0.5 * (lo[active] + hi[active])
        d_mid = np.asarray(evaluate(active, mid), dtype=np.float64)
        n_req += active.size
        up = d_mid >= targets[active]
        hi[active[up]], d_hi[active[up]] = mid[up], d_mid[up]
        lo[active[~up]], d_lo[active[~up]] = mid[~up], d_mid[~up]
        if on_step:
            on_step()
    logc, slope = _interpolate_crossing(lo, hi, d_lo, d_hi, targets)
    logc = np.where(status == STATUS_UNDETECTED, np.nan, logc)
    logc = np.where(status == STATUS_BELOW, lo0, logc)
    slope = np.where(status == STATUS_OK, slope, np.nan)
    return ThresholdSearch(logc, status, slope, n_req)


__all__ = ["STATUS_BELOW", "STATUS_OK", "STATUS_UNDETECTED", "ThresholdSearch", "bisect_log_contrast"]
