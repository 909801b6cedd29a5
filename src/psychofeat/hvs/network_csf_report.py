"""``psychofeat hvs network-csf``: runs the study (`psychofeat.hvs.network_csf`) and writes its tables, manifest
and the self-contained HTML report.

This module imports the study and owns writing its results and its report; the study never imports it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from psychofeat.backbones.base import Backbone
from psychofeat.hvs.network_csf import NetworkCSFConfig, human_csf_curve, network_thresholds, summarize


def run_network_csf(
    out: str | Path,
    model: str | Backbone = "vgg16",
    weights: Sequence[str | None] = (None, "random"),
    layers: Sequence[str] | None = None,
    config: NetworkCSFConfig | None = None,
    overwrite: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Network CSF of `layers` of `model` for each weights source; writes ``network_csf.csv`` (summary),
    ``network_csf_curves.csv`` (thresholds per layer and frequency), ``manifest.json`` and ``report.html``."""
    from psychofeat.backbones import load_backbone
    from psychofeat.io import provenance, run_folder, write_json, write_table

    config = config or NetworkCSFConfig()
    human_csf_curve(config)  # fail early on a bad CSF name or a sweep outside the CSF's domain
    backbones = [load_backbone(model, w, device=device) for w in weights]  # fail before creating the folder
    model_name = model if isinstance(model, str) else model.name
    with run_folder(out, overwrite) as run:  # built beside `out`, swapped in whole at the end
        out_dir = run.path
        curves, timing, wlabels, winfo = [], {}, [], []
        for w, bb in zip(weights, backbones, strict=True):
            label = _weights_label(w, bb)
            wlabels.append(label)
            winfo.append(bb.weights_info.to_dict())
            names = list(layers) if layers else list(bb.default_layers)
            t0 = time.perf_counter()
            df = network_thresholds(bb, names, config, device, progress, desc=f"network CSF {model_name} {label}")
            timing[label] = time.perf_counter() - t0
            df.insert(0, "weights", label)
            curves.append(df)
            del bb
        curves_df = pd.concat(curves, ignore_index=True)
        table = summarize(curves_df, config)
        write_table(out_dir / "network_csf_curves.csv", curves_df)
        write_table(out_dir / "network_csf.csv", table)
        info = provenance(command_name="hvs network-csf", model=model_name, weights=wlabels, weights_info=winfo,
                          layers=list(curves_df["layer"].unique()), config=config.to_dict(),
                          n_images={k: int(g["n_images"].iloc[0]) for k, g in curves_df.groupby("weights")},
                          timing_s=timing, device=device)
        write_json(out_dir / "manifest.json", info)
        build_report(table, curves_df, config, info).write(out_dir / "report.html")
    return table


def _weights_label(w: str | None, bb: Backbone) -> str:
    if w is None:
        return str(bb.weights_info.source or "pretrained")
    return str(w)



