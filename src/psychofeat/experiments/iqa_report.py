"""The outputs of `psychofeat iqa` / `psychofeat iqa-claim`: results.json, per_image.csv, the claim's files,
manifest.json and the self-contained HTML report.

This module imports the study (`psychofeat.experiments.iqa`) and owns writing its results and its report; the
study never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from psychofeat.experiments.iqa import BASELINES, FORMAT, SELECTED, IqaResult, results_table  # noqa: E402
from psychofeat.experiments.iqa_claim import ClaimResult, claim_json  # noqa: E402
from psychofeat.report import HtmlReport  # noqa: E402

LABELS = {"psnr": "PSNR", "ssim": "SSIM", "all": "all channels", "top": "top-k (PE)", "bottom": "bottom-k (PE)"}
COLORS = {"psnr": "#7f7f7f", "ssim": "#555555", "all": "#1f77b4", "top": "#d62728", "bottom": "#2ca02c",
          "random": "#9467bd"}


def fig_agreement(results: Mapping[str, Any]) -> plt.Figure:
    """SRCC with 95% bootstrap CIs per metric; random-k as one dot per seed plus mean ± sd."""
    m = results["metrics"]
    names = [*BASELINES, *SELECTED]
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    for i, n in enumerate(names):
        r = m[n]
        ax.errorbar(i, r["srcc"], yerr=[[r["srcc"] - r["srcc_lo"]], [r["srcc_hi"] - r["srcc"]]], fmt="o",
                    color=COLORS[n], capsize=4)
    seeds = np.array([s["srcc"] for s in m["random"]["seeds"].values()])
    x = len(names)
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, seeds.size)
    ax.scatter(x + jitter, seeds, s=10, color=COLORS["random"], alpha=0.5, label="random-k, one dot per seed")
    ax.errorbar(x + 0.3, seeds.mean(), yerr=seeds.std(ddof=1) if seeds.size > 1 else 0, fmt="s",
                color=COLORS["random"], capsize=4, label="random-k mean ± sd")
    ax.set_xticks(range(len(names) + 1), [LABELS[n] for n in names] + ["random-k"], rotation=20, ha="right")
    ax.set_ylabel("SRCC with human scores")
    ax.set_title(f"Agreement on {results['dataset']['name']} (n = {results['dataset']['n_pairs']}), 95% bootstrap CIs")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def fig_scatter(per_image: pd.DataFrame, score_type: str) -> plt.Figure:
    """Metric value vs human score for the baselines and the three selections, coloured by distortion."""
    cols = [("psnr_db", "PSNR (dB)"), ("ssim", "SSIM"), ("all", "all channels"), ("top", "top-k"),
            ("bottom", "bottom-k"), ("random_seed0", "random-k (seed 0)")]
    cols = [c for c in cols if c[0] in per_image.columns]
    fig, axes = plt.subplots(2, 3, figsize=(10.5, 6.2))
    has_kind = "distortion" in per_image
    dist = per_image["distortion"].fillna("").astype(str) if has_kind else pd.Series([""] * len(per_image))
    kinds = sorted(set(dist))
    cmap = plt.get_cmap("tab10")
    for ax, (col, label) in zip(axes.ravel(), cols):
        for j, kind in enumerate(kinds):
            sel = (dist == kind).to_numpy()
            ax.scatter(per_image.loc[sel, col], per_image.loc[sel, "human_score"], s=12, color=cmap(j % 10),
                       label=kind or "pairs", alpha=0.8)
        values = per_image[col].to_numpy(dtype=float)
        if col not in ("psnr_db", "ssim") and np.all(values > 0):
            ax.set_xscale("log")  # deep distances span decades
        ax.set_xlabel(label)
        ax.set_ylabel(score_type.upper())
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(cols):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig_pe_scatter(channels: pd.DataFrame, layers: pd.DataFrame) -> plt.Figure:
    """Per layer: PE vs the channel's single-channel SRCC (unresponsive channels in grey, top-k outlined)."""
    names = list(layers["layer"])
    ncol = min(4, len(names))
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.1 * ncol, 2.7 * nrow), squeeze=False)
    for ax, (_, row) in zip(axes.ravel(), layers.iterrows()):
        d = channels[channels.layer == row["layer"]]
        live = ~d["unresponsive"].to_numpy(bool)
        ax.scatter(d.loc[~live, "pe"], d.loc[~live, "srcc"], s=5, color="#bbbbbb", label="unresponsive")
        ax.scatter(d.loc[live, "pe"], d.loc[live, "srcc"], s=5, color="#1f77b4", alpha=0.6, label="responsive")
        top = d["in_top"].to_numpy(bool)
        ax.scatter(d.loc[top, "pe"], d.loc[top, "srcc"], s=12, facecolors="none", edgecolors="#d62728",
                   linewidths=0.5, label="top-k")
        ax.set_title(f"{row['layer']}: ρ = {row['rho']:.2f}, p = {row['p_value']:.2g}", fontsize=9)
        ax.set_xlabel("PE", fontsize=8)
        ax.set_ylabel("single-channel SRCC", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return fig


def fig_curve(summary: pd.DataFrame, all_srcc: float) -> plt.Figure:
    """Agreement vs k: top, bottom, random mean with its 5–95% band (and min–max) over seeds; all channels."""
    f = summary["fraction"].to_numpy()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.fill_between(f, summary["random_min"], summary["random_max"], color=COLORS["random"], alpha=0.12,
                    label="random-k min–max")
    ax.fill_between(f, summary["random_q05"], summary["random_q95"], color=COLORS["random"], alpha=0.25,
                    label="random-k 5–95%")
    ax.plot(f, summary["random_mean"], "-", color=COLORS["random"], label="random-k mean")
    ax.plot(f, summary["top"], "o-", color=COLORS["top"], label="top-k (PE)")
    ax.plot(f, summary["bottom"], "s-", color=COLORS["bottom"], label="bottom-k (PE)")
    ax.axhline(all_srcc, color=COLORS["all"], ls="--", lw=1, label="all channels")
    ax.set_xscale("log")
    ax.set_xticks(f, [f"{v:g}" for v in f])
    ax.minorticks_off()
    ax.set_xlabel("k (fraction of each layer's channels)")
    ax.set_ylabel("SRCC with human scores")
    ax.set_title(f"Agreement vs k ({int(summary['n_seeds'].iloc[0])} random seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def fig_layer_breakdown(table: pd.DataFrame) -> plt.Figure:
    """SRCC of each layer's own distance: top, bottom, all and random mean ± sd."""
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(table)), 3.6))
    ax.fill_between(x, table["srcc_random_mean"] - table["srcc_random_sd"],
                    table["srcc_random_mean"] + table["srcc_random_sd"], color=COLORS["random"], alpha=0.25,
                    label="random-k mean ± sd")
    for n in SELECTED:
        ax.plot(x, table[f"srcc_{n}"], "o-", color=COLORS[n], label=LABELS[n], ms=4)
    ax.set_xticks(x, table["layer"], rotation=45, ha="right")
    ax.set_ylabel("SRCC (one layer)")
    ax.set_title("Agreement of each layer alone")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _fmt_ci(v: float, lo: float, hi: float) -> str:
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _summary_table(results: Mapping[str, Any]) -> pd.DataFrame:
    t = results_table(results)
    rows = []
    for _, r in t.iterrows():
        if str(r["metric"]).startswith("random"):
            rows.append({"metric": r["metric"], **{k.upper(): f"{r[k]:.3f} ± {r[f'{k}_sd']:.3f} (sd over seeds)"
                                                   for k in ("srcc", "krcc", "plcc", "rmse")}})
        else:
            cis = {k.upper(): _fmt_ci(r[k], r[f"{k}_lo"], r[f"{k}_hi"]) for k in ("srcc", "krcc", "plcc", "rmse")}
            rows.append({"metric": LABELS.get(r["metric"], r["metric"]), **cis})
    return pd.DataFrame(rows)


