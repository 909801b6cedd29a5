"""Low-level vision battery (``psychofeat hvs battery``): contrast detection, masking and matching for networks,
channel selections, single channels and classic metrics, against human data (docs/battery.md).

Tests (stimuli: `psychofeat.hvs.battery_stimuli`; scores: `psychofeat.hvs.battery_scoring`):

* detection vs spatial frequency (ModelFest), vs luminance (hdrvdp_csf, 0.02–150 cd/m²) and vs area
  (rovamo1993): castleCSF rows shown through the display model, predicted by `psychofeat.hvs.detection.detect_bank`
  (its bisection and per-dataset criterion; here a bracket of ÷/× 16 and 3 steps);
* phase-coherent and phase-incoherent masking: thresholds on each human mask contrast;
* contrast matching: for each reference contrast at 5 cpd, the contrast at each frequency of equal distance.

Metrics come from `psychofeat.hvs.detection.build_banks` (deep features with the default PE selections, random
weights, PSNR, SSIM); one forward pass per image serves every metric of a network and every channel's
single-channel distance (`psychofeat.distance_bank.SelectionBank.compare`), which the per-channel analysis
correlates with PE, mu1 and mu2. This module never writes the report: `psychofeat.hvs.battery_report` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from psychofeat.errors import InputError
from psychofeat.hvs.battery_runs import (
    CHANNEL_SCORES,
    RESULT_COLUMNS,
    TESTS,
    BatteryConfig,
    MemoBank,
    Sampled,
    bank_distances,
    quick_config,
    run_detection,
    run_masking,
    run_matching,
    sample,
)
from psychofeat.hvs.battery_scoring import pe_correlations, selection_summary
from psychofeat.hvs.battery_stimuli import (
    DETECTION_TESTS,
    MASKING_TESTS,
    MATCHING_TEST,
    Viewing,
)
from psychofeat.hvs.detection import build_banks
from psychofeat.metric_banks import DistanceBank, FeatureBank
from psychofeat.selection import Selection


# ---------------------------------------------------------------------------------------------- the command
@dataclass
class BatteryResult:
    """Everything the battery measured (tables as written) and its provenance."""

    results: pd.DataFrame
    curves: pd.DataFrame
    per_channel: pd.DataFrame
    pe_correlation: pd.DataFrame
    selections: pd.DataFrame
    detection_rows: pd.DataFrame
    info: dict[str, Any]


def _resolve_selection(selection: str | Path | Selection | None, model: str) -> Selection | None:
    if selection is None or isinstance(selection, Selection):
        return selection
    if str(selection) == "pe":
        from psychofeat.bundled import load_bundled

        return load_bundled(model)  # type: ignore[no-any-return]
    return Selection.load(selection)


def metric_tokens(models: Sequence[str], controls: Sequence[str], metrics: Sequence[str]) -> list[str]:
    """`build_banks` tokens: each model (all channels of its metric layers), its controls (``model:random``), and
    the metric tokens (pe, psnr, ssim, ...)."""
    toks = list(models) + [f"{m}:{c}" for m in models for c in controls] + list(metrics)
    return list(dict.fromkeys(t for t in toks if t))


def channel_table(selection: Selection, scores: dict[str, Any], fraction: float) -> pd.DataFrame:
    """One row per channel of the selection's layers: PE, mu1, mu2, unresponsive, in top-k, and its test scores
    (`scores[name]`: one value per channel of the layers `scores["_layers"]` = [(layer, n_channels)], in order)."""
    top = selection.select("top", fraction)
    offsets, s0 = {}, 0
    for lay, n in scores["_layers"]:
        offsets[lay] = (s0, s0 + n)
        s0 += n
    parts = []
    for lay in selection.layers:
        n = int(selection.n_channels[lay])
        in_top = np.zeros(n, dtype=bool)
        in_top[top.channels[lay]] = True
        parts.append(pd.DataFrame({
            "layer": lay, "channel": np.arange(n), "name": [f"{lay}:{c}" for c in range(n)],
            "pe": selection.pe[lay] if selection.pe is not None else np.nan,
            "mu1": selection.mu1[lay] if selection.mu1 is not None else np.nan,
            "mu2": selection.mu2[lay] if selection.mu2 is not None else np.nan,
            "unresponsive": selection.unresponsive[lay] if selection.unresponsive is not None else False,
            "in_top": in_top}))
    table = pd.concat(parts, ignore_index=True)
    for k, v in scores.items():
        if k != "_layers":
            table[k] = np.concatenate([v[slice(*offsets[lay])] if lay in offsets
                                       else np.full(int(selection.n_channels[lay]), np.nan)
                                       for lay in selection.layers])
    return table


def battery(banks: Sequence[DistanceBank], view: Viewing, config: BatteryConfig, selection: Selection | None,
            tests: Sequence[str] = TESTS, progress: bool = True) -> BatteryResult:
    """Run `tests` on every bank; the channel analysis uses the bank of the selection's network (ImageNet weights)."""
    if not tests:
        raise InputError(f"no battery test given; choose from {', '.join(TESTS)}.")
    unknown = [t for t in tests if t not in TESTS]
    if unknown:
        raise InputError(f"unknown battery test {unknown[0]!r}; known: {', '.join(TESTS)}.")
    channel_bank = selection.model if selection is not None else None
    if channel_bank is not None and not any(b.label == channel_bank for b in banks):
        channel_bank = None
    for b in banks:
        if isinstance(b, FeatureBank):
            b.bank.threads = config.threads
    results, curves, timing = [], [], {}
    chan_scores: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"tests": {}}
    det_rows = pd.DataFrame()
    det = [t for t in tests if t in DETECTION_TESTS]
    if det:
        t0 = time.perf_counter()
        r, det_rows, c, inf = run_detection(banks, view, config, progress)
        results.append(r[r["test"].isin(det)])
        curves.append(c[c["test"].isin(det)])
        info["tests"]["detection"] = inf
        timing["detection"] = time.perf_counter() - t0
    for t in (t for t in tests if t in MASKING_TESTS):
        t0 = time.perf_counter()
        r, c, extra = run_masking(t, banks, view, config, channel_bank, progress)
        results.append(r)
        curves.append(c)
        chan_scores.update(extra["channels"])
        info["tests"][t] = extra["info"]
        timing[t] = time.perf_counter() - t0
    if MATCHING_TEST in tests:
        t0 = time.perf_counter()
        r, c, extra = run_matching(banks, view, config, channel_bank, progress)
        results.append(r)
        curves.append(c)
        chan_scores.update(extra["channels"])
        info["tests"][MATCHING_TEST] = extra["info"]
        timing[MATCHING_TEST] = time.perf_counter() - t0
    res = pd.concat(results, ignore_index=True)[RESULT_COLUMNS]
    per_channel, pe_corr = pd.DataFrame(), pd.DataFrame()
    if chan_scores and selection is not None:
        fraction = float(config.fraction or selection.fraction or 0.25)
        per_channel = channel_table(selection, chan_scores, fraction)
        cols = [c for c in CHANNEL_SCORES if c in per_channel]
        pe_corr = pe_correlations(per_channel, cols, config.n_permutations, config.perm_seed)
    info.update(timing_s=timing, config=config.to_dict(), viewing=view.to_dict(), channel_bank=channel_bank,
                metrics={b.label: list(b.names) for b in banks},
                banks={b.label: b.describe() for b in banks if hasattr(b, "describe")})
    return BatteryResult(res, pd.concat(curves, ignore_index=True), per_channel, pe_corr, selection_summary(res),
                         det_rows, info)


