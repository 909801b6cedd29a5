"""report.html of ``psychofeat hvs battery``: model-vs-human curves per test (log axes) and one summary table.

Imports the study (`psychofeat.hvs.battery`); the study never imports this module. The CLI passes
`write_report` to `run_battery` so the report is part of the atomic run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from psychofeat.hvs.battery import BatteryResult
from psychofeat.hvs.battery_stimuli import DETECTION_TESTS, MASKING_TESTS, MATCHING_TEST

TITLES = {
    "detection_frequency": "Detection vs spatial frequency (ModelFest)",
    "detection_luminance": "Detection vs luminance (hdrvdp_csf)",
    "detection_area": "Detection vs area (rovamo1993)",
    "masking_coherent": "Phase-coherent masking (Foley 1994)",
    "masking_incoherent": "Phase-incoherent masking (Gabor on noise)",
    "matching": "Contrast matching (Georgeson & Sullivan 1975)",
}
#: the score each test is ranked by in the summary (CVPR 2025: Spearman for detection/masking, RMSE for matching)
MAIN_SCORE = {**{t: "spearman" for t in (*DETECTION_TESTS, *MASKING_TESTS)}, MATCHING_TEST: "rmse"}
SHOWN_GROUPS = ("all", "pe-all", "pe-top", "pe-bottom", "random-weights", "classic")


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Metric × test: the main score (and masking slope, detection/masking threshold RMSE); random-k selections as
    mean ± s.d. over seeds; the human reference rows last."""
    tests = [t for t in TITLES if t in set(results["test"])]
    rows: list[dict[str, Any]] = []

    def fmt(v: float) -> str:
        return "" if not np.isfinite(v) else f"{v:.3f}"

    fixed = results[(results["group"] != "pe-random") & (results["group"] != "reference")]
    for metric, g in fixed.groupby("metric", sort=False):
        g = g.set_index("test")
        rec: dict[str, Any] = {"metric": metric, "group": g["group"].iloc[0]}
        for t in tests:
            rec.update(_cells(t, g.loc[t] if t in g.index else None, fmt))
        rows.append(rec)
    rnd = results[results["group"] == "pe-random"]
    for bank, g in rnd.groupby("bank", sort=False):
        n = g.groupby("test").size().max()
        rec = {"metric": f"{bank}/pe-random ({n} seeds, mean ± sd)", "group": "pe-random"}
        for t in tests:
            h = g[g["test"] == t]
            for col in _columns(t):
                v = h[col]
                rec[f"{t}:{col}"] = f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else fmt(float(v.mean()))
        rows.append(rec)
    ref = results[results["group"] == "reference"]
    for metric, g in ref.groupby("metric", sort=False):
        g = g.set_index("test")
        rec = {"metric": f"[{metric}]", "group": "reference"}
        for t in tests:
            rec.update(_cells(t, g.loc[t] if t in g.index else None, fmt))
        rows.append(rec)
    return pd.DataFrame.from_records(rows)


def _columns(test: str) -> list[str]:
    if test in MASKING_TESTS:
        return ["spearman", "rmse", "slope"]
    if test in DETECTION_TESTS:
        return ["spearman", "rmse"]
    return ["rmse"]


def _cells(test: str, row: pd.Series | None, fmt: Any) -> dict[str, str]:
    return {f"{test}:{c}": (fmt(float(row[c])) if row is not None else "") for c in _columns(test)}


# ------------------------------------------------------------------------------------------------ figures
def _shown(curves: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(curves.loc[curves["group"].isin(SHOWN_GROUPS), "metric"]))