def _claim_section(rep: HtmlReport, claim: ClaimResult, results: Mapping[str, Any]) -> None:
    rep.heading("The claim, channel by channel")
    rep.paragraph(
        "Each channel's single-channel distance (mean squared difference of its activations, divided by the "
        "reference's mean squared activation) is correlated with the human scores (SRCC, positive = agreement). "
        "Per layer, ρ is the Spearman correlation across channels between PE and that agreement; p is a two-sided "
        f"permutation p-value ({claim.n_permutations} permutations, seed {claim.perm_seed}); p_holm adjusts for the "
        "number of layers. The claim predicts ρ > 0. rho_responsive repeats the test without the unresponsive "
        "channels, whose PE = 0 is assigned rather than measured."
    )
    rep.table(claim.layers, caption="PE vs single-channel agreement, per layer", float_format="{:.3g}")
    pooled = pd.DataFrame([{"channels": k, **v} for k, v in claim.pooled.items()])
    rep.table(pooled, caption="All layers at once: mean of the per-layer ρ, permutation p-value (the null permutes "
              "within each layer)", float_format="{:.3g}")
    rep.figure(fig_pe_scatter(claim.channels, claim.layers),
               "PE vs single-channel SRCC for every channel of each layer")
    rep.heading("Agreement vs k")
    rep.figure(fig_curve(claim.curve_summary, float(results["metrics"]["all"]["srcc"])),
               "SRCC of the selected-channel metric against the fraction k of each layer's channels")
    rep.table(claim.curve_summary, caption="SRCC vs k (random-k over seeds)", float_format="{:.3f}")
    rep.heading("Each layer alone")
    rep.figure(fig_layer_breakdown(claim.layer_breakdown), "SRCC of each layer's distance at the headline k")
    rep.table(claim.layer_breakdown, caption="SRCC per layer at the headline k", float_format="{:.3f}")


