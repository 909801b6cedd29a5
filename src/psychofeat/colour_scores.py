"""Colour scores of every channel: responses along the achromatic, red–green and yellow–violet directions, mu1 per
direction weighted by the matching castleCSF mechanism, a colour preference index and a colour-aware PE.

Definitions (docs/colour.md, issue 22), per channel m and direction d ∈ {ach, rg, yv}:

* R_d(f_i): phase-averaged spatial-mean response to the radial gratings of `psychofeat.colour` (equal RMS cone
  contrast in every direction) minus the response to the uniform field, measured by `psychofeat.probe`;
* mu1_d: `psychofeat.scores.frequency_scores` on R_d with w_i ∝ castleCSF's mechanism d at the mid frequencies
  (ach: the achromatic mechanism; rg, yv: ``CSF_castleCSF_chrom``), 0 where the channel does not respond along d;
* σ_d = RMS_i R_d(f_i); share_d = σ_d² / Σ_d' σ_d'²; colour_index = share_rg + share_yv = 1 − share_ach;
* mu1_colour = sqrt(Σ_d share_d · mu1_d²) — the share-weighted quadratic mean, i.e. ‖(Σ_i w_d,i D_d,i)_d‖ / ‖σ‖:
  a direction the channel barely responds to cannot contribute the full-size mu1 of a tiny response's shape;
* pe_colour = (mu1_colour / max_layer mu1_colour) · mu2 and the protocol control pe_achprot =
  (mu1_ach / max_layer mu1_ach) · mu2, with mu2 and the unresponsive flags of today's analysis (its scores table).

`colour_scores` returns one row per (layer, channel), the key of `psychofeat analyze`'s scores table, so the
columns can be joined onto it; `colour_selection` turns a column into a `Selection` with the builders of
`psychofeat.selection`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from psychofeat.backbones.base import Backbone
from psychofeat.colour import ColourProtocol, colour_frequency_sweep
from psychofeat.csf.castle import mechanism_sensitivity
from psychofeat.errors import InputError
from psychofeat.probe import probe
from psychofeat.scores import UNRESPONSIVE_FRACTION, frequency_scores, perceptual_efficacy, unresponsive_mask
from psychofeat.selection import Selection

#: the columns `colour_scores` adds to a scores table (besides layer and channel)
COLOUR_COLUMNS: tuple[str, ...] = (
    "mu1_ach", "mu1_rg", "mu1_yv", "share_ach", "share_rg", "share_yv", "colour_index",
    "peak_ach", "peak_rg", "peak_yv", "pref_freq_ach_cpd", "pref_freq_rg_cpd", "pref_freq_yv_cpd",
    "colour_unresponsive", "mu1_colour", "pe_colour", "pe_achprot",
)


@dataclass(frozen=True)
class ColourConfig:
    """Everything that determines the colour scores, besides the network and today's scores."""

    colour: ColourProtocol = field(default_factory=ColourProtocol)
    unresponsive_fraction: float = UNRESPONSIVE_FRACTION
    batch_size: int = 16

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["colour"] = self.colour.to_dict()
        return d


@dataclass
class ColourResult:
    table: pd.DataFrame  # one row per (layer, channel): COLOUR_COLUMNS
    curves: dict[str, np.ndarray]  # "<layer>/<direction>": C × N_f responses R_d; mechanism weights
    info: dict[str, Any]


def mechanism_weights(cp: ColourProtocol) -> dict[str, np.ndarray]:
    """{direction: castleCSF mechanism at the mid frequencies g_i} at the background luminance and stimulus area."""
    p = cp.protocol
    g = p.mid_frequencies
    out = {}
    for d in cp.directions:
        s = mechanism_sensitivity(d, g, np.full_like(g, cp.luminance), np.full_like(g, p.area_deg2))
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise InputError(f"castleCSF's {d} mechanism returned invalid values at {g.min():.3g}–{g.max():.3g} cpd.")
        out[d] = s
    return out