def detection_figure(curves: pd.DataFrame, test: str) -> Any:
    import matplotlib.pyplot as plt

    c = curves[curves["test"] == test]
    metrics = _shown(c)
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    for m in metrics:
        g = c[c["metric"] == m]
        ax.scatter(g["human"], g["predicted"], s=14, label=m)
    lo = float(np.nanmin([c["human"].min(), c["predicted"].min()])) / 1.5
    hi = float(np.nanmax([c["human"].max(), c["predicted"].max()])) * 1.5
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="prediction = human")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="human threshold contrast",
           ylabel="predicted threshold contrast", title=TITLES[test])
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def masking_figure(curves: pd.DataFrame, test: str) -> Any:
    import matplotlib.pyplot as plt

    c = curves[curves["test"] == test]
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    for m in _shown(c):
        g = c[c["metric"] == m].sort_values("x")
        ax.plot(g["x"], g["predicted"], "-o", ms=3, lw=1.2, label=m)
    h = c.drop_duplicates("x").sort_values("x")
    ax.plot(h["x"], h["human"], "ks-", lw=2.2, ms=5, label="human")
    ax.set(xscale="log", yscale="log", xlabel="mask contrast" + (" (RMS)" if test == "masking_incoherent" else ""),
           ylabel="test threshold contrast", title=TITLES[test])
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def matching_figure(curves: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    c = curves[curves["test"] == MATCHING_TEST]
    metrics = _shown(c)
    cols = 3
    nrow = int(np.ceil(len(metrics) / cols)) or 1
    fig, axes = plt.subplots(nrow, cols, figsize=(4.2 * cols, 3.4 * nrow), squeeze=False, sharex=True, sharey=True)
    refs = sorted(c["reference"].unique())
    cmap = plt.get_cmap("viridis")
    for ax, m in zip(axes.ravel(), metrics, strict=False):
        g = c[c["metric"] == m]
        for i, r in enumerate(refs):
            h = g[g["reference"] == r].sort_values("x")
            col = cmap(i / max(1, len(refs) - 1))
            ax.plot(h["x"], h["human"], "o--", color=col, ms=3, lw=0.8)
            ax.plot(h["x"], h["predicted"], "-", color=col, lw=1.5, label=f"ref {r:.3g}")
        ax.set(xscale="log", yscale="log", title=m)
        ax.title.set_fontsize(8)
    for ax in axes[-1]:
        ax.set_xlabel("test frequency (cpd)")
    for ax in axes[:, 0]:
        ax.set_ylabel("matched contrast")
    spare = axes.ravel()[len(metrics):]
    for ax in spare:
        ax.axis("off")
    for ax in axes.ravel()[: len(metrics)]:
        ax.xaxis.set_tick_params(labelbottom=True)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    (spare[0] if len(spare) else axes[0, 0]).legend(handles, labels, fontsize=7, loc="center",
                                                    title="reference contrast at 5 cpd\nsolid: model, dashed: human",
                                                    title_fontsize=7)
    fig.suptitle(TITLES[MATCHING_TEST])
    fig.tight_layout()
    return fig


def pe_figure(pe_corr: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    d = pe_corr[(pe_corr["layer"] != "pooled (mean rho)")]
    scores = list(dict.fromkeys(d["score"]))
    measures = list(dict.fromkeys(d["measure"]))
    fig, axes = plt.subplots(1, len(measures), figsize=(5.0 * len(measures), 4.0), squeeze=False, sharey=True)
    for ax, meas in zip(axes[0], measures, strict=True):
        for s in scores:
            g = d[(d["measure"] == meas) & (d["score"] == s)]
            x = np.arange(len(g))
            sign = -1.0 if s.endswith("rmse") else 1.0  # oriented: > 0 = channels with higher `meas` agree better
            rho = sign * g["rho"].to_numpy()
            line = ax.plot(x, rho, "-o", ms=3, lw=1, label=s + (" (−rho)" if sign < 0 else ""))[0]
            sig = g["p_holm"].to_numpy() < 0.05
            ax.plot(x[sig], rho[sig], "*", ms=10, color=line.get_color())
            ax.set_xticks(x, g["layer"], rotation=60, fontsize=7)
        ax.axhline(0, color="k", lw=0.8)
        ax.set(title=f"{meas} vs each channel's agreement with humans, per layer",
               ylabel=f"Spearman across channels (> 0: higher {meas} agrees better)")
        ax.title.set_fontsize(9)
        ax.yaxis.label.set_fontsize(8)
    axes[0, 0].legend(fontsize=6, title="★ Holm-adjusted p < 0.05", title_fontsize=6)
    fig.tight_layout()
    return fig


def selection_figure(results: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    d = results[results["group"].isin(["pe-top", "pe-bottom", "pe-all", "pe-random"])]
    tests = [t for t in TITLES if t in set(d["test"])]
    fig, axes = plt.subplots(1, len(tests), figsize=(2.4 * len(tests), 3.4), squeeze=False)
    for ax, t in zip(axes[0], tests, strict=True):
        s = MAIN_SCORE[t]
        g = d[d["test"] == t]
        r = g[g["group"] == "pe-random"][s]
        ax.boxplot([r.dropna()], positions=[0], widths=0.5)
        for i, grp in enumerate(("pe-top", "pe-bottom", "pe-all"), start=1):
            v = g.loc[g["group"] == grp, s]
            ax.plot([i], v, "o", ms=6)
        ax.set_xticks(range(4), ["random", "top", "bottom", "all"], rotation=45, fontsize=7)
        ax.set_title(f"{t}\n{s} ({'higher' if s == 'spearman' else 'lower'} = better)", fontsize=7)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ report
def figures(result: BatteryResult) -> list[tuple[str, Any, str]]:
    """(name, figure, caption) of every figure of the report."""
    out: list[tuple[str, Any, str]] = []
    cur = result.curves
    tests = set(cur["test"])
    for t in DETECTION_TESTS:
        if t in tests:
            out.append((t, detection_figure(cur, t), "Predicted vs human detection thresholds (criterion fitted "
                        "once per metric and test); log axes."))
    for t in MASKING_TESTS:
        if t in tests:
            out.append((t, masking_figure(cur, t), "Test threshold vs mask contrast; black: human."))
    if MATCHING_TEST in tests:
        out.append((MATCHING_TEST, matching_figure(cur), "Matched contrast vs frequency for each reference "
                    "contrast at 5 cpd (solid: model, dashed: human)."))
    if len(result.pe_correlation):
        out.append(("pe_correlation", pe_figure(result.pe_correlation), "Spearman correlation across the channels of "
                    "each layer between PE (mu1, mu2) and the channel's own score, oriented so that > 0 means higher "
                    "PE agrees better with humans (the sign of the RMSE correlations is flipped; the table keeps the "
                    "raw rho)."))
    if (result.results["group"] == "pe-random").any():
        out.append(("selections", selection_figure(result.results), "PE top-k, bottom-k, all channels and random-k "
                    "(box: seeds) per test."))
    return out


def build_report(result: BatteryResult, png_dir: str | Path | None = None) -> Any:
    """The HtmlReport; with `png_dir`, every figure is also saved there as PNG (for checking by eye)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from psychofeat.report.html import HtmlReport

    rep = HtmlReport("Low-level vision battery")
    rep.paragraph("Contrast detection, masking and matching of networks, PE channel selections, single channels and "
                  "classic metrics against human data (Cai et al., CVPR 2025 protocol; docs/battery.md). Spearman: "
                  "the CVPR 2025 multiplier score (1 = the model's distance is equal at every human threshold); RMSE: "
                  "log10 units; slope: log threshold vs log mask contrast over masks ≥ 0.03 (Weber: 1).")
    rep.heading("Summary")
    rep.table(summary_table(result.results), float_format="{:.3f}")
    if png_dir is not None:
        Path(png_dir).mkdir(parents=True, exist_ok=True)
    for name, fig, caption in figures(result):
        rep.heading(TITLES.get(name, name.replace("_", " ")))
        if png_dir is not None:
            fig.savefig(Path(png_dir) / f"{name}.png", dpi=110)
        rep.figure(fig, caption)
        plt.close(fig)
    if len(result.pe_correlation):
        rep.heading("PE, mu1, mu2 vs single-channel agreement")
        rep.table(result.pe_correlation, float_format="{:.3g}")
    if len(result.selections):
        rep.heading("Selections")
        rep.table(result.selections, float_format="{:.3f}")
    rep.provenance(result.info)
    return rep


def write_report(result: BatteryResult, folder: Path, png_dir: str | Path | None = None) -> Path:
    """Write report.html into `folder` (the run folder)."""
    return Path(build_report(result, png_dir).write(Path(folder) / "report.html"))


__all__ = ["MAIN_SCORE", "build_report", "figures", "summary_table", "write_report"]
