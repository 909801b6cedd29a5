"""Threshold benchmark: do image metrics and channel selections predict human contrast-detection thresholds?
``psychofeat hvs detect``.

At the human detection threshold every stimulus is *just* visible, so a metric that sees like a human gives
the same distance between every threshold stimulus and the blank field. This is how visual-difference
predictors are calibrated (ModelFest), and it separates channel selections far more sharply than
full-reference IQA sets, on which almost any deep feature does well.

For each metric m and each stimulus i of `psychofeat.hvs.threshold_stimuli` (castleCSF's rows rendered at
their human threshold contrast h_i on psychofeat's display model):

* **score** — d_m(i) = distance(stimulus i at h_i, blank); score = standard deviation (population, ddof 0)
  of log10 d_m over the stimuli of a dataset. 0 is perfect.
* **predicted thresholds** — the criterion κ_{m,D} of dataset D is fitted once: log10 κ = mean over D of
  log10 d_m(i) (the least-squares choice when d ∝ c^p near threshold). Each stimulus's predicted threshold
  t_i solves d_m(stimulus i at t_i) = κ, found by bisection on log10 contrast in
  [h_i / 10^W, min(c_max, h_i · 10^W)] (W = 2.5 decades by default) and refined by log–log interpolation.
  Reported: RMSE of log10 t − log10 h (log10 units; 0.1 ≈ a factor 1.26), its mean (bias), and the
  Spearman correlation of t with h. A threshold outside the bracket is censored at its end and counted.
* The two views are equivalent up to the exponent p of d ∝ c^p: RMSE ≈ score / p. PSNR's MSE has p = 2
  exactly and 1 − SSIM p ≈ 2, but deep-feature distances need not be quadratic (normalised VGG-16 distances
  grow sub-linearly over the range where thresholds fall, p ≈ 0.5–0.8), and then their spread of log
  distance understates how far off their thresholds are. The score therefore favours
  compressive metrics; the RMSE, in units of log threshold, compares metrics on equal terms. The measured
  median local exponent at the predicted threshold is reported (``exponent``).
* ``pooled``: over all datasets, each with its own κ — score and RMSE are the RMS of the per-dataset
  deviations; Spearman is over all rows.

Metrics (``--metrics``, comma-separated tokens; `build_banks`):

* ``<model>``: all channels of the model's metric layers, normalised (psychofeat's default metric; for
  VGG-16 the LPIPS layers relu1_2 … relu5_3); ``<model>:mse``: the same with feature MSE (the "VGG loss");
  ``<model>:layers``: each metric layer alone; ``<model>:random``: seeded random weights (the control).
* ``pe``: from ``--selection`` (``psychofeat analyze``'s selection.json, never tuned to these data): all
  channels of the selection's layers, PE top-k, bottom-k and random-k for ``--seeds`` seeds, normalised.
* ``zoo``: every other registered model whose weights load (all channels, normalised).
* ``psnr``: distance = MSE (PSNR = −10·log10 MSE, so its score is std(PSNR)/10 — the spread of log contrast
  energy); ``ssim``: distance = 1 − SSIM.
* ``all`` (default): vgg16, vgg16:mse, vgg16:layers, vgg16:random, pe (with a selection), zoo, psnr, ssim.

Metrics of one backbone and weights share every forward pass: a stimulus at a contrast is run once and all
of them are read off its features, and requests of different metrics for the same (stimulus, contrast) —
all of them at first, since every search starts from the same bracket — are served from a cache.

This module plans the banks (`build_banks`; the banks themselves are `psychofeat.metric_banks`) and runs the
search (`psychofeat.hvs.threshold_search`); the scores are `psychofeat.hvs.detection_scores`, and writing the
outputs and the report is `psychofeat.hvs.detection_report.run_detect`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from psychofeat._deprecation import moved_names
from psychofeat.backbones.base import Backbone
from psychofeat.errors import InputError, PsychofeatError, unknown_name
from psychofeat.hvs.data import POOLED  # noqa: F401  (re-exported: tests and users read it here)
from psychofeat.hvs.detection_scores import (  # the scoring; re-exported from its old home
    constant_threshold_reference,
    random_summary,
    score_rows,
    summary_table,  # noqa: F401
)
from psychofeat.hvs.threshold_search import STATUS_BELOW, STATUS_UNDETECTED, bisect_log_contrast
from psychofeat.hvs.threshold_stimuli import ThresholdStimuli
from psychofeat.metric_banks import ClassicBank, DistanceBank, FeatureBank, FeatureMetric  # re-exported: their old home
from psychofeat.selection import Selection

CENSORED_LOW, CENSORED_HIGH = "censored_low", "censored_high"


# --------------------------------------------------------------------------------------------------------------------
# Building the metric list
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class BankPlan:
    """The banks to evaluate and the metrics that could not be built (with the reason)."""

    banks: list[DistanceBank]
    notes: list[str] = field(default_factory=list)


def _all_channels(backbone: Backbone, layers: Sequence[str]) -> dict[str, np.ndarray | None]:
    return {backbone.canonical_layer(lay): None for lay in layers}


def selection_metrics(selection: Selection, model: str, seeds: int,
                      fraction: float | None = None) -> list[FeatureMetric]:
    """All channels of the selection's layers, PE top-k, bottom-k and `seeds` random-k selections."""
    frac = float(fraction if fraction is not None else (selection.fraction or 0.25))
    pct = f"{100 * frac:g}"
    out = [FeatureMetric(f"{model}/pe-all", {k: None for k in selection.layers}, group="pe-all")]
    for method in ("top", "bottom"):
        sel = selection.select(method, frac)
        out.append(FeatureMetric(f"{model}/pe-{method}{pct}", dict(sel.channels), group=f"pe-{method}"))
    for seed in range(seeds):
        sel = selection.select("random", frac, seed)
        out.append(FeatureMetric(f"{model}/pe-random{pct}-s{seed}", dict(sel.channels), group="pe-random", seed=seed))
    return out


