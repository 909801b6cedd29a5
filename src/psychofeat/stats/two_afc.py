"""2AFC agreement (BAPPS): a triplet scores h when d0 < d1, 1 - h when d0 > d1, 1/2 on a tie."""

from __future__ import annotations

from typing import Any

import numpy as np

from psychofeat.errors import InputError
from psychofeat.stats.core import CI_LEVEL, N_BOOT, ArrayLike
from psychofeat.stats.resampling import _bootstrap_chunks, percentile_ci


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
