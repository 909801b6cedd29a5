"""`psychofeat iqa` and `psychofeat iqa-claim`: do high-PE channels agree better with human quality scores?

What is compared (SCIENCE.md, "Agreement with humans"), all on the same image pairs:

* the selection's **top-k**, **bottom-k** and **random-k** channels (k = `fraction` of each layer; random-k for
  `n_seeds` seeds, summarised as mean ± sd and kept seed by seed) and **all** channels of the selection's layers,
  each as the selected-channel distance of `psychofeat.distance` (normalized or mse mode, w_k = 1/#layers);
* the baselines **PSNR** and **SSIM** (`psychofeat.classic`, RGB in [0, 1], data range 1).

`iqa-claim` adds the paper's claim tested channel by channel: each channel's single-channel distance
(`psychofeat.distance.channel_distances`) is correlated with the human scores, and per layer the Spearman
correlation between PE and that agreement is tested with a permutation p-value; plus the agreement (SRCC) of
top/bottom/random selections as a function of k. This module runs the study; measuring the image pairs is
`psychofeat.experiments.iqa_pairs`, the claim's statistics `psychofeat.experiments.iqa_claim`, and writing the
outputs and the report `psychofeat.experiments.iqa_report` (which imports this module, never the reverse).

The selection comes from the stimuli alone (`psychofeat analyze`); nothing here is fitted to the human scores.

Cost. Every image goes through the network once: reference features once per reference image, one forward
pass per distorted image capturing all layers. Every selection is then evaluated from those feature maps at
once by `psychofeat.distance_bank.SelectionBank` in float32 (per-position channel sums as matrix products and
an exact identity, instead of one `index_select` + distance per selection). The shared core stays the
reference: the first pair of every run is recomputed with `psychofeat.distance.pair_distance_map` (float32) for
the headline selections and the run stops if they disagree (`verification` in manifest.json); the tests compare
every pair of a fixture set with `PerceptualDistance` itself.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from psychofeat._deprecation import moved_names
from psychofeat.backbones.base import Backbone
from psychofeat.datasets import FullReferenceDataset, TwoAFCDataset, load_dataset
from psychofeat.distance import DEFAULT_EPS, MODES
from psychofeat.distance_bank import SelectionBank, single_threaded
from psychofeat.errors import InputError
from psychofeat.experiments.iqa_claim import ClaimResult, CurvePoint, analyze_claim, curve_selections
from psychofeat.experiments.iqa_pairs import (  # the pairs' measurement; re-exported from its old home
    PSNR_CAP_DB,  # noqa: F401
    VERIFY_RTOL,  # noqa: F401
    PairValues,
    baselines,  # noqa: F401
    measure_pairs,
    preflight,
    verify_pair,  # noqa: F401
)
from psychofeat.metric import MIN_SIZE
from psychofeat.selection import Selection
from psychofeat.stats import agreement, percentile_ci, srcc_with_resamples

FORMAT = "psychofeat.iqa/1"
#: k (fraction of each layer's channels) of the agreement-vs-k curve of `iqa-claim`
DEFAULT_CURVE_FRACTIONS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
#: names of the compared metrics in results.json / per_image.csv (random-k: random_seed<s> per seed)
BASELINES = ("psnr", "ssim")
SELECTED = ("top", "bottom", "all")


# ------------------------------------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class IqaConfig:
    """Everything that determines the numbers of an `iqa` / `iqa-claim` run."""

    dataset: str = "live-subset"
    root: str | None = None
    model: str = "vgg16"
    weights: str | None = None
    preprocessing: str | None = None  # override of the weights' preprocessing (load_backbone)
    selection: str | None = None  # selection.json of `psychofeat analyze`; None: analyse first
    layers: tuple[str, ...] | None = None  # default: the selection's layers
    fraction: float = 0.25
    n_seeds: int = 20
    mode: str = "normalized"
    resize: int | None = None
    device: str = "cpu"
    dtype: str = "float32"
    n_boot: int = 1000
    boot_seed: int = 0
    claim: bool = False
    curve_fractions: tuple[float, ...] = DEFAULT_CURVE_FRACTIONS
    n_permutations: int = 10_000
    perm_seed: int = 0
    eps: float = DEFAULT_EPS
    threads: int | None = None  # intra-op threads of the forward passes (None: torch's default)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"unknown distance mode {self.mode!r}; choose one of {', '.join(MODES)}.")
        if not 0 < self.fraction <= 1:
            raise InputError(f"--fraction must be in (0, 1], got {self.fraction}.")
        if self.n_seeds < 1:
            raise InputError(f"--seeds must be at least 1, got {self.n_seeds}.")
        bad = [f for f in self.curve_fractions if not 0 < f <= 1]
        if bad or not self.curve_fractions:
            raise InputError(f"curve fractions must lie in (0, 1], got {list(self.curve_fractions)}.")
        if self.n_boot < 0 or self.n_permutations < 1:
            raise InputError("--n-boot must be ≥ 0 and --permutations ≥ 1.")
        if self.resize is not None and self.resize < MIN_SIZE:
            raise InputError(f"--resize must be at least {MIN_SIZE} px (the metric's minimum), got {self.resize}.")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def random_name(seed: int) -> str:
    return f"random_seed{seed}"


# ------------------------------------------------------------------------------------------------- selections
def headline_selections(base: Selection, layers: Sequence[str], fraction: float, n_seeds: int) -> dict[str, Selection]:
    """top, bottom, all and random_seed0.. — derived exactly as `PerceptualDistance(which=..., seed=...)` does.

    Order matters for random-k: `Selection.select` draws layer after layer from one generator, so the selection
    is derived from the full analysis first and restricted to `layers` afterwards (as `build_selection` does).
    """
    out = {
        "top": base.select("top", fraction).restrict(layers),
        "bottom": base.select("bottom", fraction).restrict(layers),
        "all": base.select("all").restrict(layers),
    }
    for s in range(n_seeds):
        out[random_name(s)] = base.select("random", fraction, s).restrict(layers)
    return out


# -------------------------------------------------------------------------------------------------- agreement
def metric_values(pv: PairValues, bank: SelectionBank, names: Sequence[str]) -> dict[str, np.ndarray]:
    """{metric name: one value per pair}: the named selections (Σ_k w_k d_k, w_k = 1/#layers: SCIENCE.md),
    then the baselines (in their natural units)."""
    combined = bank.combine(pv.per_layer)
    out = {name: combined[:, bank.column[name]] for name in names}
    out["psnr"] = pv.psnr_db
    out["ssim"] = pv.ssim
    return out


def as_distance(name: str, values: np.ndarray) -> np.ndarray:
    """PSNR and SSIM are similarities (higher = closer): negated, so that every metric is a distance."""
    return -values if name in BASELINES else values


def summarize_seeds(per_seed: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, sd (ddof = 1), min and max over seeds of each statistic."""
    out: dict[str, dict[str, float]] = {}
    for key in ("srcc", "krcc", "plcc", "rmse"):
        v = np.array([float(r[key]) for r in per_seed.values()])
        out[key] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                    "min": float(v.min()), "max": float(v.max())}
    return out


