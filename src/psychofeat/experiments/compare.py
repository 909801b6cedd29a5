"""`psychofeat compare`: is a human-like channel a product of training or of architecture?

Every network is analysed (`psychofeat.analysis`) three ways, with the same stimuli: its pretrained
weights, a seeded random initialisation (`random:SEED`, the architecture alone) and its pretrained weights
shuffled (`shuffled:SEED`, same weight statistics, no learned structure). Per layer, the table gives PE's median
and quartiles, the fraction of channels above the pretrained VGG-16 median PE (one reference number, pooled over
VGG-16's analysed layers; PE is normalised within each layer, so it is comparable across networks), and the
fraction of unresponsive channels. A one-sided Mann–Whitney U test per layer says whether the pretrained PEs are
stochastically larger than each control's.

Depth fraction of a layer = convolutions executed up to and including it / all convolutions of the network, so
networks of different depth share one axis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from psychofeat.analysis import AnalysisConfig, analyze
from psychofeat.backbones.base import Backbone
from psychofeat.errors import InputError

CONTROLS = ("random", "shuffled")
REFERENCE_MODEL = "vgg16"
PRETRAINED = "pretrained"


@dataclass(frozen=True)
class CompareConfig:
    models: tuple[str, ...] = ("vgg16", "squeezenet1_1", "efficientnet_lite0")
    controls: tuple[str, ...] = CONTROLS
    seed: int = 0
    layers: Mapping[str, Sequence[str]] = field(default_factory=dict)  # model -> layers (default: its defaults)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    def __post_init__(self) -> None:
        bad = [c for c in self.controls if c not in CONTROLS]
        if bad:
            raise InputError(f"unknown control(s) {bad}; choose from {', '.join(CONTROLS)}.")
        if not self.models:
            raise InputError("at least one model is required.")
        extra = [m for m in self.layers if m not in self.models]
        if extra:
            raise InputError(f"--layers-per-model names {extra}, which are not in --models {list(self.models)}.")

    def runs(self) -> list[tuple[str, str, str | None]]:
        """(model, label, weights spec; None = the model's own pretrained weights) for every analysis, pretrained
        first."""
        out: list[tuple[str, str, str | None]] = []
        for m in self.models:
            out.append((m, PRETRAINED, None))
            out += [(m, c, f"{c}:{self.seed}") for c in self.controls]
        return out


def depth_fractions(net: nn.Module, paths: Mapping[str, str]) -> dict[str, float]:
    """layer -> (convolutions up to and including the layer's module, in registration order) / all convolutions."""
    modules = list(net.named_modules())
    is_conv = [isinstance(m, nn.Conv2d) for _, m in modules]
    total = sum(is_conv)
    out = {}
    for layer, path in paths.items():
        last = max(i for i, (p, _) in enumerate(modules) if p == path or p.startswith(path + "."))
        out[layer] = sum(is_conv[: last + 1]) / total if total else float("nan")
    return out


def summarize(scores: pd.DataFrame, reference_median: float) -> pd.DataFrame:
    """One row per (network, weights, layer) from per-channel scores with network/weights/depth columns."""
    g = scores.groupby(["network", "weights", "layer"], sort=False)
    table = g.agg(
        depth_fraction=("depth_fraction", "first"),
        n_channels=("pe", "size"),
        pe_median=("pe", "median"),
        pe_q25=("pe", lambda s: float(np.quantile(s, 0.25))),
        pe_q75=("pe", lambda s: float(np.quantile(s, 0.75))),
        frac_above_ref=(
            "pe", lambda s: float(np.mean(s > reference_median)) if np.isfinite(reference_median) else np.nan
        ),
        frac_unresponsive=("unresponsive", "mean"),
    ).reset_index()
    return table.rename(columns={"frac_above_ref": f"frac_above_{REFERENCE_MODEL}_median"})


def pretrained_vs_controls(scores: pd.DataFrame) -> pd.DataFrame:
    """Per network and layer: median PE of each variant and the one-sided Mann–Whitney p (pretrained > control)."""
    from scipy.stats import mannwhitneyu

    rows = []
    for (net, layer), grp in scores.groupby(["network", "layer"], sort=False):
        pe = {w: grp.loc[grp["weights"] == w, "pe"].to_numpy() for w in grp["weights"].unique()}
        if PRETRAINED not in pe:
            continue
        row: dict[str, Any] = {"network": net, "layer": layer, "depth_fraction": grp["depth_fraction"].iloc[0],
                               f"pe_median_{PRETRAINED}": float(np.median(pe[PRETRAINED]))}
        for w, values in pe.items():
            if w == PRETRAINED:
                continue
            row[f"pe_median_{w}"] = float(np.median(values))
            row[f"p_{PRETRAINED}_gt_{w}"] = float(mannwhitneyu(pe[PRETRAINED], values, alternative="greater").pvalue)
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class CompareResult:
    table: pd.DataFrame  # comparison.csv
    tests: pd.DataFrame  # pretrained vs controls, per layer
    scores: pd.DataFrame  # every channel of every run
    reference_median: float
    info: dict[str, Any]


def run_compare(
    config: CompareConfig,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = lambda s: None,
) -> CompareResult:
    """Analyse every (model, weights) pair and summarise; the pretrained VGG-16 median PE is the reference."""
    from psychofeat.backbones import load_backbone

    frames = []
    timing: dict[str, float] = {}
    weights_info: dict[str, Any] = {}
    for model, label, spec in config.runs():
        t0 = time.perf_counter()
        b: Backbone = load_backbone(model, weights=spec, device=device)
        layers = list(config.layers.get(model, b.default_layers))
        res = analyze(b, layers=layers, config=config.analysis, device=device, progress=progress)
        paths = {layer: b.resolve_layer(layer) for layer in res.scores["layer"].unique()}
        depth = depth_fractions(b.net, paths)
        df = res.scores.copy()
        df.insert(0, "network", b.name)
        df.insert(1, "weights", label)
        df.insert(2, "weights_spec", b.weights_info.source)
        df["depth_fraction"] = df["layer"].map(depth)
        frames.append(df)
        key = f"{b.name}/{label}"
        timing[key] = time.perf_counter() - t0
        weights_info[key] = b.weights_info.to_dict()
        log(f"{key}: {len(df)} channels in {len(paths)} layers, {timing[key]:.1f} s")
    scores = pd.concat(frames, ignore_index=True)
    ref = scores[(scores["network"] == REFERENCE_MODEL) & (scores["weights"] == PRETRAINED)]["pe"]
    reference_median = float(ref.median()) if len(ref) else float("nan")
    info = {
        "models": list(config.models),
        "controls": list(config.controls),
        "seed": config.seed,
        "layers": {m: list(v) for m, v in config.layers.items()},
        "analysis": config.analysis.to_dict(),
        "reference": f"median PE of pretrained {REFERENCE_MODEL} over its analysed layers",
        "reference_median_pe": reference_median,
        "weights": weights_info,
        "timing_s": timing | {"total": sum(timing.values())},
        "device": device,
    }
    table = summarize(scores, reference_median)
    return CompareResult(table, pretrained_vs_controls(scores), scores, reference_median, info)


def headline(tests: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per network and control: in how many layers pretrained PE is higher (median, and one-sided p < alpha)."""
    rows = []
    for net, grp in tests.groupby("network", sort=False):
        for col in [c for c in grp.columns if c.startswith(f"p_{PRETRAINED}_gt_")]:
            control = col.removeprefix(f"p_{PRETRAINED}_gt_")
            pre, ctl = grp[f"pe_median_{PRETRAINED}"], grp[f"pe_median_{control}"]
            rows.append({
                "network": net, "control": control, "layers": len(grp), "median_higher": int((pre > ctl).sum()),
                f"significant_p<{alpha:g}": int((grp[col] < alpha).sum()),
                "mean_pe_median_pretrained": float(pre.mean()), "mean_pe_median_control": float(ctl.mean()),
            })  # fmt: skip
    return pd.DataFrame(rows)


def write_report(result: CompareResult, out: Path) -> Path:
    """report.html: PE-vs-depth per network (median and quartiles; pretrained vs controls) and the tables."""
    import matplotlib.pyplot as plt

    from psychofeat.report import HtmlReport

    rep = HtmlReport("psychofeat compare: Perceptual Efficacy across networks, pretrained vs controls")
    rep.paragraph(
        "Each curve is the median PE of a layer's channels against the layer's depth fraction (convolutions up to "
        "the layer / all convolutions); the band spans the quartiles. 'random' is the seeded default "
        "initialisation, 'shuffled' the pretrained weights permuted within each tensor. The dotted line is the "
        f"pretrained {REFERENCE_MODEL} median PE ({result.reference_median:.4g})."
    )
    rep.heading("Headline: layers where pretrained PE exceeds the control")
    rep.table(headline(result.tests), "one-sided Mann–Whitney U per layer")
    t = result.table
    nets = list(dict.fromkeys(t["network"]))
    fig, axes = plt.subplots(1, len(nets), figsize=(5.2 * len(nets), 4.0), squeeze=False, sharey=True)
    colors = {PRETRAINED: "C0", "random": "C3", "shuffled": "C2"}
    for ax, net in zip(axes[0], nets):
        for w, grp in t[t["network"] == net].groupby("weights", sort=False):
            grp = grp.sort_values("depth_fraction")
            c = colors.get(str(w), None)
            ax.plot(grp["depth_fraction"], grp["pe_median"], "o-", color=c, label=str(w))
            ax.fill_between(grp["depth_fraction"], grp["pe_q25"], grp["pe_q75"], color=c, alpha=0.15)
        if np.isfinite(result.reference_median):
            ax.axhline(result.reference_median, color="0.4", ls=":", lw=1)
        ax.set_title(net)
        ax.set_xlabel("depth fraction")
        ax.set_xlim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("PE (median, quartile band)")
    axes[0][-1].legend()
    rep.figure(fig, "PE vs depth: pretrained vs controls")
    rep.heading("Per layer: pretrained vs controls")
    rep.table(result.tests, "median PE and one-sided Mann–Whitney p (pretrained > control)", max_rows=500)
    rep.heading("comparison.csv")
    rep.table(result.table, max_rows=500)
    rep.provenance(result.info)
    return rep.write(out / "report.html")


def write_outputs(result: CompareResult, out: Path, manifest: dict[str, Any]) -> list[Path]:
    from psychofeat.io import write_json, write_table

    paths = [
        write_table(out / "comparison.csv", result.table),
        write_table(out / "pretrained_vs_controls.csv", result.tests),
        write_table(out / "scores.csv", result.scores),
        write_report(result, out),
    ]
    paths.append(write_json(out / "manifest.json", manifest | {"compare": result.info}))
    return paths