def soft_selection_metrics(selection: Selection, model: str) -> list[FeatureMetric]:
    """The soft weightings of the selection's channels (soft-pe, soft-rank, soft-mu1, soft-mu2; docs/science.md)."""
    from psychofeat.selection import SOFT_METHODS

    return [FeatureMetric(f"{model}/pe-{m}", dict(selection.select(m).channel_sets()), group="pe-soft")
            for m in SOFT_METHODS if m != "soft-random"]


def build_banks(
    tokens: Sequence[str] = ("all",),
    selection: str | Path | Selection | None = None,
    seeds: int = 20,
    fraction: float | None = None,
    device: str = "cpu",
) -> BankPlan:
    """Resolve metric tokens (module docstring) into banks; one bank per (model, weights)."""
    from psychofeat.backbones import available_models, load_backbone

    toks = [t.strip() for t in tokens if t.strip()]
    if "all" in toks:
        toks = [t for t in toks if t != "all"] + ["vgg16", "vgg16:mse", "vgg16:layers", "vgg16:random", "zoo", "psnr",
                                                  "ssim"]
        if selection is not None:
            toks.append("pe")
    sel = Selection.load(selection) if isinstance(selection, (str, Path)) else selection
    notes: list[str] = []
    wanted: dict[tuple[str, str | None], list[FeatureMetric]] = {}
    classic: list[str] = []
    models = available_models()

    def add(model: str, weights: str | None, metrics: list[FeatureMetric]) -> None:
        wanted.setdefault((model, weights), []).extend(metrics)

    cache: dict[tuple[str, str | None], Backbone] = {}

    def backbone(model: str, weights: str | None) -> Backbone:
        if (model, weights) not in cache:
            cache[(model, weights)] = load_backbone(model, weights, device=device)
        return cache[(model, weights)]

    for tok in dict.fromkeys(toks):
        if tok in ("psnr", "ssim"):
            classic.append(tok)
            continue
        if tok in ("pe", "pe-soft"):
            if sel is None:
                raise InputError(f"metric {tok!r} needs --selection "
                                 "(the selection.json written by `psychofeat analyze`).")
            bb = backbone(sel.model, None)
            sel.check_backbone(bb)
            add(sel.model, None, selection_metrics(sel, sel.model, seeds, fraction) if tok == "pe"
                else soft_selection_metrics(sel, sel.model))
            continue
        if tok == "zoo":
            base = ({t.split(":")[0] for t in toks if t not in ("zoo", "pe", "pe-soft", "psnr", "ssim")}
                    | ({sel.model} if sel else set()))
            for m in models:
                if m in base:
                    continue
                try:
                    bb = backbone(m, None)
                except (PsychofeatError, ImportError, OSError) as exc:
                    notes.append(f"{m}: not loadable ({exc}); left out.")
                    continue
                add(m, None, [FeatureMetric(f"{m}/all", _all_channels(bb, bb.metric_layers), group="zoo")])
            continue
        model, _, variant = tok.partition(":")
        if model not in models:
            raise unknown_name("model", model, models)
        if variant == "random":
            bb = backbone(model, "random")
            add(model, "random", [FeatureMetric(f"{model}@random/all", _all_channels(bb, bb.metric_layers),
                                                group="random-weights")])
            continue
        bb = backbone(model, None)
        if variant == "":
            add(model, None, [FeatureMetric(f"{model}/all", _all_channels(bb, bb.metric_layers), group="all")])
        elif variant == "mse":
            add(model, None, [FeatureMetric(f"{model}/all-mse", _all_channels(bb, bb.metric_layers), "mse",
                                            group="mse")])
        elif variant == "layers":
            add(model, None, [FeatureMetric(f"{model}/{lay}", {lay: None}, group="layer") for lay in bb.metric_layers])
        else:
            raise InputError(f"unknown metric variant {tok!r}; "
                             f"use {model}, {model}:mse, {model}:layers or {model}:random.")
    banks: list[DistanceBank] = []
    for (model, weights), metrics in wanted.items():
        uniq = list({m.name: m for m in metrics}.values())
        label = model if weights is None else f"{model}@{weights}"
        banks.append(FeatureBank(backbone(model, weights), uniq, label, device))
    if classic:
        banks.append(ClassicBank(classic))
    return BankPlan(banks, notes)


