"""`psychofeat variants run`: the pre-registered comparison of PE variants (docs/variants.md, issue 16).

Variants are CSF choices (one `psychofeat analyze` per CSF) × a weighting of the channels: the hard top-k cut
and the soft weightings of `Selection.select` (soft-pe, soft-rank, soft-mu1, soft-mu2). References: all
channels, random-k (seeded) and, for every soft variant, its own weights shuffled among the responsive channels
(seeded). Every selection of one network is evaluated in one batched pass per benchmark:

* live-subset (or any full-reference set): one forward pass per image, every selection read off the feature maps
  by `psychofeat.distance_bank.SelectionBank` (`psychofeat.experiments.iqa_pairs.measure_pairs`, the path of
  `psychofeat iqa`, including its check against the shared core on the first pair); SRCC with bootstrap CIs and
  paired differences on common resamples;
* detection thresholds: one `psychofeat.metric_banks.FeatureBank` holding every selection (the machinery of
  `psychofeat hvs detect`).

Nothing is fitted to human data; the decision among variants is `psychofeat.experiments.variants_decide`.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from psychofeat.errors import InputError
from psychofeat.selection import Selection

#: weightings compared for every CSF (hard top-k first: the current default)
WEIGHTINGS: tuple[str, ...] = ("top", "soft-pe", "soft-rank", "soft-mu1", "soft-mu2")
ALL = "all"


@dataclass(frozen=True)
class VariantsConfig:
    """Everything that determines the numbers of one `variants run` (one network)."""

    analyses: tuple[tuple[str, str], ...]  # (CSF label, analysis folder or selection.json), default CSF first
    weights: str | None = None  # weights of the network (None: the original ImageNet weights)
    dataset: str = "live-subset"
    root: str | None = None
    fraction: float = 0.25
    weightings: tuple[str, ...] = WEIGHTINGS
    n_seeds: int = 20  # random-k seeds (IQA)
    n_shuffles: int = 10  # shuffled-weight seeds per soft variant (IQA)
    detect_seeds: int = 10  # random-k seeds of the detection benchmark
    iqa: bool = True
    detect: bool = True
    detect_datasets: str = "all"  # threshold datasets ("all": ModelFest, hdrvdp_csf, rovamo1993)
    n_boot: int = 10_000
    boot_seed: int = 0
    n_tests: int = 15  # Bonferroni: the variants tested per network
    threads: int | None = 1

    def __post_init__(self) -> None:
        if not self.analyses:
            raise InputError("give at least one analysis (CSF=folder).")
        bad = [w for w in self.weightings if w not in WEIGHTINGS]
        if bad:
            raise InputError(f"unknown weighting {bad[0]!r}; choose from {', '.join(WEIGHTINGS)}.")
        if not (self.iqa or self.detect):
            raise InputError("nothing to do: both the IQA set and the detection benchmark are switched off.")
        if not 0 < self.fraction <= 1 or self.n_seeds < 2 or self.n_shuffles < 1 or self.n_boot < 100:
            raise InputError("need 0 < fraction ≤ 1, ≥ 2 random seeds, ≥ 1 shuffle and ≥ 100 bootstrap resamples.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------- selections
def load_analysis(path: str | os.PathLike[str]) -> Selection:
    """The selection of an analysis folder (or selection.json), with mu1/mu2 filled from its scores.csv when the
    JSON predates them (they are needed by soft-mu1 / soft-mu2)."""
    p = Path(path)
    sel_path = p / "selection.json" if p.is_dir() else p
    sel = Selection.load(sel_path)
    if sel.pe is None:
        raise InputError(f"{sel_path} carries no PE; give the output of `psychofeat analyze`.")
    if sel.mu1 is None or sel.mu2 is None:
        scores = sel_path.parent / "scores.csv"
        if not scores.is_file():
            raise InputError(f"{sel_path} has no mu1/mu2 and there is no scores.csv next to it; re-run analyze.")
        full = Selection.from_scores(pd.read_csv(scores), sel.model)
        assert full.pe is not None  # from_scores always carries PE
        for k, v in sel.pe.items():
            if not np.allclose(full.pe[k], v, rtol=1e-12, atol=0):
                raise InputError(f"{scores} does not belong to {sel_path} (PE of layer {k} differs).")
        sel.mu1, sel.mu2 = full.mu1, full.mu2
    return sel


def shuffled(soft: Selection, seed: int) -> Selection:
    """`soft`'s weights shuffled among each layer's responsive channels: the chance control of a weighting."""
    return soft.shuffled(seed)


@dataclass(frozen=True)
class Column:
    """One evaluated selection and its role in the comparison."""

    name: str
    kind: str  # variant | reference | random-k | shuffled
    csf: str | None = None
    weighting: str | None = None
    seed: int | None = None
    control_of: str | None = None


def build_selections(
    bases: Mapping[str, Selection], config: VariantsConfig, n_random: int, n_shuffles: int
) -> tuple[dict[str, Selection], list[Column]]:
    """Every variant, `all`, random-k seeds and shuffled controls, keyed by name (the column names)."""
    sels: dict[str, Selection] = {}
    cols: list[Column] = []
    first = next(iter(bases.values()))
    for csf, base in bases.items():
        for w in config.weightings:
            name = f"{csf}/{'top' if w == 'top' else w}"
            sels[name] = base.select(w, config.fraction) if w == "top" else base.select(w)
            cols.append(Column(name, "variant", csf, w))
    sels[ALL] = first.select("all")
    cols.append(Column(ALL, "reference"))
    for s in range(n_random):  # the responsive pool does not depend on the CSF: one set of random-k seeds
        name = f"random-k/s{s}"
        sels[name] = first.select("random", config.fraction, s)
        cols.append(Column(name, "random-k", seed=s))
    for col in [c for c in cols if c.kind == "variant" and c.weighting != "top"]:
        for s in range(n_shuffles):
            name = f"{col.name}/shuffled-s{s}"
            sels[name] = shuffled(sels[col.name], s)
            cols.append(Column(name, "shuffled", col.csf, col.weighting, s, col.name))
    return sels, cols


def pe_rank_agreement(bases: Mapping[str, Selection], fraction: float) -> pd.DataFrame:
    """Per layer and pair of CSFs: Spearman of PE over all channels and over responsive ones, and the share of
    the top-k channels both choose (how much the CSF changes the ranking)."""
    from psychofeat.stats import srcc

    rows = []
    for (ca, a), (cb, b) in itertools.combinations(bases.items(), 2):
        top_a, top_b = a.select("top", fraction), b.select("top", fraction)
        assert a.mu1 is not None and a.mu2 is not None and b.mu1 is not None and b.mu2 is not None  # _with_mu
        assert a.pe is not None and b.pe is not None
        for layer in a.layers:
            live = a.responsive(layer)
            pa, pb = a.pe[layer], b.pe[layer]
            shared = np.intersect1d(top_a.channels[layer], top_b.channels[layer]).size
            rows.append({"csf_a": ca, "csf_b": cb, "layer": layer, "n_channels": pa.size,
                         "n_responsive": int(live.sum()),
                         "spearman_pe": srcc(pa, pb), "spearman_pe_responsive": srcc(pa[live], pb[live]),
                         "spearman_mu1_responsive": srcc(a.mu1[layer][live], b.mu1[layer][live]),
                         "spearman_mu2_responsive": srcc(a.mu2[layer][live], b.mu2[layer][live]),
                         "top_k_shared": shared / top_a.channels[layer].size})
    return pd.DataFrame(rows)


def effective_channels(sel: Selection) -> int | float:
    """Σa² / Σa²-style participation count (Σa)²/Σa² over all layers: the number of channels a soft selection
    effectively uses (a hard one: its count)."""
    if not sel.is_soft:
        return sel.n_selected()
    total = 0.0
    assert sel.channel_weights is not None  # a soft selection has them
    for w in sel.channel_weights.values():
        total += float(w.sum() ** 2 / (w**2).sum())
    return total


# --------------------------------------------------------------------------------------------------- statistics
def bonferroni_level(n_tests: int, alpha: float = 0.05) -> float:
    """Two-sided percentile interval level whose lower end is the Bonferroni-adjusted one-sided gate."""
    return 1.0 - alpha / n_tests


def srcc_table(
    values: Mapping[str, np.ndarray], columns: Sequence[Column], human: np.ndarray, score_type: str,
    sels: Mapping[str, Selection], n_boot: int, seed: int,
) -> tuple[pd.DataFrame, dict[str, np.ndarray], float]:
    """SRCC with 95 % CIs of every column on common resamples; returns the table, the resampled SRCCs, n."""
    from psychofeat.stats import percentile_ci, srcc_with_resamples

    point, boot = srcc_with_resamples({c.name: values[c.name] for c in columns}, human, score_type, n_boot, seed)
    rows = []
    for c in columns:
        lo, hi = percentile_ci(boot[c.name])
        rows.append({"name": c.name, "kind": c.kind, "csf": c.csf, "weighting": c.weighting, "seed": c.seed,
                     "control_of": c.control_of, "srcc": point[c.name], "srcc_lo": lo, "srcc_hi": hi,
                     "n_selected": sels[c.name].n_selected(), "effective_channels": effective_channels(sels[c.name])})
    return pd.DataFrame(rows), boot, float(np.size(human))


def paired_differences(
    table: pd.DataFrame, boot: Mapping[str, np.ndarray], columns: Sequence[Column], n_tests: int
) -> pd.DataFrame:
    """ΔSRCC of every variant vs all, vs random-k (mean over seeds per resample) and, for soft variants, vs its
    shuffled controls (mean over their seeds), with the 95 % and the Bonferroni-level percentile intervals."""
    from psychofeat.stats import percentile_ci

    point = dict(zip(table["name"], table["srcc"], strict=True))
    random_names = [c.name for c in columns if c.kind == "random-k"]
    level = bonferroni_level(n_tests)
    def mean_of(names: Sequence[str]) -> tuple[float, np.ndarray]:
        return float(np.mean([point[n] for n in names])), np.mean([boot[n] for n in names], axis=0)

    refs: dict[str, tuple[float, np.ndarray]] = {ALL: (point[ALL], boot[ALL]), "random-k": mean_of(random_names)}
    rows = []
    for v in (c for c in columns if c.kind == "variant"):
        against = [ALL, "random-k"]
        shuffles = [c.name for c in columns if c.control_of == v.name]
        if shuffles:
            refs[f"shuffled:{v.name}"] = mean_of(shuffles)
            against.append(f"shuffled:{v.name}")
        for ref in against:
            p_ref, b_ref = refs[ref]
            diff = boot[v.name] - b_ref
            finite = diff[np.isfinite(diff)]
            lo, hi = percentile_ci(diff)
            blo, bhi = percentile_ci(diff, level)
            rows.append({"variant": v.name, "csf": v.csf, "weighting": v.weighting,
                         "versus": "shuffled" if ref.startswith("shuffled:") else ref,
                         "srcc_diff": point[v.name] - p_ref, "lo95": lo, "hi95": hi,
                         "lo_bonferroni": blo, "hi_bonferroni": bhi, "bonferroni_level": level,
                         "frac_resamples_le_0": float(np.mean(finite <= 0)), "n_boot": int(finite.size),
                         "gate_passed": bool(blo > 0)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------- benchmarks
def run_iqa_part(
    config: VariantsConfig, net: Any, sels: Mapping[str, Selection], columns: Sequence[Column],
    log: Callable[[str], None], progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """One pass over the image pairs with every selection; (srcc table, differences, per-pair distances, info)."""
    from psychofeat.distance_bank import SelectionBank
    from psychofeat.experiments.iqa import IqaConfig, load_full_reference
    from psychofeat.experiments.iqa_pairs import measure_pairs, preflight

    ds = load_full_reference(IqaConfig(dataset=config.dataset, root=config.root))
    preflight(ds, None)
    layers = list(next(iter(sels.values())).layers)
    bank = SelectionBank(sels, layers, net.layer_channels(layers), "normalized", dtype=torch.float32)
    variants = [c.name for c in columns if c.kind == "variant"]
    verify_names = [n for n in (ALL, *variants[:2]) if n in sels]  # a hard and a soft one (the shared core is slow)
    log(f"{ds.name}: {len(ds)} pairs, {len(sels)} selections in {bank.n_columns} bank columns")
    t0 = time.perf_counter()
    pv = measure_pairs(ds, net, bank, {n: sels[n] for n in verify_names}, None, "cpu", "float32", progress,
                       config.threads, with_baselines=False)
    combined = bank.combine(pv.per_layer)
    values = {c.name: combined[:, bank.column[c.name]] for c in columns}
    table, boot, _ = srcc_table(values, columns, ds.scores, ds.score_type, sels, config.n_boot, config.boot_seed)
    diffs = paired_differences(table, boot, columns, config.n_tests)
    per_pair = ds.to_frame().rename(columns={"score": "human_score"})
    per_pair = pd.concat([per_pair, pd.DataFrame(values)], axis=1)
    info = {"dataset": ds.name, "n_pairs": len(ds), "score_type": ds.score_type, "bank_columns": bank.n_columns,
            "verification": pv.verification, "timing_s": {**pv.timing_s, "total": time.perf_counter() - t0}}
    return table, diffs, per_pair, info


def run_detection_part(
    config: VariantsConfig, net: Any, sels: Mapping[str, Selection], columns: Sequence[Column],
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Detection thresholds of the variants, `all` and the first `detect_seeds` random-k seeds, in one bank."""
    from psychofeat.hvs.detection import detect
    from psychofeat.hvs.threshold_stimuli import threshold_stimuli
    from psychofeat.metric_banks import FeatureBank, FeatureMetric

    keep = [c for c in columns if c.kind in ("variant", "reference")
            or (c.kind == "random-k" and (c.seed or 0) < config.detect_seeds)]
    metrics = [FeatureMetric(c.name, dict(sels[c.name].channel_sets()), group=c.kind, seed=c.seed) for c in keep]
    bank = FeatureBank(net, metrics, label="variants")
    stimuli = threshold_stimuli(config.detect_datasets)
    t0 = time.perf_counter()
    result = detect([bank], stimuli, progress=progress)
    scores = result.scores.merge(pd.DataFrame([{"metric": c.name, "kind": c.kind, "csf": c.csf,
                                                "weighting": c.weighting} for c in keep]),
                                 on="metric", how="left")
    info = {"n_stimuli": len(stimuli), "n_images": result.info["n_images"], "seconds": time.perf_counter() - t0,
            "config": result.info["config"]}
    return scores, info


