"""``psychofeat hvs detect``: runs the study (`psychofeat.hvs.detection`) and writes its tables, manifest and the
self-contained HTML report.

This module imports the study and owns writing its results and its report; the study never imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from psychofeat.errors import InputError
from psychofeat.hvs.data import aggregated_sha256, order_with_pooled
from psychofeat.hvs.detection import DetectionConfig, DetectionResult, build_banks, detect
from psychofeat.hvs.detection_scores import summary_table
from psychofeat.hvs.threshold_stimuli import Display, ThresholdStimuli


def run_detect(
    out: str | Path,
    metrics: Sequence[str] = ("all",),
    selection: str | Path | None = None,
    datasets: str | Sequence[str] = "all",
    display: Display | Mapping[str, Display] | None = None,
    min_luminance: float = 10.0,
    seeds: int = 20,
    fraction: float | None = None,
    config: DetectionConfig | None = None,
    overwrite: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> DetectionResult:
    """Build the stimuli and metrics, run the benchmark, and write ``detection_scores.csv`` (per metric and
    dataset), ``detection_rows.csv`` (per stimulus and metric), ``detection_random.csv``, ``stimuli.csv``,
    ``stimuli_skipped.csv``, ``manifest.json`` and ``report.html`` into `out`."""
    from psychofeat.hvs.threshold_stimuli import threshold_stimuli
    from psychofeat.io import provenance, run_folder, sha256_file, write_json, write_table

    stimuli = threshold_stimuli(datasets, display, min_luminance)
    if len(stimuli) == 0:
        raise InputError("no threshold stimuli can be shown with this display; see stimuli_skipped.csv reasons.")
    plan = build_banks(metrics, selection, seeds, fraction, device)
    with run_folder(out, overwrite) as run:  # built beside `out`, swapped in whole at the end
        out_dir = run.path
        result = detect(plan.banks, stimuli, config, progress)
        write_table(out_dir / "detection_scores.csv", result.scores)
        write_table(out_dir / "detection_rows.csv", result.per_row)
        write_table(out_dir / "detection_random.csv", result.random)
        write_table(out_dir / "stimuli.csv", stimuli.rows)
        write_table(out_dir / "stimuli_skipped.csv", stimuli.skipped)
        result.info.update(
            datasets=datasets, min_luminance=min_luminance, seeds=seeds, fraction=fraction,
            selection=str(selection) if selection is not None else None,
            selection_sha256=sha256_file(selection) if selection is not None else None,
            displays={k: v.to_dict() for k, v in stimuli.displays.items()},
            stimuli_used=stimuli.describe().to_dict("records"), notes=plan.notes, device=device,
            data_sha256=aggregated_sha256(),
        )
        info = provenance(command_name="hvs detect", **result.info)
        write_json(out_dir / "manifest.json", info)
        build_report(result, info).write(out_dir / "report.html")
    return result


def build_report(result: DetectionResult, info: dict[str, Any]) -> Any:
    """Self-contained HTML: stimuli, the score table, predicted vs human thresholds, selections vs random."""
    from psychofeat.report import HtmlReport

    rep = HtmlReport("Threshold benchmark: metrics vs human contrast-detection thresholds")
    rep.paragraph(
        "Each stimulus is a castleCSF row (achromatic, foveal, static Gabor/grating) rendered at its human threshold "
        "contrast on mean grey. score = s.d. of log10 distance(stimulus, blank) over a dataset's stimuli (0 = every "
        "threshold stimulus equally far from the blank, as for a human). Predicted thresholds: the contrast where "
        "the distance reaches the dataset's criterion (geometric mean of the distances at human threshold), by "
        "bisection on log10 contrast; RMSE/bias in log10 units, Spearman of predicted vs human thresholds. "
        "'pooled': all datasets, each with its own criterion. 'constant threshold' (reference): the RMSE of "
        "predicting the same threshold for every stimulus, i.e. the spread of the human log thresholds; a metric "
        "must beat it to predict anything. If distance grows as contrast^p, RMSE = score / p: "
        "p = 2 for PSNR, but deep normalized features are compressive (p < 1, 'exponent' column), so their score "
        "understates their threshold errors; RMSE compares metrics in the same units."
    )
    rep.heading("Stimuli")
    rep.table(result.stimuli.describe(), caption="rows used and skipped (reasons: docs/detection.md)")
    rep.figure(_stimuli_figure(result.stimuli), caption="ModelFest stimuli as rendered (shown at 30x threshold "
               "contrast, capped at 1, so they are visible here)")
    rep.heading("Scores")
    rep.table(summary_table(result.scores, result.random), caption="score / RMSE / Spearman per dataset")
    if not result.random.empty:
        rep.table(result.random.round(3), caption="random-k selections (detection_random.csv); "
                  "*_frac_random_better = fraction of random seeds with a lower (better) score or RMSE")
    rep.figure(_selection_figure(result.scores), caption="score and RMSE of every metric; grey dots: the random-k "
               "selections (one per seed), bar: their mean ± sd; dashed: RMSE of predicting one threshold for all")
    for ds in result.stimuli.datasets:
        rep.heading(f"Predicted vs human thresholds: {ds}")
        rep.figure(_threshold_figure(result.per_row, ds), caption=f"{ds}: human thresholds (filled, solid) and each "
                   "metric's predicted thresholds (open, dashed) vs frequency; colour = condition (luminance, size)")
    if info.get("notes"):
        rep.paragraph("Notes: " + " ".join(info["notes"]), css_class="note")
    rep.provenance(info)
    return rep


def _stimuli_figure(stimuli: ThresholdStimuli) -> Any:
    import matplotlib.pyplot as plt

    idx = np.flatnonzero(stimuli.rows["dataset"].to_numpy() == "modelfest")
    if idx.size == 0:
        idx = np.arange(min(len(stimuli), 12))
    ncol = min(7, idx.size)
    nrow = math.ceil(idx.size / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.6 * ncol, 1.8 * nrow), squeeze=False)
    for ax, i in zip(axes.ravel(), idx, strict=False):
        r = stimuli.rows.iloc[i]
        c = min(1.0, 30 * float(r["threshold_contrast"]))
        img = stimuli.render([int(i)], c)[0, 0].numpy()
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"#{int(r['stim_id'])} {r['s_frequency']:g} cpd", fontsize=7)
        ax.axis("off")
    for ax in axes.ravel()[idx.size:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def _selection_figure(scores: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    datasets = order_with_pooled(scores["dataset"].unique())
    reference = scores[scores["group"] == "reference"].set_index("dataset")["rmse"]
    scores = scores[scores["group"] != "reference"]
    fixed = scores[scores["group"] != "pe-random"]
    names = list(dict.fromkeys(fixed["metric"]))
    has_random = (scores["group"] == "pe-random").any()
    labels = names + (["pe-random (seeds)"] if has_random else [])
    fig, axes = plt.subplots(2, len(datasets), figsize=(3.3 * len(datasets) + 2.5, 0.28 * len(labels) * 2 + 2),
                             squeeze=False, sharey=True)
    y = {n: i for i, n in enumerate(labels)}
    for col, ds in enumerate(datasets):
        sub = scores[scores["dataset"] == ds]
        for row, metric_col in enumerate(("score", "rmse")):
            ax = axes[row, col]
            f = sub[sub["group"] != "pe-random"]
            colors = ["C3" if g == "pe-top" else "C0" if g == "pe-bottom" else "C2" if g == "pe-all" else "0.2"
                      for g in f["group"]]
            ax.scatter(f[metric_col], [y[m] for m in f["metric"]], c=colors, s=18, zorder=3)
            r = sub[sub["group"] == "pe-random"][metric_col].to_numpy()
            if r.size:
                yy = y["pe-random (seeds)"]
                ax.scatter(r, np.full(r.size, yy), color="0.6", s=10, zorder=2)
                ax.errorbar([r.mean()], [yy], xerr=[r.std(ddof=1) if r.size > 1 else 0], color="k", capsize=3, zorder=4)
            if metric_col == "rmse" and ds in reference.index:
                ax.axvline(float(reference.loc[ds]), color="C1", ls="--", lw=1, label="constant threshold")
                ax.legend(fontsize=6, loc="lower right")
            ax.set_title(f"{ds}: {metric_col}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.tick_params(axis="both", labelsize=7)
    axes[0, 0].set_yticks(range(len(labels)), labels, fontsize=7)
    axes[0, 0].invert_yaxis()
    fig.tight_layout()
    return fig


def _threshold_figure(per_row: pd.DataFrame, dataset: str) -> Any:
    import matplotlib.pyplot as plt

    sub = per_row[per_row["dataset"] == dataset]
    fixed = [m for m in dict.fromkeys(sub["metric"]) if not sub[sub["metric"] == m]["group"].iloc[0] == "pe-random"]
    rand = [m for m in dict.fromkeys(sub["metric"]) if m not in fixed]
    metrics = fixed + rand[:1]
    ncol = min(4, len(metrics))
    nrow = math.ceil(len(metrics) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 2.7 * nrow), sharex=True, sharey=True, squeeze=False)
    conds = sub[["luminance", "area"]].drop_duplicates().sort_values(["luminance", "area"]).to_records(index=False)
    cmap = plt.get_cmap("viridis")
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        g = sub[sub["metric"] == metric]
        for k, (lum, area) in enumerate(conds):
            c = cmap(k / max(len(conds) - 1, 1) * 0.9)
            h = g[(g["luminance"] == lum) & (g["area"] == area)].sort_values("s_frequency")
            if h.empty:
                continue
            ax.plot(h["s_frequency"], h["log10_human"], "o-", color=c, ms=3, lw=1)
            ax.plot(h["s_frequency"], h["log10_pred"], "s--", mfc="none", color=c, ms=4, lw=1)
        ax.set_xscale("log")
        ax.set_title(metric, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("log10 threshold")
    for ax in axes[-1]:
        ax.set_xlabel("cpd")
    fig.tight_layout()
    return fig


__all__ = ["build_report", "run_detect"]
