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
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from psychofeat.backbones.base import Backbone
from psychofeat.distance import DEFAULT_EPS
from psychofeat.distance_bank import ReferenceStats, SelectionBank
from psychofeat.errors import InputError, PsychofeatError, unknown_name
from psychofeat.features import FeatureExtractor
from psychofeat.hvs.data import POOLED, aggregated_sha256, dataset_order, order_with_pooled
from psychofeat.hvs.network_csf import STATUS_BELOW, STATUS_OK, STATUS_UNDETECTED, bisect_log_contrast
from psychofeat.hvs.threshold_stimuli import Display, ThresholdStimuli
from psychofeat.selection import ChannelWeights, Selection

CENSORED_LOW, CENSORED_HIGH = "censored_low", "censored_high"


# --------------------------------------------------------------------------------------------------------------------
# Metrics as banks: many distances from one pass over the images
# --------------------------------------------------------------------------------------------------------------------


class DistanceBank(Protocol):
    """A set of metrics evaluated together: ``distances`` returns N×M distances of `images` to `blank`.

    `index` gives the stimulus index of each image (real metrics ignore it; oracle metrics in tests use it)."""

    label: str
    names: list[str]
    groups: list[str]

    def distances(self, images: torch.Tensor, blank: torch.Tensor, index: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FeatureMetric:
    """One deep-feature metric: channels per layer (None = all; `ChannelWeights` for a soft selection), mode,
    and how it is grouped in the report."""

    name: str
    channels: dict[str, np.ndarray | ChannelWeights | None]
    mode: str = "normalized"
    group: str = "all"
    seed: int | None = None


class FeatureBank:
    """Deep-feature metrics that share one backbone and its forward passes.

    Each metric's distance is `PerceptualDistance`'s (SCIENCE.md: per position, the squared difference of the
    features of its channels — unit-normalised across them in "normalized" mode, or their mean squared
    difference in "mse" mode — averaged over positions, layers weighted 1/#layers); tested to agree with it.
    All metrics are read off each forward pass at once by `psychofeat.distance_bank.SelectionBank` in float64,
    whose identity is written in δ = φx − φy so that distances of threshold-level contrasts (δ ~ 1e-4 of the
    features and less) keep their precision (see `distance_from_sums`)."""

    def __init__(self, backbone: Backbone, metrics: Sequence[FeatureMetric], label: str,
                 device: str | torch.device = "cpu", eps: float = DEFAULT_EPS) -> None:
        if not metrics:
            raise InputError("a feature bank needs at least one metric.")
        self.backbone = backbone.to(device)
        self.metrics = list(metrics)
        self.label = label
        self.device = torch.device(device)
        self.eps = eps
        self.names = [m.name for m in self.metrics]
        self.groups = [m.group for m in self.metrics]
        channels = {m.name: {backbone.canonical_layer(k): v for k, v in m.channels.items()} for m in self.metrics}
        self.layers = backbone.depth_order([k for c in channels.values() for k in c])
        self.extractor = FeatureExtractor(backbone, self.layers)
        # float64: threshold-level differences; torch's threads: the float64 products are large enough to gain
        self.bank = SelectionBank(channels, self.layers, backbone.layer_channels(self.layers),
                                  {m.name: m.mode for m in self.metrics}, eps, device,
                                  dtype=torch.float64, threads=None)
        self._columns = [self.bank.column[m.name] for m in self.metrics]
        self._blank: dict[tuple[float, ...], ReferenceStats] = {}

    def describe(self) -> dict[str, Any]:
        """Provenance: network, weights (with parameter hash), preprocessing and layers of this bank."""
        return {"model": self.backbone.name, "weights": self.backbone.weights_info.to_dict(),
                "preprocessing": self.backbone.preprocessing.to_dict(), "layers": self.layers,
                "metrics": {m.name: {"mode": m.mode, "layers": list(m.channels),
                                     "n_channels": {k: (None if v is None else len(getattr(v, "indices", v)))
                                                    for k, v in m.channels.items()}}
                            for m in self.metrics}}

    def _reference(self, blank: torch.Tensor) -> ReferenceStats:
        """The blank's terms of every metric, once per blank: a blank is uniform, so its shape and level identify
        it (datasets shown on displays of different mean level share sizes)."""
        key = (*blank.shape, float(blank.flatten()[0]))
        if key not in self._blank:
            self._blank[key] = self.bank.reference(self.extractor(blank.to(self.device)))
        return self._blank[key]

    def distances(self, images: torch.Tensor, blank: torch.Tensor, index: np.ndarray) -> np.ndarray:
        per_layer = np.empty((images.shape[0], len(self.layers), self.bank.n_columns))
        with torch.inference_mode():
            ref = self._reference(blank)

            def sink(layer: str, feat: torch.Tensor) -> None:
                li = self.layers.index(layer)
                for i in range(feat.shape[0]):  # one image at a time bounds the memory of the sums
                    per_layer[i, li] = self.bank.compare_layer(layer, feat[i : i + 1], ref)[0]

            self.extractor.stream(images.to(self.device), sink)
        return self.bank.combine(per_layer)[:, self._columns]


class ClassicBank:
    """PSNR (as its MSE) and SSIM (as 1 − SSIM), computed in float64 so tiny threshold-level differences
    keep their precision."""

    label = "classic"

    def __init__(self, names: Sequence[str]) -> None:
        unknown = [n for n in names if n not in ("psnr", "ssim")]
        if unknown:
            raise unknown_name("classic metric", unknown[0], ["psnr", "ssim"])
        self.names = list(names)
        self.groups = ["classic"] * len(self.names)

    def distances(self, images: torch.Tensor, blank: torch.Tensor, index: np.ndarray) -> np.ndarray:
        from psychofeat.classic import mse, ssim

        x = images.double()
        y = blank.double().expand_as(x)
        cols = []
        for n in self.names:
            cols.append(mse(x, y) if n == "psnr" else 1.0 - ssim(x, y))
        return torch.stack(cols, dim=1).cpu().numpy()


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
# Scores
# --------------------------------------------------------------------------------------------------------------------


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from psychofeat.stats import srcc

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return srcc(a, b)


def score_rows(per_row: pd.DataFrame) -> pd.DataFrame:
    """One row per (metric, dataset) plus ``pooled``: n, score, rmse, bias, spearman, exponent, n_censored."""
    recs: list[dict[str, Any]] = []
    keys = ["bank", "metric", "group"]
    for (bank, metric, group), g in per_row.groupby(keys, sort=False):
        parts = []
        for ds in dataset_order(g["dataset"].unique()):
            h = g[g["dataset"] == ds]
            err = h["log10_pred"].to_numpy() - h["log10_human"].to_numpy()
            dev = h["log10_distance"].to_numpy() - h["log10_distance"].mean()
            parts.append((ds, h, err, dev))
            recs.append(_score_record(bank, metric, group, ds, h, err, dev))
        if len(parts) > 1:
            h = pd.concat([p[1] for p in parts])
            err = np.concatenate([p[2] for p in parts])
            dev = np.concatenate([p[3] for p in parts])
            recs.append(_score_record(bank, metric, group, POOLED, h, err, dev))
    return pd.DataFrame.from_records(recs)


def _score_record(bank: str, metric: str, group: str, ds: str, h: pd.DataFrame, err: np.ndarray,
                  dev: np.ndarray) -> dict[str, Any]:
    ex = h["exponent"].to_numpy(dtype=float)
    return {
        "bank": bank, "metric": metric, "group": group, "dataset": ds, "n": len(h),
        "score": float(np.sqrt(np.mean(dev**2))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "bias": float(np.mean(err)),
        "spearman": _spearman(h["log10_pred"].to_numpy(), h["log10_human"].to_numpy()),
        "exponent": float(np.nanmedian(ex)) if np.isfinite(ex).any() else float("nan"),
        "n_censored": int((h["status"] != STATUS_OK).sum()),
    }


def constant_threshold_reference(stimuli: ThresholdStimuli) -> pd.DataFrame:
    """The RMSE of predicting one threshold for every stimulus of a dataset (its geometric mean): the standard
    deviation of log10 human thresholds. A metric whose RMSE is not below it has learned nothing about which
    stimuli are harder to see. Rows in the layout of `score_rows` (metric "constant threshold", group "reference")."""
    rows = stimuli.rows
    recs, devs = [], []
    for ds in dataset_order(rows["dataset"].unique()):
        h = rows.loc[rows["dataset"] == ds, "log10_threshold"].to_numpy(dtype=float)
        dev = h - h.mean()
        devs.append(dev)
        recs.append((ds, len(h), dev))
    if len(recs) > 1:
        recs.append((POOLED, sum(r[1] for r in recs), np.concatenate(devs)))
    return pd.DataFrame.from_records([
        {"bank": "reference", "metric": "constant threshold", "group": "reference", "dataset": ds, "n": n,
         "score": float("nan"), "rmse": float(np.sqrt(np.mean(dev**2))), "bias": 0.0, "spearman": float("nan"),
         "exponent": float("nan"), "n_censored": 0}
        for ds, n, dev in recs
    ])


def random_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Random-k selections per dataset: mean and s.d. over seeds of score, rmse and spearman, and where the
    PE top-k, bottom-k and all-channel metrics fall among them (fraction of random seeds with a lower, i.e.
    better, score and RMSE)."""
    recs = []
    for (bank, ds), g in scores.groupby(["bank", "dataset"], sort=False):
        r = g[g["group"] == "pe-random"]
        if r.empty:
            continue
        rec: dict[str, Any] = {"bank": bank, "dataset": ds, "n_seeds": len(r)}
        for col in ("score", "rmse", "spearman"):
            rec[f"{col}_mean"] = float(r[col].mean())
            rec[f"{col}_sd"] = float(r[col].std(ddof=1)) if len(r) > 1 else float("nan")
        for grp in ("pe-top", "pe-bottom", "pe-all"):
            t = g[g["group"] == grp]
            if t.empty:
                continue
            for col in ("score", "rmse"):
                rec[f"{grp}_{col}"] = float(t[col].iloc[0])
                rec[f"{grp}_{col}_frac_random_better"] = float((r[col] < t[col].iloc[0]).mean())
        recs.append(rec)
    cols = ["bank", "dataset", "n_seeds", "score_mean", "score_sd", "rmse_mean", "rmse_sd", "spearman_mean",
            "spearman_sd"]
    return pd.DataFrame.from_records(recs) if recs else pd.DataFrame(columns=cols)


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
        from psychofeat.hvs.detection_report import build_report

        build_report(result, info).write(out_dir / "report.html")
    return result


# --------------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------------


def summary_table(scores: pd.DataFrame, random: pd.DataFrame, datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """Metrics × (dataset: score, rmse, spearman), random-k selections as one 'mean ± sd' row per bank."""
    datasets = list(datasets or order_with_pooled(scores["dataset"].unique()))
    fixed = scores[scores["group"] != "pe-random"]
    rows: list[dict[str, Any]] = []
    for metric, g in fixed.groupby("metric", sort=False):
        g = g.set_index("dataset")
        rec: dict[str, Any] = {"metric": metric, "group": g["group"].iloc[0]}
        for ds in datasets:
            for col in ("score", "rmse", "spearman"):
                v = float(g.loc[ds, col]) if ds in g.index else float("nan")
                rec[f"{ds}:{col}"] = f"{v:.3f}" if math.isfinite(v) else ""
        rows.append(rec)
    for bank, g in random.groupby("bank", sort=False):
        g = g.set_index("dataset")
        rec = {"metric": f"{bank}/pe-random (mean ± sd, {int(g['n_seeds'].iloc[0])} seeds)", "group": "pe-random"}
        for ds in datasets:
            for col in ("score", "rmse", "spearman"):
                rec[f"{ds}:{col}"] = (f"{g.loc[ds, col + '_mean']:.3f} ± {g.loc[ds, col + '_sd']:.3f}"
                                      if ds in g.index else "")
        rows.append(rec)
    return pd.DataFrame.from_records(rows)

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
    "run_detect",
    "score_rows",
    "selection_metrics",
    "soft_selection_metrics",
    "summary_table",
]