# --------------------------------------------------------------------------------------------------------------------
# Evaluation with a (stimulus, contrast) cache
# --------------------------------------------------------------------------------------------------------------------


class CachedDistances:
    """d(stimulus i at contrast 10^logc, blank) for every metric of a bank; each (i, logc) is rendered and run once."""

    def __init__(self, bank: DistanceBank, stimuli: ThresholdStimuli, batch_size: int = 8) -> None:
        self.bank, self.stimuli, self.batch_size = bank, stimuli, batch_size
        self._cache: dict[tuple[int, float], np.ndarray] = {}
        self.n_images = 0

    def __call__(self, index: np.ndarray, log10_c: np.ndarray) -> np.ndarray:
        # rounded keys: the first bisection midpoint (h − W + h + W)/2 equals h up to rounding; it must hit the cache
        keys = [(int(i), round(float(c), 10))
                for i, c in zip(np.atleast_1d(index), np.atleast_1d(log10_c), strict=True)]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            idx = np.array([k[0] for k in missing], dtype=np.int64)
            for (size, mean), members in self.stimuli.size_groups(idx).items():
                member_set = set(members.tolist())
                todo = [k for k in missing if k[0] in member_set]
                blank = self.stimuli.blank(size, mean)
                for s in range(0, len(todo), self.batch_size):
                    chunk = todo[s : s + self.batch_size]
                    ii = np.array([k[0] for k in chunk], dtype=np.int64)
                    cc = 10.0 ** np.array([k[1] for k in chunk])
                    d = np.asarray(self.bank.distances(self.stimuli.render(ii, cc), blank, ii), dtype=np.float64)
                    self.n_images += len(chunk)
                    for k, row in zip(chunk, d, strict=True):
                        self._cache[k] = row
        return np.stack([self._cache[k] for k in keys])


