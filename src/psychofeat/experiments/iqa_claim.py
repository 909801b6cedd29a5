"""The paper's claim, tested on the values of `psychofeat iqa-claim` (`psychofeat.experiments.iqa` measures them).

Two questions, both asked of quantities that nothing was fitted to:

* **PE vs agreement, channel by channel**: each channel's single-channel distance is correlated with the human
  scores (SRCC), and per layer the Spearman correlation across channels between PE and that SRCC is tested with
  a permutation p-value (Holm-adjusted over layers; pooled over layers as the mean rho with a within-layer
  permutation null).
* **Agreement vs k**: the SRCC of top-k, bottom-k and random-k selections as a function of k, and of each layer's
  own distance at the headline k (where an effect comes from).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from psychofeat.distance_bank import SelectionBank
from psychofeat.errors import InputError
from psychofeat.selection import Selection
from psychofeat.stats import (  # holm and mean_rho_permutation_test lived here; importable from here still
    holm,
    mean_rho_permutation_test,
    orient,
    spearman_permutation_test,
    srcc_rows,
)


# ------------------------------------------------------------------------------------------------- selections
@dataclass(frozen=True)
class CurvePoint:
    """One selection of the agreement-vs-k curve."""

    method: str  # top | bottom | random
    fraction: float
    seed: int | None
    name: str


def curve_selections(
    base: Selection, layers: Sequence[str], fractions: Sequence[float], n_seeds: int
) -> tuple[dict[str, Selection], list[CurvePoint]]:
    """top/bottom/random (every seed) at every fraction; identical channel sets are evaluated once later."""
    sels: dict[str, Selection] = {}
    points: list[CurvePoint] = []
    for f in fractions:
        for method in ("top", "bottom"):
            name = f"{method}@{f:g}"
            sels[name] = base.select(method, f).restrict(layers)
            points.append(CurvePoint(method, float(f), None, name))
        for s in range(n_seeds):
            name = f"random@{f:g}/seed{s}"
            sels[name] = base.select("random", f, s).restrict(layers)
            points.append(CurvePoint("random", float(f), s, name))
    return sels, points


def channel_srcc(channels: Mapping[str, np.ndarray], human: np.ndarray, score_type: str) -> dict[str, np.ndarray]:
    """Each channel's single-channel distance SRCC with the human scores (positive = agreement; NaN if constant)."""
    return {k: srcc_rows(orient(v.T, score_type), human) for k, v in channels.items()}