def paired_differences(
    values: Mapping[str, np.ndarray], human: np.ndarray, score_type: str, seeds: Sequence[str], n_boot: int, seed: int
) -> dict[str, dict[str, float]]:
    """SRCC differences between metrics with paired percentile-bootstrap CIs (the resamples of the CIs).

    "random" is the mean SRCC over the random-k seeds on each resample, so the comparison with random-k is
    against the average random selection, not one draw.
    """
    point, boot = srcc_with_resamples({k: as_distance(k, v) for k, v in values.items()}, human, score_type,
                                      n_boot, seed)
    boot["random"] = np.mean([boot.pop(s) for s in seeds], axis=0)
    point["random"] = float(np.mean([point[s] for s in seeds]))
    pairs = [("top", "bottom"), ("top", "random"), ("top", "all"), ("bottom", "random"), ("all", "random"),
             ("all", "psnr"), ("all", "ssim"), ("top", "ssim")]
    out = {}
    for a, b in pairs:
        diff = boot[a] - boot[b]
        lo, hi = percentile_ci(diff) if n_boot > 0 else (float("nan"), float("nan"))
        le0 = float(np.mean(diff[np.isfinite(diff)] <= 0)) if n_boot > 0 else float("nan")
        out[f"{a}-{b}"] = {"srcc_diff": point[a] - point[b], "lo": lo, "hi": hi, "frac_resamples_le_0": le0}
    return out


def agreement_results(
    values: Mapping[str, np.ndarray], human: np.ndarray, score_type: str, seeds: Sequence[str], n_boot: int, seed: int
) -> dict[str, Any]:
    """results.json's "metrics" and "differences": every metric with bootstrap CIs; random-k per seed + summary."""
    metrics: dict[str, Any] = {}
    for name in (*BASELINES, *SELECTED):
        metrics[name] = agreement(as_distance(name, values[name]), human, score_type, n_boot, seed)
    per_seed = {s: agreement(values[s], human, score_type, n_boot, seed) for s in seeds}
    metrics["random"] = {"summary": summarize_seeds(per_seed), "n_seeds": len(seeds), "seeds": per_seed}
    return {"metrics": metrics, "differences": paired_differences(values, human, score_type, seeds, n_boot, seed)}


