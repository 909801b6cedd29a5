"""The outputs of `psychofeat analyze`: scores.csv, selection.json, curves.npz, manifest.json and report.html.

This module imports the study (`psychofeat.analysis`) and owns writing its results and its report; the study
never imports it.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from torch import nn  # noqa: E402

from psychofeat.analysis import AnalysisResult, write_analysis_files  # noqa: E402
from psychofeat.report import HtmlReport  # noqa: E402
from psychofeat.stimuli import ProbeProtocol, linear_grating, radial_grating  # noqa: E402


def layer_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-layer medians and quartiles of the scores (the numbers quoted in notes and papers)."""
    g = scores.groupby("layer", sort=False)
    return pd.DataFrame(
        {
            "channels": g.size(),
            "pe_median": g["pe"].median(),
            "pe_q25": g["pe"].quantile(0.25),
            "pe_q75": g["pe"].quantile(0.75),
            "mu1_median": g["mu1"].median(),
            "mu2_median": g["mu2"].median(),
            "pref_freq_median_cpd": g["pref_freq_cpd"].median(),
            "unresponsive_frac": g["unresponsive"].mean(),
        }
    ).reset_index()


def fig_pe_distribution(scores: pd.DataFrame) -> plt.Figure:
    layers = list(dict.fromkeys(scores["layer"]))
    data = [scores.loc[scores.layer == k, "pe"].to_numpy() for k in layers]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(layers)), 3.6))
    ax.violinplot(data, showmedians=True, widths=0.8)
    ax.set_xticks(np.arange(1, len(layers) + 1), layers, rotation=45, ha="right")
    ax.set_ylabel("Perceptual Efficacy (PE)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("PE distribution per layer")
    ax.grid(axis="y", alpha=0.3)
    return fig


def fig_mu_scatter(scores: pd.DataFrame) -> plt.Figure:
    layers = list(dict.fromkeys(scores["layer"]))
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    for i, k in enumerate(layers):
        d = scores[(scores.layer == k) & ~scores.unresponsive]
        ax.scatter(d["mu1"], d["mu2"], s=5, alpha=0.5, color=cmap(i / max(1, len(layers) - 1)), label=k)
    ax.set_xlabel("mu1 (CSF-weighted frequency sensitivity)")
    ax.set_ylabel("mu2 (orientation selectivity)")
    ax.set_title("mu1 vs mu2 (responsive channels)")
    ax.legend(markerscale=3, fontsize=7, ncol=2, loc="best")
    return fig


def _colour_channels(scores: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Channels of `layer` that respond to today's gratings and to the colour sweeps (colour_index defined)."""
    d = scores[(scores.layer == layer) & ~scores.unresponsive]
    return d[~d["colour_unresponsive"].astype(bool) & np.isfinite(d["colour_index"])]


def fig_colour_index(scores: pd.DataFrame) -> plt.Figure:
    """How colour tuning spreads over depth: colour_index per layer, with the median red-green and yellow-violet
    shares marked."""
    layers = list(dict.fromkeys(scores["layer"]))
    sets = [_colour_channels(scores, k) for k in layers]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(layers)), 3.6))
    x = np.arange(1, len(layers) + 1)
    ax.boxplot([d["colour_index"].to_numpy() for d in sets], positions=x, widths=0.6, showfliers=False)
    ax.plot(x, [d["share_rg"].median() for d in sets], "o", color="tab:red", ms=4, label="median share red-green")
    ax.plot(x, [d["share_yv"].median() for d in sets], "s", color="tab:purple", ms=4,
            label="median share yellow-violet")
    ax.set_xticks(x, layers, rotation=45, ha="right")
    ax.set_ylabel("colour index (1 − achromatic share)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Colour tuning per layer (equal cone contrast)")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(axis="y", alpha=0.3)
    return fig