def run_battery(
    out: str | Path,
    models: Sequence[str] = ("vgg16",),
    controls: Sequence[str] = ("random",),
    metrics: Sequence[str] = ("pe", "psnr", "ssim"),
    selection: str | Path | Selection | None = "pe",
    view: Viewing | None = None,
    config: BatteryConfig | None = None,
    tests: Sequence[str] = TESTS,
    overwrite: bool = False,
    device: str = "cpu",
    progress: bool = True,
    extra_writer: Callable[[BatteryResult, Path], Any] | None = None,
) -> BatteryResult:
    """Build the banks, run the battery and write results.csv, per_channel.csv, pe_correlation.csv,
    selections.csv, curves.csv, detection_rows.csv and manifest.json into `out` (atomically, with whatever
    `extra_writer(result, folder)` adds: the CLI passes the report writer)."""
    from psychofeat.io import provenance, run_folder, write_json, write_table

    config = config or BatteryConfig()
    view = view or Viewing()
    toks = metric_tokens(models, controls, metrics)
    if "pe" in toks and not models and str(selection) == "pe":
        raise InputError("the bundled selection ('pe') needs a model: pass --models or a --selection file.")
    sel = _resolve_selection(selection, models[0] if models else "") if "pe" in toks else None
    t0 = time.perf_counter()
    plan = build_banks(toks, sel, config.seeds, config.fraction, device)
    with run_folder(out, overwrite) as run:
        result = battery(plan.banks, view, config, sel, tests, progress)
        result.info.update(
            command_name="hvs battery", tokens=toks, notes=plan.notes, device=device,
            selection=("bundled:" + sel.model) if sel is not None and str(selection) == "pe" else str(selection),
            total_s=time.perf_counter() - t0)
        result.info = provenance(**result.info)
        folder = run.path
        write_table(folder / "results.csv", result.results)
        write_table(folder / "curves.csv", result.curves)
        write_table(folder / "per_channel.csv", result.per_channel)
        write_table(folder / "pe_correlation.csv", result.pe_correlation)
        write_table(folder / "selections.csv", result.selections)
        write_table(folder / "detection_rows.csv", result.detection_rows)
        write_json(folder / "manifest.json", result.info)
        if extra_writer is not None:
            extra_writer(result, folder)
    return result


__all__ = [
    "CHANNEL_SCORES",
    "RESULT_COLUMNS",
    "TESTS",
    "BatteryConfig",
    "BatteryResult",
    "MemoBank",
    "Sampled",
    "bank_distances",
    "battery",
    "channel_table",
    "metric_tokens",
    "quick_config",
    "run_battery",
    "run_detection",
    "run_masking",
    "run_matching",
    "sample",
]