def split_responses(raw: Mapping[str, np.ndarray], cp: ColourProtocol) -> dict[str, dict[str, np.ndarray]]:
    """Probe output of `colour_frequency_sweep(cp)` → {direction: {layer: N_f × C}}, phase-averaged, minus gray."""
    p = cp.protocol
    n = p.n_freq * p.n_phase
    out: dict[str, dict[str, np.ndarray]] = {d: {} for d in cp.directions}
    for layer, r in raw.items():
        if r.shape[0] != 1 + n * len(cp.directions):
            raise InputError(f"expected {1 + n * len(cp.directions)} responses for {layer}, got {r.shape[0]}.")
        gray = r[0]
        for j, d in enumerate(cp.directions):
            block = r[1 + j * n : 1 + (j + 1) * n]
            out[d][layer] = block.reshape(p.n_freq, p.n_phase, -1).mean(axis=1) - gray[None, :]
    return out


def score_colour_layer(
    layer: str,
    freqs: np.ndarray,
    responses: Mapping[str, np.ndarray],
    weights: Mapping[str, np.ndarray],
    mu2: np.ndarray,
    unresponsive: np.ndarray,
    unresponsive_fraction: float = UNRESPONSIVE_FRACTION,
) -> pd.DataFrame:
    """The colour columns of one layer from R_d (N_f × C per direction), the mechanism weights and today's mu2 /
    unresponsive flags (C each)."""
    dirs = list(responses)
    fs = {d: frequency_scores(freqs, responses[d], weights[d], unresponsive_fraction) for d in dirs}
    C = next(iter(responses.values())).shape[1]
    if np.shape(mu2) != (C,) or np.shape(unresponsive) != (C,):
        raise InputError(f"layer {layer}: today's mu2 / unresponsive flags must have {C} entries.")
    energy = {d: np.mean(np.asarray(responses[d], dtype=np.float64) ** 2, axis=0) for d in dirs}
    total = sum(energy.values())
    peak_all = np.max(np.stack([fs[d].peak for d in dirs]), axis=0)
    dead = unresponsive_mask(peak_all, unresponsive_fraction)
    ok = (total > 0) & ~dead
    safe_total = np.where(total > 0, total, 1.0)
    share = {d: np.where(ok, energy[d] / safe_total, np.nan) for d in dirs}
    mu1_colour = np.sqrt(sum(np.where(ok, share[d], 0.0) * fs[d].mu1**2 for d in dirs))
    mu1_colour = np.where(ok, mu1_colour, 0.0)
    chrom = [d for d in dirs if d != "ach"]
    data: dict[str, Any] = {"layer": layer, "channel": np.arange(C)}
    for d in ("ach", "rg", "yv"):
        data[f"mu1_{d}"] = fs[d].mu1 if d in fs else np.nan
    for d in ("ach", "rg", "yv"):
        data[f"share_{d}"] = share[d] if d in share else np.nan
    data["colour_index"] = sum(share[d] for d in chrom) if chrom else np.nan
    for d in ("ach", "rg", "yv"):
        data[f"peak_{d}"] = fs[d].peak if d in fs else np.nan
    for d in ("ach", "rg", "yv"):
        data[f"pref_freq_{d}_cpd"] = np.asarray(freqs)[fs[d].pref_index] if d in fs else np.nan
    data["colour_unresponsive"] = dead
    data["mu1_colour"] = mu1_colour
    mu2 = np.asarray(mu2, dtype=np.float64)
    today_dead = np.asarray(unresponsive, dtype=bool)
    data["pe_colour"] = perceptual_efficacy(mu1_colour, mu2, today_dead, "product")
    data["pe_achprot"] = (perceptual_efficacy(fs["ach"].mu1, mu2, today_dead, "product") if "ach" in fs
                          else np.nan)
    return pd.DataFrame(data)


