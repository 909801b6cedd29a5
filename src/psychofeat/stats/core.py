"""Inputs and correlations of `psychofeat.stats`: orientation of human scores, SRCC, KRCC, Pearson (row-wise too)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

import numpy as np
from scipy import stats as _sst

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
