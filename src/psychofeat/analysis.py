"""`psychofeat analyze`: probe every channel of the chosen layers with gratings and score it.

The library's main verb (`psychofeat.analyze`). Writing the outputs and the report is
`psychofeat.analysis_report.write_analysis`; the files without the report, `write_analysis_files`.

Two passes keep the cost close to the bare forward passes of the stimuli:
1. the uniform field and the frequency sweep (radial gratings × phases) through all layers → R_m(f), mu1, f*;
2. orientation sweeps (linear gratings × orientations × phases) only at the grid frequencies that are some
   channel's f*, each stopped at the deepest layer that needs that frequency.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from psychofeat.backbones.base import Backbone
from psychofeat.colour import ColourProtocol
from psychofeat.colour_scores import ColourConfig, colour_scores
from psychofeat.errors import InputError
from psychofeat.precision import dtype_name, resolve_dtype
from psychofeat.probe import probe
from psychofeat.scores import UNRESPONSIVE_FRACTION, frequency_scores, score_layer
from psychofeat.selection import Selection
from psychofeat.stimuli import (
    ProbeProtocol,
    StimulusSet,
    concat,
    frequency_sweep,
    gray_set,
    orientation_sweep,
    preset_name,
)

#: (stimuli, layers, description) -> {layer: N×C mean responses}; by default the network's (`probe`)
ResponseSource = Callable[[StimulusSet, Sequence[str], str], dict[str, np.ndarray]]


@dataclass(frozen=True)
class AnalysisConfig:
    """Everything that determines the scores, besides the network."""

    protocol: ProbeProtocol = field(default_factory=ProbeProtocol)
    csf: str = "barten"
    luminance: float = 100.0  # adaptation luminance, cd/m²
    combination: str = "product"
    fraction: float = 0.25
    seed: int = 0
    batch_size: int = 16
    unresponsive_fraction: float = UNRESPONSIVE_FRACTION
    #: also probe chromatic gratings (psychofeat.colour_scores, docs/colour.md): adds the colour columns and
    #: pe_colour; the selection still ranks by today's PE (the pre-registered rule kept the default)
    colour: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["protocol"] = self.protocol.to_dict()
        if not self.colour:  # recorded only when used: an achromatic analysis records what it always did
            del d["colour"]
        return d


@dataclass
class AnalysisResult:
    scores: pd.DataFrame
    curves: dict[str, np.ndarray]
    selection: Selection
    info: dict[str, Any]  # backbone, weights, config, csf values, timing, stimulus counts


def csf_weights(config: AnalysisConfig) -> np.ndarray:
    """CSF at the mid frequencies g_i for the display's luminance and the stimulus area."""
    from psychofeat.csf import get_csf

    g = config.protocol.mid_frequencies
    csf_model = get_csf(config.csf)
    s = np.asarray(csf_model.sensitivity(g, luminance=config.luminance, area_deg2=config.protocol.area_deg2),
                   dtype=np.float64)
    if s.shape != g.shape or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise InputError(f"CSF {config.csf!r} returned invalid values at {g.min():.3g}–{g.max():.3g} cpd.")
    return s


def _phase_mean(x: np.ndarray, n_phase: int) -> np.ndarray:
    """Average consecutive groups of n_phase rows (stimuli are generated phase-minor)."""
    return x.reshape(-1, n_phase, x.shape[-1]).mean(axis=1)