def _today(scores: pd.DataFrame, layer: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """mu2 and unresponsive of `layer` from today's scores table, in channel order."""
    if not {"layer", "channel", "mu2", "unresponsive"} <= set(scores.columns):
        raise InputError("the scores table needs the columns layer, channel, mu2 and unresponsive "
                         "(the scores.csv of `psychofeat analyze`).")
    df = scores[scores["layer"] == layer].sort_values("channel")
    if not np.array_equal(df["channel"].to_numpy(), np.arange(n)):
        raise InputError(f"the scores table does not list channels 0..{n - 1} of layer {layer!r} exactly once; "
                         "give the scores.csv of an analysis of this network and these layers.")
    return df["mu2"].to_numpy(dtype=np.float64), df["unresponsive"].to_numpy(dtype=bool)


def colour_scores(
    backbone: Backbone,
    scores: pd.DataFrame,
    layers: Sequence[str] | None = None,
    config: ColourConfig | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    progress: bool = True,
) -> ColourResult:
    """Probe the chromatic sweeps through `layers` (default: the layers of `scores`) and score every channel.

    `scores` is today's per-channel table of `psychofeat analyze` for the same network (its mu2 and unresponsive
    flags enter pe_colour and pe_achprot). One pass of 1 + 3 × n_freq × n_phase stimuli (289 by default)
    through all layers.
    """
    config = config or ColourConfig()
    cp = config.colour
    names = backbone.depth_order(list(layers) if layers else list(dict.fromkeys(scores["layer"])))
    weights = mechanism_weights(cp)
    stim = colour_frequency_sweep(cp)
    t0 = time.perf_counter()
    raw = probe(backbone, stim, names, config.batch_size, device, dtype, progress=progress, desc="colour sweep")
    t1 = time.perf_counter()
    resp = split_responses(raw, cp)
    freqs = cp.protocol.frequencies
    tables = []
    for k in names:
        mu2, dead = _today(scores, k, raw[k].shape[1])
        tables.append(score_colour_layer(k, freqs, {d: resp[d][k] for d in cp.directions}, weights, mu2, dead,
                                         config.unresponsive_fraction))
    table = pd.concat(tables, ignore_index=True)
    curves: dict[str, np.ndarray] = {f"csf_{d}_at_mid": w for d, w in weights.items()}
    for k in names:
        for d in cp.directions:
            curves[f"{k}/{d}_response"] = resp[d][k].T  # C × N_f
    info = {"colour_config": config.to_dict(), "layers": names, "n_stimuli": len(stim),
            "timing_s": {"probe": t1 - t0, "scoring": time.perf_counter() - t1}}
    return ColourResult(table=table, curves=curves, info=info)


def colour_selection(base: Selection, table: pd.DataFrame, column: str = "pe_colour",
                     method: str = "top", fraction: float = 0.25, seed: int = 0) -> Selection:
    """A selection ranked by a colour column instead of PE, with `base`'s network, weights and unresponsive flags
    (so the responsive pool, and with it random-k, is today's). Built by `Selection.from_scores`."""
    if base.unresponsive is None:
        raise InputError("the base selection carries no unresponsive flags; give the selection.json of analyze.")
    if column not in table.columns:
        raise InputError(f"the colour table has no column {column!r}; choose one of {', '.join(COLOUR_COLUMNS)}.")
    rows = []
    for layer in base.layers:
        df = table[table["layer"] == layer].sort_values("channel")
        if len(df) != base.n_channels[layer]:
            raise InputError(f"the colour table has {len(df)} channels of {layer!r}, the selection "
                             f"{base.n_channels[layer]}; score the same network and layers.")
        rows.append(pd.DataFrame({"layer": layer, "channel": df["channel"].to_numpy(),
                                  "pe": np.nan_to_num(df[column].to_numpy(dtype=np.float64), nan=0.0),
                                  "unresponsive": base.unresponsive[layer]}))
    prov = {**base.provenance, "ranked_by": column}
    return Selection.from_scores(pd.concat(rows, ignore_index=True), base.model, base.weights, method, fraction,
                                 seed, prov)