# ------------------------------------------------------------------------------------------------ the whole run
@dataclass
class IqaResult:
    config: IqaConfig
    dataset: FullReferenceDataset
    selection: Selection  # the analysis selection (PE of every channel), restricted to the run's layers
    per_image: pd.DataFrame
    results: dict[str, Any]
    claim: ClaimResult | None
    channel_distances: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)


def load_full_reference(config: IqaConfig) -> FullReferenceDataset:
    ds = load_dataset(config.dataset, config.root)
    if isinstance(ds, TwoAFCDataset):
        raise InputError(
            f"{config.dataset} is a 2AFC set; iqa needs a full-reference set with MOS or DMOS "
            "(live-subset, live, csiq, tid2013, kadid10k, pipal or a CSV)."
        )
    return ds


def obtain_selection(
    config: IqaConfig, backbone: Backbone, analyze_out: Path | None, log: Callable[[str], None]
) -> tuple[Selection, dict[str, Any]]:
    """The selection file given, or a fresh `psychofeat analyze` with default settings (stimuli only).

    Without --selection the network is analysed first, exactly as `psychofeat analyze --model M --weights W`
    would, and its outputs are kept in `analyze_out` so the selection used can be inspected and reused.
    """
    if config.selection is not None:
        from psychofeat.io import sha256_file

        sel = Selection.load(config.selection)
        src = {"path": str(Path(config.selection).resolve()), "sha256": sha256_file(config.selection),
               "generated_by_this_run": False}
    else:
        from psychofeat.analysis import AnalysisConfig, analyze, write_analysis_files

        log(f"no --selection given: analysing {backbone.name} ({backbone.weights_info.source}) with the default "
            "stimuli first (psychofeat analyze); this takes a few minutes")
        t0 = time.perf_counter()
        res = analyze(backbone, list(config.layers) if config.layers else None, AnalysisConfig(),
                      device=config.device, dtype=config.dtype)
        if analyze_out is not None:
            write_analysis_files(res, analyze_out)
        sel = res.selection
        src = {"path": str(analyze_out / "selection.json") if analyze_out is not None else None,
               "generated_by_this_run": True, "analysis_seconds": time.perf_counter() - t0}
    if sel.pe is None:
        raise InputError("the selection file carries no PE ranking; give the selection.json of `psychofeat analyze`.")
    sel.check_backbone(backbone)
    src.update({"model": sel.model, "weights": sel.weights, "layers": list(sel.n_channels),
                "analysis": sel.provenance.get("analysis")})
    return sel, src


def _per_image_frame(ds: FullReferenceDataset, values: Mapping[str, np.ndarray]) -> pd.DataFrame:
    frame = ds.to_frame()
    if ds.root is not None:
        for col in ("distorted", "reference"):
            frame[col] = [os.path.relpath(p, ds.root) if Path(p).is_relative_to(ds.root) else p for p in frame[col]]
    frame = frame.rename(columns={"score": "human_score"})
    for name, v in values.items():
        frame["psnr_db" if name == "psnr" else name] = v
    return frame