def build_report(result: IqaResult, manifest: Mapping[str, Any]) -> HtmlReport:
    """The whole report: setup, agreement table and figures, (claim), caveats, provenance."""
    res = result.results
    ds = res["dataset"]
    rep = HtmlReport(f"psychofeat {'iqa-claim' if result.claim is not None else 'iqa'}: {ds['name']}")
    rep.paragraph(
        f"{ds['n_pairs']} pairs of {ds['n_references']} reference images, human score {ds['score_type'].upper()}. "
        f"Network {res['model']} ({res['weights'].get('source')}), {res['mode']} mode, layers "
        f"{', '.join(res['layers'])} (weights 1/#layers). Channels selected by PE from "
        f"{result.info['selection_source'].get('path')} (from gratings alone): top-k, bottom-k and random-k with "
        f"k = {res['fraction']:g} of each layer ({res['n_seeds']} random seeds), and all channels."
    )
    rep.heading("Agreement with human scores")
    rep.table(_summary_table(res), caption="value [95% percentile-bootstrap CI over images, "
              f"{res['statistics']['n_boot']} resamples]; random-k: mean ± sd over seeds")
    rep.figure(fig_agreement(res), "SRCC with 95% CIs; random-k: every seed and mean ± sd")
    diff = pd.DataFrame([{"comparison": k, **v} for k, v in res["differences"].items()])
    rep.table(diff, caption="SRCC differences with paired bootstrap 95% CIs (same resamples for both metrics; "
              "'random' = mean over seeds)", float_format="{:.3f}")
    rep.figure(fig_scatter(result.per_image, ds["score_type"]), "metric value vs human score per pair")
    if result.claim is not None:
        _claim_section(rep, result.claim, res)
    rep.heading("Caveats")
    if ds["n_references"] < 10:
        rep.paragraph(
            f"Only {ds['n_references']} reference images: differences between metrics of about 0.01 in SRCC are "
            "within what other content would change; treat this set as a check, not a benchmark.", css_class="note")
    rep.paragraph(
        "Bootstrap CIs resample images as if independent; images of one reference are not, so with few references "
        "the CIs understate the uncertainty about new content. PLCC/RMSE follow a 4-parameter logistic fit. "
        "Nothing was fitted to the human scores: the selection comes from the probing stimuli alone.",
        css_class="note",
    )
    rep.provenance(dict(manifest))
    return rep


def write_outputs(result: IqaResult, out: Path, report: bool = True) -> dict[str, Any]:
    """results.json, per_image.csv (+ claim files), manifest.json and report.html, each written atomically."""
    from psychofeat.io import provenance, write_json, write_npz, write_table

    out = Path(out)
    outputs = ["results.json", "per_image.csv"]
    write_json(out / "results.json", result.results)
    write_table(out / "per_image.csv", result.per_image)
    if result.claim is not None:
        c = result.claim
        write_table(out / "claim.csv", c.layers)
        write_table(out / "claim_channels.csv", c.channels)
        write_table(out / "claim_curve.csv", c.curve)
        write_table(out / "claim_curve_summary.csv", c.curve_summary)
        write_table(out / "claim_layer_breakdown.csv", c.layer_breakdown)
        write_json(out / "claim.json", {"format": FORMAT, **claim_json(c)})
        write_npz(out / "channel_distances.npz", **result.channel_distances, human_score=result.dataset.scores)
        outputs += ["claim.csv", "claim_channels.csv", "claim_curve.csv", "claim_curve_summary.csv",
                    "claim_layer_breakdown.csv", "claim.json", "channel_distances.npz"]
    outputs += ["manifest.json"] + (["report.html"] if report else [])
    ds = result.dataset
    manifest = provenance(
        experiment="iqa-claim" if result.config.claim else "iqa",
        dataset={"name": ds.name, "root": str(ds.root) if ds.root else None, "n_pairs": len(ds),
                 "n_references": len(ds.references()), "score_type": ds.score_type},
        model=result.results["model"], weights=result.results["weights"], layers=result.results["layers"],
        **result.info, outputs=outputs,
    )
    write_json(out / "manifest.json", manifest)
    if report:
        build_report(result, manifest).write(out / "report.html")
    return manifest