def analyze(
    backbone: Backbone,
    layers: Sequence[str] | None = None,
    config: AnalysisConfig | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    progress: bool = True,
    responses: ResponseSource | None = None,
) -> AnalysisResult:
    """Score every channel of `layers` (default: the backbone's default layers).

    `responses` replaces the forward passes (default: `probe` through `backbone`): it is given each stimulus set
    and the layers wanted and returns their mean responses. scripts/analyze_tradeoff.py uses it to score reduced
    protocols from one recorded superset of stimuli.
    """
    config = config or AnalysisConfig()
    p = config.protocol
    try:
        p.check_holds_lowest_frequency()
    except InputError as exc:  # the CLI refuses; library callers (quick tests, compare) are warned
        warnings.warn(f"{exc} Scores at the lowest frequencies will not mean what they say.", stacklevel=2)
    names = backbone.depth_order(layers or backbone.default_layers)
    csf = csf_weights(config)
    t0 = time.perf_counter()
    counts: list[dict[str, Any]] = []

    # -- pass 1: uniform field + frequency sweep ------------------------------------------------------
    sweep = frequency_sweep(p)
    stim1 = concat([gray_set(p), sweep])
    dt = resolve_dtype(dtype, device)  # once: "auto" resolved, an emulated bf16 warned about, the name recorded
    if responses is None:
        def responses(stim: StimulusSet, upto: Sequence[str], desc: str) -> dict[str, np.ndarray]:
            return probe(backbone, stim, upto, config.batch_size, device, dt, progress=progress, desc=desc)
    resp1 = responses(stim1, names, "frequency sweep")
    counts.append({"pass": "frequency", "n_stimuli": len(stim1), "deepest_layer": names[-1]})
    gray = {k: v[0] for k, v in resp1.items()}
    per_freq = len(sweep) // p.n_freq  # phases (radial) or orientations × phases (linear)
    freq_resp = {k: v[1:].reshape(p.n_freq, per_freq, -1).mean(axis=1) - gray[k] for k, v in resp1.items()}
    t1 = time.perf_counter()

    # -- where each channel's orientation tuning is measured --------------------------------------------
    fscores = {k: frequency_scores(p.frequencies, freq_resp[k], csf, config.unresponsive_fraction) for k in names}
    orient: dict[str, np.ndarray] = {}
    orient_freq_idx: dict[str, np.ndarray] = {}
    if p.freq_stimulus == "linear":
        # the sweep already holds every orientation at every f_i; snap g_i to f_i or f_{i+1}, the stronger one
        full = {k: _phase_mean(v[1:], p.n_phase).reshape(p.n_freq, p.n_orient, -1) - gray[k][None, None, :]
                for k, v in resp1.items()}
        for k in names:
            i = fscores[k].sens_index
            R = np.abs(freq_resp[k])
            C = R.shape[1]
            pick = np.where(R[i, np.arange(C)] >= R[i + 1, np.arange(C)], i, i + 1)
            orient_freq_idx[k] = pick
            orient[k] = full[k][pick, :, np.arange(C)]
        grid = p.frequencies
        stim2_total = 0
    else:
        grid = p.orientation_grid
        snapped = {k: p.snap_to_orientation_grid(fscores[k].sens_index) for k in names}
        need: dict[int, str] = {}  # orientation-grid index -> deepest layer needing it
        for k in names:  # names are in depth order: later layers overwrite
            for gi in np.unique(snapped[k][~fscores[k].unresponsive]):
                need[int(gi)] = k
        by_depth: dict[str, list[int]] = {}
        for gi, k in sorted(need.items()):
            by_depth.setdefault(k, []).append(gi)
        full2: dict[str, dict[int, np.ndarray]] = {k: {} for k in names}
        stim2_total = 0
        for deepest, gis in by_depth.items():
            upto = names[: names.index(deepest) + 1]
            stim2 = orientation_sweep(p, grid[gis])
            stim2_total += len(stim2)
            counts.append({"pass": "orientation", "n_stimuli": len(stim2), "deepest_layer": deepest})
            r2 = responses(stim2, upto, f"orientation sweep ≤{deepest}")
            for k, v in r2.items():
                arr = _phase_mean(v, p.n_phase_orientation).reshape(len(gis), p.n_orient, -1) - gray[k][None, None, :]
                for j, gi in enumerate(gis):
                    full2[k][gi] = arr[j]
        for k in names:
            C = freq_resp[k].shape[1]
            idx = snapped[k]
            o = np.zeros((C, p.n_orient))
            for gi in np.unique(idx):
                sel = idx == gi
                if gi in full2[k]:
                    o[sel] = full2[k][gi][:, sel].T
            orient[k] = o
            orient_freq_idx[k] = idx
    t2 = time.perf_counter()

    # -- scores ---------------------------------------------------------------------------------------
    tables = []
    for k in names:
        df = score_layer(k, p.frequencies, freq_resp[k], csf, p.orientations, orient[k], config.combination,
                         config.unresponsive_fraction, fscores[k])
        df.insert(2, "name", [f"{k}:{c}" for c in df["channel"]])
        df["mu2_freq_cpd"] = grid[orient_freq_idx[k]]
        tables.append(df)
    scores = pd.concat(tables, ignore_index=True)
    colour_info: dict[str, Any] | None = None
    colour_curves: dict[str, np.ndarray] = {}
    t_colour = time.perf_counter()
    if config.colour:
        cres = colour_scores(backbone, scores, names,
                             ColourConfig(ColourProtocol(protocol=p, luminance=config.luminance),
                                          config.unresponsive_fraction, config.batch_size),
                             device, dt, progress)
        scores = scores.merge(cres.table, on=["layer", "channel"], how="left", validate="one_to_one")
        colour_curves = {f"colour/{k}": v for k, v in cres.curves.items()}
        colour_info = cres.info
        counts.append({"pass": "colour", "n_stimuli": int(cres.info["n_stimuli"]), "deepest_layer": names[-1]})
    t_colour = time.perf_counter() - t_colour
    weights = {"source": backbone.weights_info.source, "params_sha256": backbone.weights_info.params_sha256,
               "sha256": backbone.weights_info.sha256}
    selection = Selection.from_scores(scores, backbone.name, weights, "top", config.fraction, config.seed)
    curves: dict[str, np.ndarray] = {
        "frequencies_cpd": p.frequencies,
        "mid_frequencies_cpd": p.mid_frequencies,
        "orientations_deg": p.orientations,
        "csf_at_mid": csf,
    }
    for k in names:
        curves[f"{k}/gray"] = gray[k]
        curves[f"{k}/freq_response"] = freq_resp[k].T  # C × N_f
        curves[f"{k}/orient_response"] = orient[k]  # C × N_θ, at mu2_freq_cpd
    curves.update(colour_curves)
    t3 = time.perf_counter()
    info = {
        "model": backbone.name,
        "weights": backbone.weights_info.to_dict(),
        "preprocessing": backbone.preprocessing.to_dict(),
        "layers": names,
        "config": config.to_dict(),
        "protocol_preset": preset_name(p),
        "csf_at_mid_frequencies": csf.tolist(),
        "device": str(device),
        "dtype": dtype_name(dt),
        "dtype_requested": str(dtype),
        "stimulus_passes": counts,
        "n_stimuli": len(stim1) + stim2_total,
        "timing_s": {"frequency_pass": t1 - t0, "orientation_pass": t2 - t1, "scoring": t3 - t2, "total": t3 - t0},
    }
    if colour_info is not None:
        info["colour"] = colour_info
        info["n_stimuli"] += int(colour_info["n_stimuli"])
        info["timing_s"]["colour_pass"] = t_colour
        info["timing_s"]["scoring"] -= t_colour
    selection.provenance = {"analysis": {k: info[k] for k in ("model", "layers", "config")}}
    return AnalysisResult(scores=scores, curves=curves, selection=selection, info=info)



def write_analysis_files(result: AnalysisResult, out: Any, with_report: bool = False) -> dict[str, Any]:
    """Write scores.csv, selection.json, curves.npz and manifest.json into `out` (atomically); returns the manifest.

    The manifest lists report.html too when `with_report` (`psychofeat.analysis_report.write_analysis` writes it
    next). Here, not in the report module, so that a study that analyses a network first (`psychofeat iqa`
    without --selection) keeps the analysis's files without importing a report."""
    from pathlib import Path

    from psychofeat.io import provenance, write_json, write_npz, write_table

    out = Path(out)
    write_table(out / "scores.csv", result.scores)
    result.selection.save(out / "selection.json")
    write_npz(out / "curves.npz", **result.curves)
    # exactly the files written (no report.html with report=False); a run folder (io.RunFolder) re-lists what is there
    outputs = ["scores.csv", "selection.json", "curves.npz", "manifest.json"] + (["report.html"] if with_report else [])
    manifest = provenance(**result.info, outputs=outputs)
    write_json(out / "manifest.json", manifest)
    return manifest


__all__ = ["AnalysisConfig", "AnalysisResult", "ResponseSource", "analyze", "csf_weights", "write_analysis_files"]