def build_report(table: pd.DataFrame, curves: pd.DataFrame, config: NetworkCSFConfig, info: dict[str, Any]) -> Any:
    """Self-contained HTML: method, comparison table, CSF curves per layer vs human, summary per layer."""
    from psychofeat.report import HtmlReport

    p = config.protocol
    rep = HtmlReport(f"Network contrast sensitivity: {info['model']} vs human ({config.human_csf})")
    rep.paragraph(
        f"Threshold of layer k at frequency f: the lowest Michelson contrast c with D_k(f, c) = "
        f"sqrt(mean over phases of ||a_k(grating) - a_k(gray)||^2) / ||a_k(gray)|| >= {config.criterion:g}, "
        f"a_k = the layer's {'whole feature map' if config.response == 'map' else 'channel means'}; found by "
        f"bisection on log10 contrast in [{config.contrast_range[0]:g}, {config.contrast_range[1]:g}] "
        f"({config.n_steps} steps + log-log interpolation). Stimuli: {p.freq_stimulus} gratings, {p.size} px, "
        f"{p.ppd:g} ppd, mean {p.mean:g}, {p.n_phase} phases, {p.n_freq} frequencies {p.f_min:g}-"
        f"{p.frequencies[-1]:.3g} cpd. Human CSF: {config.human_csf} at {config.luminance:g} cd/m2 and "
        f"{config.area_deg2:.3g} deg2 (the stimulus area). Sensitivity = 1/threshold; the criterion sets only "
        "the vertical position, so curves are compared by shape: peak, half-maximum bandwidth (octaves), "
        "Pearson r of log10 S and RMSE of log10 S after the best vertical shift."
    )
    rep.heading("Comparison with the human CSF")
    shown = table.copy()
    for c in ("peak_cpd", "peak_ratio_oct", "half_low_cpd", "half_high_cpd", "bandwidth_oct", "range_log10",
              "pearson_r", "rmse_shifted", "shift", "median_slope"):
        shown[c] = shown[c].astype(float).round(3)
    rep.table(shown, caption="network_csf.csv (bandwidth_open: side(s) where the curve stays above half its "
              "peak to the end of the sweep; bandwidth is then a lower bound)")
    rep.figure(_curves_figure(curves, config), caption="Network CSF per layer (each curve shifted vertically by its "
               "least-squares shift onto the human CSF) vs the human CSF (black). Gaps: not detected at "
               f"contrast {config.contrast_range[1]:g}.")
    rep.figure(_summary_figure(table), caption="Per layer: Pearson r of log10 sensitivities, peak frequency and "
               "half-maximum bandwidth; dashed: the human CSF's value.")
    rep.provenance(info)
    return rep


def _curves_figure(curves: pd.DataFrame, config: NetworkCSFConfig) -> Any:
    import matplotlib.pyplot as plt

    freqs = config.protocol.frequencies
    human = np.log10(human_csf_curve(config))
    layers = list(dict.fromkeys(curves["layer"]))
    weights = list(dict.fromkeys(curves["weights"]))
    ncol = min(4, len(layers))
    nrow = math.ceil(len(layers) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), sharex=True, sharey=True, squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, layer in zip(axes.ravel(), layers, strict=False):
        ax.plot(freqs, human, "k-", lw=2, label=f"human ({config.human_csf})")
        for j, w in enumerate(weights):
            g = curves[(curves["layer"] == layer) & (curves["weights"] == w)].set_index("freq_cpd").loc[freqs]
            s = g["sensitivity"].to_numpy()
            ok = s > 0
            ls = np.full(len(s), np.nan)
            ls[ok] = np.log10(s[ok])
            if ok.any():
                ls = ls - np.nanmean(ls[ok] - human[ok])
            ax.plot(freqs, ls, styles[j % len(styles)], color=f"C{j}", marker=".", ms=3, label=w)
        ax.set_xscale("log")
        ax.set_title(layer, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(layers):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("cpd")
    for ax in axes[:, 0]:
        ax.set_ylabel("log10 S (shifted)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _summary_figure(table: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    human = table[table["weights"] == "human"].iloc[0]
    net = table[table["weights"] != "human"]
    layers = list(dict.fromkeys(net["layer"]))
    x = np.arange(len(layers))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for j, (w, g) in enumerate(net.groupby("weights", sort=False)):
        g = g.set_index("layer").loc[layers]
        axes[0].plot(x, g["pearson_r"], "o-", color=f"C{j}", label=w)
        axes[1].plot(x, g["peak_cpd"], "o-", color=f"C{j}", label=w)
        axes[2].plot(x, g["bandwidth_oct"], "o-", color=f"C{j}", label=w)
    axes[1].set_yscale("log")
    for ax, col, lab in zip(axes, ("pearson_r", "peak_cpd", "bandwidth_oct"),
                            ("Pearson r (log10 S)", "peak frequency [cpd]", "bandwidth [octaves]"), strict=True):
        ax.axhline(float(human[col]), color="k", ls="--", lw=1)
        ax.set_xticks(x, layers, rotation=60, fontsize=7)
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["build_report", "run_network_csf"]