def fig_colour_vs_pe(scores: pd.DataFrame) -> plt.Figure:
    """colour_index against today's PE, one panel per layer, with Spearman's rho in each title."""
    layers = list(dict.fromkeys(scores["layer"]))
    ncol = min(5, len(layers))
    nrow = int(np.ceil(len(layers) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.3 * ncol, 2.1 * nrow), squeeze=False, sharex=True, sharey=True)
    for ax, k in zip(axes.ravel(), layers, strict=False):
        d = _colour_channels(scores, k)
        ax.scatter(d["pe"], d["colour_index"], s=4, alpha=0.5)
        rho = float(d["pe"].corr(d["colour_index"], method="spearman")) if len(d) >= 3 else float("nan")
        ax.set_title(f"{k}  ρ = {rho:+.2f}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(layers):]:
        ax.axis("off")
    fig.supxlabel("PE (today's, achromatic)", fontsize=9)
    fig.supylabel("colour index", fontsize=9)
    fig.tight_layout()
    return fig


def fig_tuning_curves(result: AnalysisResult, n: int = 3) -> plt.Figure:
    """Frequency and orientation tuning of the n top- and bottom-PE channels of each layer."""
    s = result.scores
    layers = list(dict.fromkeys(s["layer"]))
    freqs = result.curves["frequencies_cpd"]
    thetas = result.curves["orientations_deg"]
    fig, axes = plt.subplots(len(layers), 2, figsize=(9, 1.9 * len(layers)), squeeze=False)
    for row, k in enumerate(layers):
        d = s[s.layer == k]
        live = d[~d.unresponsive]
        top = live.nlargest(n, "pe")
        bottom = live.nsmallest(n, "pe")
        fr = result.curves[f"{k}/freq_response"]
        orr = result.curves[f"{k}/orient_response"]
        for group, style in ((top, "-"), (bottom, "--")):
            for _, r in group.iterrows():
                c = int(r.channel)
                scale = np.max(np.abs(fr[c])) or 1.0
                axes[row, 0].semilogx(freqs, fr[c] / scale, style, lw=1.1, label=f"{c} (PE {r.pe:.2f})")
                oscale = np.max(np.abs(orr[c])) or 1.0
                axes[row, 1].plot(thetas, orr[c] / oscale, style, lw=1.1)
        axes[row, 0].set_ylabel(k, fontsize=8)
        axes[row, 0].legend(fontsize=6, ncol=2, loc="best")
        for ax in axes[row]:
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    axes[0, 0].set_title("frequency tuning R(f) / max|R| (solid: top PE, dashed: bottom PE)", fontsize=8)
    axes[0, 1].set_title("orientation tuning at f* (normalised)", fontsize=8)
    axes[-1, 0].set_xlabel("spatial frequency (cpd)")
    axes[-1, 1].set_xlabel("orientation (deg)")
    fig.tight_layout()
    return fig


def fig_csf(result: AnalysisResult) -> plt.Figure:
    g = result.curves["mid_frequencies_cpd"]
    w = result.curves["csf_at_mid"]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.loglog(g, w, "o-")
    ax.set_xlabel("spatial frequency (cpd)")
    ax.set_ylabel("sensitivity")
    ax.set_title("CSF weighting of mu1", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    return fig


def stimulus_examples(protocol: ProbeProtocol) -> list[tuple[np.ndarray, str]]:
    geo = protocol.geometry
    f = protocol.frequencies
    out = []
    for fi in (f[0], f[len(f) // 2], f[-4]):
        img = radial_grating(geo, fi, 0.0, protocol.contrast, protocol.size, protocol.mean)[0, 0].numpy()
        out.append((img, f"radial {fi:.2f} cpd"))
    for th in (-45.0, 0.0, 67.5):
        img = linear_grating(
            geo, 4.0 if 4.0 < geo.nyquist_cpd else f[0], th, 0.0, protocol.contrast, protocol.size, protocol.mean
        )[0, 0].numpy()
        out.append((img, f"linear θ={th:g}°"))
    return out


def first_conv(net: nn.Module) -> nn.Conv2d | None:
    for m in net.modules():
        if isinstance(m, nn.Conv2d) and m.in_channels == 3:
            return m
    return None


def fig_first_layer_filters(result: AnalysisResult, net: nn.Module | None, n: int = 8) -> plt.Figure | None:
    """RGB filters of the first convolution for the top/bottom-PE channels of the first analysed layer."""
    if net is None:
        return None
    conv = first_conv(net)
    if conv is None:
        return None
    s = result.scores
    k = s["layer"].iloc[0]
    d = s[s.layer == k]
    if len(d) != conv.out_channels:
        return None
    w = conv.weight.detach().float().cpu().numpy()  # O×3×kh×kw
    if result.info.get("preprocessing", {}).get("channel_order") == "BGR":
        w = w[:, ::-1]
    live = d[~d.unresponsive]
    groups = (("top", live.nlargest(n, "pe")), ("bottom", live.nsmallest(n, "pe")))
    fig, axes = plt.subplots(2, n, figsize=(1.1 * n, 2.6))
    for row, (name, g) in enumerate(groups):
        for j in range(n):
            ax = axes[row, j]
            ax.axis("off")
            if j >= len(g):
                continue
            c = int(g.iloc[j].channel)
            f = w[c].transpose(1, 2, 0)
            f = (f - f.min()) / (np.ptp(f) or 1.0)
            ax.imshow(f, interpolation="nearest")
            ax.set_title(f"{name} {c}\nPE {g.iloc[j].pe:.2f}", fontsize=6)
    fig.suptitle(f"first-layer filters of {k}'s top and bottom channels (RGB, min-max scaled)", fontsize=8)
    return fig


def build_report(result: AnalysisResult, manifest: dict[str, Any], net: nn.Module | None = None) -> HtmlReport:
    info = result.info
    p = info["config"]["protocol"]
    rep = HtmlReport(f"psychofeat analysis: {info['model']} ({info['weights']['source']} weights)")
    rep.paragraph(
        f"{len(result.scores)} channels in {len(info['layers'])} layers probed with {info['n_stimuli']} stimuli "
        f"({p['size']}×{p['size']} px at {p['ppd']:g} px/deg, contrast {p['contrast']:g}, {p['n_freq']} frequencies "
        f"{p['f_min']:g}–{p['frequencies_cpd'][-1]:.3g} cpd, {p['n_orient']} orientations, {p['n_phase']} phases). "
        f"CSF: {info['config']['csf']} at {info['config']['luminance']:g} cd/m², {p['area_deg2']:.3g} deg². "
        f"PE = (mu1 / max mu1) × mu2 within each layer ({info['config']['combination']}). "
        f"Protocol: {info.get('protocol_preset', 'custom')}, {p.get('n_orient_freq', '?')} orientation-sweep "
        f"frequencies, compute dtype {info.get('dtype', 'float32')}. "
        f"Time: {info['timing_s']['total']:.1f} s on {info['device']}."
    )
    rep.heading("Per-layer summary")
    rep.table(layer_summary(result.scores), float_format="{:.3f}")
    rep.heading("Perceptual Efficacy")
    rep.figure(fig_pe_distribution(result.scores), "Distribution of PE across the channels of each layer.")
    rep.figure(fig_mu_scatter(result.scores), "mu1 vs mu2 of every responsive channel, coloured by depth.")
    rep.heading("Tuning curves")
    rep.figure(
        fig_tuning_curves(result),
        "Frequency (radial gratings) and orientation tuning of the three top- and bottom-PE channels per layer.",
    )
    rep.heading("Stimuli and CSF")
    rep.gallery(stimulus_examples(ProbeProtocol.from_dict(p)), width=160)
    rep.figure(fig_csf(result), "CSF values at the mid frequencies g_i used to weight mu1.")
    if "colour_index" in result.scores.columns:
        rep.heading("Colour (analyze --colour)")
        rep.paragraph("Responses to radial gratings along the achromatic, red-green and yellow-violet directions "
                      "of castleCSF's mechanisms at the same RMS cone contrast (docs/colour.md). colour_index is the "
                      "share of a channel's response energy along the two isoluminant directions; pe_colour in "
                      "scores.csv is the colour-aware PE. The selection still ranks by today's PE.")
        rep.figure(fig_colour_index(result.scores), "Colour index per layer (responsive channels).")
        rep.figure(fig_colour_vs_pe(result.scores), "Colour index against today's PE, per layer.")
    fig = fig_first_layer_filters(result, net)
    if fig is not None:
        rep.heading("First-layer filters")
        rep.figure(fig, "Filters of the first convolution for the top/bottom PE channels of the first analysed layer.")
    rep.provenance(manifest)
    return rep


def write_analysis(result: AnalysisResult, out: Any, report: bool = True, net: Any = None) -> dict[str, Any]:
    """Write scores.csv, selection.json, curves.npz, manifest.json and report.html into `out` (atomically)."""
    from pathlib import Path

    manifest = write_analysis_files(result, out, with_report=report)
    if report:
        build_report(result, manifest, net).write(Path(out) / "report.html")
    return manifest