def run_iqa(
    config: IqaConfig,
    analyze_out: Path | None = None,
    backbone: Backbone | None = None,
    dataset: FullReferenceDataset | None = None,
    log: Callable[[str], None] = lambda s: None,
    progress: bool = True,
) -> IqaResult:
    """The whole experiment: dataset checks, selection, one pass over the pairs, statistics (and the claim).

    `backbone` / `dataset` replace `config.model`+`config.weights` / `config.dataset`+`config.root` (library use:
    e.g. a dataset built with `load_dataset(name, root, scores=...)` or a wrapped custom network).
    """
    import psychofeat.backbones as B

    t_start, cpu_start, load_start = time.perf_counter(), time.process_time(), os.getloadavg()
    ds = dataset if dataset is not None else load_full_reference(config)  # missing files: all listed in one error
    conversions = preflight(ds, config.resize)
    net = backbone if backbone is not None else B.load_backbone(
        config.model, config.weights, device=config.device, preprocessing=config.preprocessing)
    full, sel_source = obtain_selection(config, net, analyze_out, log)
    layers = [net.canonical_layer(k) for k in config.layers] if config.layers else full.layers
    base = full.restrict(layers)  # PE per channel of the run's layers; selections are derived from `full`
    n_channels = net.layer_channels(layers)

    head = headline_selections(full, layers, config.fraction, config.n_seeds)
    seeds = [random_name(s) for s in range(config.n_seeds)]
    selections: dict[str, Selection] = dict(head)
    points: list[CurvePoint] = []
    if config.claim:
        curve_sels, points = curve_selections(full, layers, config.curve_fractions, config.n_seeds)
        selections.update(curve_sels)
    bank = SelectionBank(selections, layers, n_channels, config.mode, config.eps, config.device, dtype=torch.float32)
    verify = {k: head[k] for k in ("top", "bottom", "all", seeds[0])}
    t_prep = time.perf_counter()
    pv = measure_pairs(ds, net, bank, verify, config.resize, config.device, config.dtype, progress, config.threads)
    t_pairs = time.perf_counter()

    human = ds.scores
    names = [*SELECTED, *seeds]
    values = metric_values(pv, bank, names)
    with single_threaded(1):
        results = agreement_results(values, human, ds.score_type, seeds, config.n_boot, config.boot_seed)
    t_stats = time.perf_counter()
    claim = None
    if config.claim:
        claim = analyze_claim(base, pv.channels, pv.per_layer, bank, points, SELECTED, seeds, human, ds.score_type,
                              config.fraction, config.n_permutations, config.perm_seed)
    t_end = time.perf_counter()

    ordered = {"psnr": values["psnr"], "ssim": values["ssim"], **{n: values[n] for n in names}}
    results = {
        "format": FORMAT,
        "dataset": {"name": ds.name, "n_pairs": len(ds), "n_references": len(ds.references()),
                    "score_type": ds.score_type, "root": str(ds.root) if ds.root else None},
        "model": net.name, "weights": net.weights_info.to_dict(), "layers": layers, "mode": config.mode,
        "fraction": config.fraction, "n_seeds": config.n_seeds, "layer_weights": "1/#layers",
        "n_selected": {n: head[n].n_selected() for n in ("top", "bottom", "all", seeds[0])},
        "statistics": {"n_boot": config.n_boot, "seed": config.boot_seed, "ci_level": 0.95,
                       "sign": "positive = agreement with humans (distances vs DMOS as is, vs MOS negated; "
                               "PSNR and SSIM negated first, being similarities)"},
        **results,
    }
    info = {
        "config": config.to_dict(),
        "selection_source": sel_source,
        "conversions": conversions,
        "verification": pv.verification,
        "n_selection_columns": bank.n_columns,
        "timing_s": {"setup": t_prep - t_start, "pairs_total": t_pairs - t_prep, **pv.timing_s,
                     "agreement": t_stats - t_pairs, "claim": t_end - t_stats, "total": t_end - t_start,
                     "cpu_total": time.process_time() - cpu_start,
                     "forward_threads": config.threads or torch.get_num_threads(), "cpu_count": os.cpu_count(),
                     "loadavg_start": list(load_start), "loadavg_end": list(os.getloadavg())},
    }
    return IqaResult(config, ds, base, _per_image_frame(ds, ordered), results, claim, pv.channels, info)


# ---------------------------------------------------------------------------------------------------- outputs
def results_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """One row per compared metric (random-k: the mean over seeds, with its sd) — the table quoted in notes."""
    rows = []
    metrics = results["metrics"]
    for name in (*BASELINES, *SELECTED):
        r = metrics[name]
        rows.append({"metric": name, **{k: r[k] for k in ("srcc", "srcc_lo", "srcc_hi", "krcc", "krcc_lo", "krcc_hi",
                                                       "plcc", "plcc_lo", "plcc_hi", "rmse", "rmse_lo", "rmse_hi")}})
    summ = metrics["random"]["summary"]
    row: dict[str, Any] = {"metric": f"random (mean of {metrics['random']['n_seeds']} seeds)"}
    for key in ("srcc", "krcc", "plcc", "rmse"):
        row[key] = summ[key]["mean"]
        row[f"{key}_sd"] = summ[key]["sd"]
    rows.append(row)
    return pd.DataFrame(rows)


#: names that moved up to the report module (which imports this one): old name -> new home
_MOVED_TO_REPORT = {"write_outputs": "psychofeat.experiments.iqa_report"}


#: deprecated aliases, resolved by name at call time so that this study does not import its report
__getattr__ = moved_names(__name__, _MOVED_TO_REPORT)
