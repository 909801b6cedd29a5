"""How closely two analyses of the same network agree: PE rank correlation and top-k overlap, layer by layer.

Used to accept a cheaper probe protocol (`--fast`) or another machine's run against a reference: what matters to
every use of an analysis is the order of PE within a layer and the top-k set it selects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from psychofeat.errors import InputError


def score_agreement(reference: pd.DataFrame, other: pd.DataFrame, fraction: float = 0.25) -> pd.DataFrame:
    """One row per layer of `reference` (the `scores.csv` table of `psychofeat analyze`): Spearman's ρ of PE,
    the overlap |A ∩ B| / k of the top-`fraction` sets, whether they are identical, and the largest |ΔPE|.

    Top-k sets are built exactly as `analyze` builds them (`Selection.from_scores`: unresponsive channels never
    enter, ties broken by channel index).
    """
    from scipy.stats import spearmanr

    from psychofeat.selection import Selection

    missing = set(reference["layer"]) - set(other["layer"])
    if missing:
        raise InputError(f"the compared analysis lacks layers {sorted(missing)}; analyse the same layers.")
    sel_a = Selection.from_scores(reference, "reference", None, "top", fraction)
    sel_b = Selection.from_scores(other, "other", None, "top", fraction)
    rows = []
    for layer, a in reference.groupby("layer", sort=False):
        b = other[other["layer"] == layer].set_index("channel").reindex(a["channel"])
        if b["pe"].isna().any():
            raise InputError(f"layer {layer}: the compared analysis has other channels; analyse the same network.")
        pa, pb = a["pe"].to_numpy(dtype=float), b["pe"].to_numpy(dtype=float)
        rho = float(spearmanr(pa, pb).statistic) if np.ptp(pa) > 0 and np.ptp(pb) > 0 else float("nan")
        ta, tb = set(sel_a.channels[str(layer)].tolist()), set(sel_b.channels[str(layer)].tolist())
        rows.append({"layer": layer, "channels": len(a), "k": len(ta), "pe_spearman": rho,
                     "top_overlap": len(ta & tb) / len(ta) if ta else float("nan"), "top_identical": ta == tb,
                     "max_abs_pe_diff": float(np.abs(pa - pb).max())})
    return pd.DataFrame(rows)


__all__ = ["score_agreement"]