# ------------------------------------------------------------------------------------------------ the whole run
@dataclass
class VariantsResult:
    config: VariantsConfig
    pe_rank: pd.DataFrame
    iqa: pd.DataFrame | None
    differences: pd.DataFrame | None
    per_pair: pd.DataFrame | None
    detection: pd.DataFrame | None
    info: dict[str, Any] = field(default_factory=dict)


def run_variants(config: VariantsConfig, log: Callable[[str], None] = lambda s: None,
                 progress: bool = True) -> VariantsResult:
    """Load the analyses, build every selection, evaluate them on the IQA set and the detection benchmark."""
    import psychofeat.backbones as B

    t0, load0 = time.perf_counter(), os.getloadavg()
    bases = {csf: load_analysis(path) for csf, path in config.analyses}
    net = B.load_backbone("vgg16" if not bases else next(iter(bases.values())).model, config.weights)
    for csf, sel in bases.items():
        try:
            sel.check_backbone(net)
        except InputError as exc:
            raise InputError(f"analysis {csf!r}: {exc}") from exc
    layer_sets = {tuple(s.layers) for s in bases.values()}
    if len(layer_sets) != 1:
        raise InputError("the analyses cover different layers; run them with the same --layers.")
    pe_rank = pe_rank_agreement(bases, config.fraction)
    sels, columns = build_selections(bases, config, config.n_seeds, config.n_shuffles)
    table = diffs = per_pair = None
    iqa_info: dict[str, Any] = {}
    if config.iqa:
        table, diffs, per_pair, iqa_info = run_iqa_part(config, net, sels, columns, log, progress)
    detection, det_info = None, dict[str, Any]()
    if config.detect:
        log("detection thresholds ...")
        detection, det_info = run_detection_part(config, net, sels, columns, progress)
    info = {"config": config.to_dict(), "model": net.name, "weights": net.weights_info.to_dict(),
            "analyses": {csf: {"path": str(p), "analysis": bases[csf].provenance.get("analysis")}
                         for csf, p in config.analyses},
            "iqa": iqa_info, "detection": det_info,
            "timing_s": {"total": time.perf_counter() - t0}, "loadavg_start": list(load0),
            "loadavg_end": list(os.getloadavg())}
    return VariantsResult(config, pe_rank, table, diffs, per_pair, detection, info)


def write_variants(result: VariantsResult, out: Path) -> dict[str, Any]:
    """pe_rank_spearman.csv, iqa_variants.csv, iqa_differences.csv, per_pair.csv, detection_variants.csv,
    manifest.json — each written atomically."""
    from psychofeat.io import provenance, write_json, write_table

    out = Path(out)
    write_table(out / "pe_rank_spearman.csv", result.pe_rank)
    outputs = ["pe_rank_spearman.csv"]
    if result.iqa is not None:
        write_table(out / "iqa_variants.csv", result.iqa)
        write_table(out / "iqa_differences.csv", result.differences)
        write_table(out / "per_pair.csv", result.per_pair)
        outputs += ["iqa_variants.csv", "iqa_differences.csv", "per_pair.csv"]
    if result.detection is not None:
        write_table(out / "detection_variants.csv", result.detection)
        outputs.append("detection_variants.csv")
    manifest = provenance(experiment="variants", **result.info, outputs=[*outputs, "manifest.json"])
    write_json(out / "manifest.json", manifest)
    return manifest