@dataclass(frozen=True)
class DetectionConfig:
    """Search settings for the predicted thresholds (module docstring)."""

    width_decades: float = 2.5  # bracket: h / 10^W … min(c_max, h · 10^W)
    n_steps: int = 6  # bisection steps (bracket ≤ 2W decades / 2^steps, then log–log interpolation)
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.width_decades <= 0 or self.n_steps < 1 or self.batch_size < 1:
            raise InputError("need width_decades > 0, n_steps ≥ 1 and batch_size ≥ 1.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_bank(bank: DistanceBank, stimuli: ThresholdStimuli, config: DetectionConfig | None = None,
                progress: bool = True) -> pd.DataFrame:
    """Per (stimulus, metric) of one bank: log10 distance at the human threshold, the fitted criterion of the
    stimulus's dataset, the predicted threshold (bisection), its status and the local exponent."""
    config = config or DetectionConfig()
    ev = CachedDistances(bank, stimuli, config.batch_size)
    rows = stimuli.rows
    n, m = len(rows), len(bank.names)
    log_h = rows["log10_threshold"].to_numpy(dtype=np.float64)
    bar = tqdm(total=config.n_steps + 2, desc=f"detect {bank.label}", unit="step", disable=None if progress else True,
               leave=False)
    d_h = ev(np.arange(n), log_h)  # N×M
    bar.update(1)
    with np.errstate(divide="ignore"):
        log_d = np.log10(np.maximum(d_h, np.finfo(float).tiny))
    ds = rows["dataset"].to_numpy()
    log_kappa = np.empty_like(log_d)
    for d in np.unique(ds):
        sel = ds == d
        log_kappa[sel] = log_d[sel].mean(axis=0, keepdims=True)
    # one search per (stimulus, metric); the evaluator is shared, so identical (stimulus, contrast) requests are free
    si, mi = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
    c_max = np.log10((1 - rows["mean"].to_numpy()) / rows["mean"].to_numpy()).clip(max=0.0)
    lo = log_h[si] - config.width_decades
    hi = np.minimum(log_h[si] + config.width_decades, c_max[si])
    search = bisect_log_contrast(lambda s, c: ev(si[s], c)[np.arange(len(s)), mi[s]], 10.0 ** log_kappa[si, mi],
                                 (lo, hi), config.n_steps, on_step=lambda: bar.update(1))
    bar.close()
    pred = search.log10_threshold.copy()
    status = search.status.astype(object)
    status[status == STATUS_BELOW] = CENSORED_LOW
    undet = status == STATUS_UNDETECTED
    status[undet] = CENSORED_HIGH
    pred[undet] = hi[undet]  # censored at the bracket's upper end (a lower bound on the error)
    out = pd.DataFrame({
        "bank": bank.label,
        "metric": np.array(bank.names)[mi],
        "group": np.array(bank.groups)[mi],
        "stimulus": si,
        "dataset": ds[si],
        "source_row": rows["source_row"].to_numpy()[si],
        "stim_id": rows["stim_id"].to_numpy()[si],
        "s_frequency": rows["s_frequency"].to_numpy()[si],
        "ge_sigma": rows["ge_sigma"].to_numpy()[si],
        "area": rows["area"].to_numpy()[si],
        "luminance": rows["luminance"].to_numpy()[si],
        "log10_human": log_h[si],
        "log10_distance": log_d[si, mi],
        "log10_kappa": log_kappa[si, mi],
        "log10_pred": pred,
        "status": status.astype(str),
        "exponent": search.slope,
    })
    out.attrs["n_images"] = ev.n_images
    return out


# --------------------------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class DetectionResult:
    per_row: pd.DataFrame
    scores: pd.DataFrame
    random: pd.DataFrame
    stimuli: ThresholdStimuli
    info: dict[str, Any]


def detect(banks: Sequence[DistanceBank], stimuli: ThresholdStimuli, config: DetectionConfig | None = None,
           progress: bool = True) -> DetectionResult:
    """Run every bank on the stimuli and score it."""
    config = config or DetectionConfig()
    parts, timing, n_images = [], {}, {}
    for bank in banks:
        t0 = time.perf_counter()
        df = detect_bank(bank, stimuli, config, progress)
        timing[bank.label] = time.perf_counter() - t0
        n_images[bank.label] = int(df.attrs.get("n_images", 0))
        parts.append(df)
    per_row = pd.concat(parts, ignore_index=True)
    scores = pd.concat([score_rows(per_row), constant_threshold_reference(stimuli)], ignore_index=True)
    info = {"config": config.to_dict(), "timing_s": timing, "n_images": n_images,
            "metrics": {b.label: list(b.names) for b in banks},
            "banks": {b.label: b.describe() for b in banks if hasattr(b, "describe")}}
    return DetectionResult(per_row, scores, random_summary(scores), stimuli, info)


__all__ = [
    "ClassicBank",
    "DetectionConfig",
    "DetectionResult",
    "DistanceBank",
    "FeatureBank",
    "FeatureMetric",
    "build_banks",
    "constant_threshold_reference",
    "detect",
    "detect_bank",
    "random_summary",
    "score_rows",
    "selection_metrics",
    "soft_selection_metrics",
    "summary_table",
]


#: names that moved up to the report module (which imports this one): old name -> new home
_MOVED_TO_REPORT = {"run_detect": "psychofeat.hvs.detection_report"}


#: deprecated aliases, resolved by name at call time so that this study does not import its report
__getattr__ = moved_names(__name__, _MOVED_TO_REPORT)
