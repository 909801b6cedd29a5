"""The outputs of `psychofeat invert`: results.csv, summary.csv, paired.csv, curves.csv, manifest.json and
report.html (per layer set, the paper's figure (original, all, top, bottom, random), the mean scores, the paired
top-vs-others comparisons and the loss curves).

This module imports the study (`invert_experiment`) and owns writing its results and report; the study never
imports it. `run_invert` here is the whole verb: the study, then `write_outputs`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from psychofeat.errors import InputError  # noqa: E402
from psychofeat.experiments import invert_experiment  # noqa: E402
from psychofeat.experiments.invert_experiment import InvertConfig, InvertResult, summary_table  # noqa: E402
from psychofeat.images import load_image_uint8  # noqa: E402
from psychofeat.io import provenance, write_json, write_table  # noqa: E402
from psychofeat.report import HtmlReport  # noqa: E402

#: columns of the figure, left to right (random = seed 0)
GRID = (("original", None), ("init", None), ("all", "all"), ("top", "top"), ("bottom", "bottom"),
        ("random", "random0"))


def grid(out: Path, layers: str, names: list[str], gap: int = 4) -> np.ndarray:
    """Rows = images, columns = GRID, read back from the saved PNGs (exactly what was scored)."""
    rows = []
    for name in names:
        tiles = []
        for title, label in GRID:
            path = (out / "images" / title / f"{name}.png") if label is None else (out / "recon" / layers / label /
                                                                                   f"{name}.png")
            tiles.append(load_image_uint8(path))
        h = tiles[0].shape[0]
        sep = np.full((h, gap, 3), 255, np.uint8)
        row = [t if i == 0 else np.concatenate([sep, t], axis=1) for i, t in enumerate(tiles)]
        rows.append(np.concatenate(row, axis=1))
    w = rows[0].shape[1]
    sep = np.full((gap, w, 3), 255, np.uint8)
    return np.concatenate([r if i == 0 else np.concatenate([sep, r], axis=0) for i, r in enumerate(rows)], axis=0)


def curves_figure(curves: pd.DataFrame) -> Any:
    """Median scaled objective J over images against the step, one panel per layer set, log scale."""
    sets = list(dict.fromkeys(curves["layers"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(3.2 * len(sets), 2.8), squeeze=False)
    for ax, layers in zip(axes[0], sets):
        block = curves[curves["layers"] == layers]
        for label, c in block.groupby("selection", sort=False):
            ax.plot(c["step"], c["objective_median"].clip(lower=1e-8), label=label,
                    ls="--" if str(label).startswith("random") else "-", lw=1)
        ax.set_yscale("log")
        # plain tick labels: the default log labels go through mathtext, which costs seconds per figure
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(layers if len(layers) < 30 else "combined", fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("J (median over images)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _method_note(cfg: InvertConfig) -> str:
    return (
        f"Each image is reconstructed from the {cfg.mode} distance to its features over the chosen channels of "
        f"{cfg.model} ({cfg.weights or 'default ImageNet'} weights): Adam, {cfg.steps} steps, lr {cfg.lr:g} with "
        f"cosine decay to 0, pixels kept in [0, 1] by '{cfg.param}', TV weight {cfg.tv:g}, compute dtype "
        f"{cfg.dtype}. Every selection starts from the same image (mid grey + Gaussian noise s.d. {cfg.noise:g}, "
        f"seed {cfg.init_seed}) and each layer's distance is divided by its value there, so every objective "
        f"starts at 1. top/bottom/random = the PE top, bottom (responsive channels) and random {cfg.fraction:g} "
        f"of each layer's channels ({cfg.seeds} random seeds); all = every channel. Scores compare the 8-bit "
        "reconstruction with the original: PSNR (dB) and SSIM on RGB (higher is better) and all-channel "
        "normalized distances of other networks (lower is better)."
    )


def build_report(result: InvertResult, cfg: InvertConfig, meta: dict[str, Any]) -> HtmlReport:
    rep = HtmlReport("Feature inversion: what PE top-k channels keep of an image")
    rep.paragraph(_method_note(cfg), css_class="note")
    if any(c.endswith("(training net)") for c in result.results.columns):
        rep.paragraph("A column marked (training net) is the all-channel distance of the network whose features "
                      "were optimised: reported for reference, not independent evidence.", css_class="note")
    summary = summary_table(result.results)
    names = list(result.info["image_names"])[: cfg.report_images]
    rep.heading("Loss curves")
    rep.figure(curves_figure(result.curves), caption="scaled objective J (1 at the start) per selection")
    for layers in dict.fromkeys(result.results.loc[result.results["method"] != "init", "layers"]):
        rep.heading(f"Layers {layers}")
        strip = grid(result.out, layers, names)
        rep.image(strip, caption="left to right: " + ", ".join(t for t, _ in GRID) + f" (first {len(names)} images; "
                  "all PNGs are under recon/)", width=min(1100, 2 * strip.shape[1]))
        rep.table(summary[summary["layers"].isin([layers, ""])], caption="mean over images (random: over seeds "
                  "too); zero_gradient = images the selection could not move", float_format="{:.4f}")
        rep.table(result.paired[result.paired["layers"] == layers],
                  caption="paired per-image differences, method − reference, bootstrap 95 % CI; wins = share of "
                  "images where the method is better (ties half)", float_format="{:.4f}")
    rep.heading("Wall time (s)")
    rep.table(pd.DataFrame([result.info["timing_s"]]).T.reset_index().set_axis(["run", "seconds"], axis=1),
              float_format="{:.1f}", max_rows=100)
    rep.provenance(meta)
    return rep


def write_outputs(result: InvertResult) -> None:
    """The tables, the manifest and report.html of a finished run, into `result.out`."""
    if result.config is None:
        raise InputError("this InvertResult carries no config; write the result of invert_experiment.run_invert_study.")
    out = result.out
    write_table(out / "results.csv", result.results)
    write_table(out / "summary.csv", summary_table(result.results))
    write_table(out / "paired.csv", result.paired)
    write_table(out / "curves.csv", result.curves)
    meta = provenance(kind="invert", **result.info)
    write_json(out / "manifest.json", meta)
    build_report(result, result.config, meta).write(out / "report.html")


def run_invert(cfg: InvertConfig, out: str | os.PathLike[str], **kwargs: Any) -> InvertResult:
    """`psychofeat invert` whole: `invert_experiment.run_invert_study` (same arguments), then `write_outputs`."""
    result = invert_experiment.run_invert_study(cfg, out, **kwargs)
    write_outputs(result)
    return result