def pe_vs_agreement(
    base: Selection, srcc: Mapping[str, np.ndarray], fraction: float, n_permutations: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per layer: Spearman(PE, single-channel SRCC) across channels with a permutation p-value; per-channel table.

    Channels whose distance is constant over the pairs (never active) have no SRCC and are left out.
    The primary test uses every other channel (unresponsive channels carry PE = 0, as in the selection);
    `rho_responsive` repeats it without them, since their PE = 0 is assigned, not measured.
    """
    if base.pe is None:
        raise InputError("the selection carries no PE (use the selection.json written by `psychofeat analyze`).")
    rows, chans = [], []
    top_sel = base.select("top", fraction)
    for k, s in srcc.items():
        pe = base.pe[k]
        dead = base.unresponsive[k] if base.unresponsive is not None else np.zeros(pe.size, bool)
        ok = np.isfinite(s)
        top = np.zeros(pe.size, bool)
        top[top_sel.channels[k]] = True
        res = spearman_permutation_test(pe[ok], s[ok], n_permutations, seed) if ok.sum() >= 3 else None
        resp = ok & ~dead
        res_r = spearman_permutation_test(pe[resp], s[resp], n_permutations, seed) if resp.sum() >= 3 else None
        best = int(np.nanargmax(s)) if ok.any() else -1
        rows.append({
            "layer": k, "n_channels": pe.size, "n_with_srcc": int(ok.sum()), "n_unresponsive": int(dead.sum()),
            "rho": res.rho if res else np.nan, "p_value": res.p_value if res else np.nan,
            "rho_responsive": res_r.rho if res_r else np.nan, "p_responsive": res_r.p_value if res_r else np.nan,
            "channel_srcc_median": float(np.nanmedian(s)) if ok.any() else np.nan,
            "channel_srcc_top_mean": float(np.nanmean(s[top & ok])) if (top & ok).any() else np.nan,
            "channel_srcc_rest_mean": float(np.nanmean(s[~top & ok])) if (~top & ok).any() else np.nan,
            "best_channel": f"{k}:{best}" if best >= 0 else "",
            "best_channel_srcc": float(s[best]) if best >= 0 else np.nan,
        })
        chans.append(pd.DataFrame({"layer": k, "channel": np.arange(pe.size),
                                   "name": [f"{k}:{c}" for c in range(pe.size)],
                                   "pe": pe, "unresponsive": dead, "in_top": top, "srcc": s}))
    table = pd.DataFrame(rows)
    table.insert(6, "p_holm", holm(table["p_value"].to_numpy()))
    return table, pd.concat(chans, ignore_index=True)


def pooled_pe_tests(channels: pd.DataFrame, n_permutations: int, seed: int) -> dict[str, dict[str, float]]:
    """The per-layer question asked once for the network: mean rho over layers (all / responsive channels)."""
    ok = channels["srcc"].notna()
    out = {}
    for label, keep in (("all_channels", ok), ("responsive", ok & ~channels["unresponsive"].astype(bool))):
        d = channels[keep]
        pairs = [(g["pe"].to_numpy(float), g["srcc"].to_numpy(float)) for _, g in d.groupby("layer", sort=False)]
        out[label] = mean_rho_permutation_test(pairs, n_permutations, seed)
    return out


def curve_table(
    per_layer: np.ndarray, bank: SelectionBank, points: Sequence[CurvePoint], human: np.ndarray, score_type: str
) -> pd.DataFrame:
    """SRCC of every curve selection (one row per method, fraction and seed)."""
    combined = bank.combine(per_layer)
    cols = [bank.column[p.name] for p in points]
    rho = srcc_rows(orient(combined[:, cols].T, score_type), human)
    return pd.DataFrame({"method": [p.method for p in points], "fraction": [p.fraction for p in points],
                         "seed": [p.seed if p.seed is not None else -1 for p in points], "srcc": rho})


def curve_summary(curve: pd.DataFrame) -> pd.DataFrame:
    """Per fraction: top, bottom, and random mean, sd, 5th/95th percentile, min and max over seeds."""
    rows = []
    for f, g in curve.groupby("fraction", sort=True):
        r = g.loc[g.method == "random", "srcc"].to_numpy()
        rows.append({
            "fraction": f,
            "top": float(g.loc[g.method == "top", "srcc"].iloc[0]),
            "bottom": float(g.loc[g.method == "bottom", "srcc"].iloc[0]),
            "random_mean": float(r.mean()), "random_sd": float(r.std(ddof=1)) if r.size > 1 else 0.0,
            "random_q05": float(np.quantile(r, 0.05)), "random_q95": float(np.quantile(r, 0.95)),
            "random_min": float(r.min()), "random_max": float(r.max()), "n_seeds": int(r.size),
        })
    return pd.DataFrame(rows)


def layer_breakdown(
    per_layer: np.ndarray,
    bank: SelectionBank,
    names: Sequence[str],
    seeds: Sequence[str],
    human: np.ndarray,
    score_type: str,
) -> pd.DataFrame:
    """SRCC of each layer's own distance for top/bottom/all/random-k: where an effect comes from."""
    rows = []
    for li, k in enumerate(bank.layers):
        def rho(cols: list[int], li: int = li) -> np.ndarray:
            return srcc_rows(orient(per_layer[:, li, cols].T, score_type), human)

        main = rho([bank.column[n] for n in names])
        rnd = rho([bank.column[s] for s in seeds])
        row = {"layer": k, **{f"srcc_{n}": float(v) for n, v in zip(names, main)}}
        row.update({"srcc_random_mean": float(np.nanmean(rnd)),
                    "srcc_random_sd": float(np.nanstd(rnd, ddof=1)) if rnd.size > 1 else 0.0})
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------------ result
@dataclass
class ClaimResult:
    layers: pd.DataFrame  # per-layer PE vs single-channel agreement
    channels: pd.DataFrame  # per channel: PE, SRCC
    curve: pd.DataFrame  # per selection of the curve
    curve_summary: pd.DataFrame
    layer_breakdown: pd.DataFrame
    pooled: dict[str, dict[str, float]]  # mean rho over layers with a within-layer permutation p-value
    n_permutations: int
    perm_seed: int


def analyze_claim(
    base: Selection,
    channels: Mapping[str, np.ndarray],
    per_layer: np.ndarray,
    bank: SelectionBank,
    points: Sequence[CurvePoint],
    headline: Sequence[str],
    seeds: Sequence[str],
    human: np.ndarray,
    score_type: str,
    fraction: float,
    n_permutations: int,
    perm_seed: int,
) -> ClaimResult:
    """Every table of the claim from the measured values: `channels` {layer: pairs × C single-channel
    distances}, `per_layer` (pairs × layers × bank columns); `base` carries the PE of every channel."""
    srcc = channel_srcc(channels, human, score_type)
    layer_table, chan_table = pe_vs_agreement(base, srcc, fraction, n_permutations, perm_seed)
    curve = curve_table(per_layer, bank, points, human, score_type)
    return ClaimResult(layer_table, chan_table, curve, curve_summary(curve),
                       layer_breakdown(per_layer, bank, headline, seeds, human, score_type),
                       pooled_pe_tests(chan_table, n_permutations, perm_seed), n_permutations, perm_seed)


def claim_json(claim: ClaimResult) -> dict[str, Any]:
    """claim.json without its "format" key (added by the writer, whose format id covers every output)."""
    return {
        "n_permutations": claim.n_permutations,
        "perm_seed": claim.perm_seed,
        "test": "per layer: Spearman rho across channels between PE and the channel's single-channel distance SRCC "
                "with the human scores; two-sided permutation p (Phipson & Smyth); p_holm: Holm-adjusted over layers",
        "pooled": claim.pooled,
        "pooled_test": "mean over layers of the per-layer rho; the null permutes within each layer",
        "layers": claim.layers.to_dict(orient="records"),
        "curve_summary": claim.curve_summary.to_dict(orient="records"),
        "layer_breakdown": claim.layer_breakdown.to_dict(orient="records"),
    }
