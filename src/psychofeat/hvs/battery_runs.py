"""The battery's tests run on metric banks (`psychofeat.hvs.battery` composes them; docs/battery.md).

Each test renders its stimuli (`psychofeat.hvs.battery_stimuli`), runs every image once through every bank
(`sample`: all metrics of a network and every channel's single-channel distance from one forward pass), and scores
the samples (`psychofeat.hvs.battery_scoring`). Detection goes through `psychofeat.hvs.detection.detect_bank`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from psychofeat.errors import InputError
from psychofeat.hvs.battery_scoring import masking_scores, matching_scores
from psychofeat.hvs.battery_stimuli import (
    DETECTION_TESTS,
    MASKING_TESTS,
    MATCHING_TEST,
    MatchingTest,
    Viewing,
    detection_stimuli,
    human_masking,
    human_matching,
    masking_test,
)
from psychofeat.hvs.detection import CachedDistances, DetectionConfig, detect_bank
from psychofeat.hvs.detection_scores import constant_threshold_reference, score_rows
from psychofeat.metric_banks import DistanceBank, FeatureBank
from psychofeat.progress import progress_bar

TESTS = (*DETECTION_TESTS, *MASKING_TESTS, MATCHING_TEST)
RESULT_COLUMNS = ["test", "bank", "metric", "group", "n", "spearman", "rmse", "bias", "spearman_thr", "slope",
                  "n_censored"]
CHANNEL_SCORES = ["masking_coherent_spearman", "masking_coherent_rmse", "masking_incoherent_spearman",
                  "masking_incoherent_rmse", "matching_rmse"]


@dataclass(frozen=True)
class BatteryConfig:
    """Sampling and statistics (docs/battery.md). `step`: log10 spacing of the sampled test contrasts (2^½)."""

    step: float = math.log10(2.0) / 2
    half_width: int = 5  # masking samples: human threshold × 2^(k/2), |k| ≤ 5 (÷/× 5.7)
    detect_half_width: int = 8  # detection bisection bracket: human threshold ÷/× 2^(8/2) = 16
    multiplier_k: int = 2  # CVPR score: multipliers 2^(j/2), |j| ≤ 2 (0.5 … 2)
    matching_range: tuple[float, float] = (-3.0, 0.0)  # log10 test contrasts of the matching test (CVPR: 0.001–1)
    matching_step: float = math.log10(2.0)  # matching samples: factors of 2 (no multipliers needed)
    detect_steps: int = 3
    detection_rows: int | None = 8  # rows per detection dataset, evenly spread (None: all 53; cost)
    search_steps: int = 16
    seeds: int = 20
    fraction: float | None = None
    n_permutations: int = 2000
    perm_seed: int = 0
    batch_size: int = 8
    threads: int | None = 1  # intra-op threads of the selection bank's per-position work (distance_bank)
    quick: bool = False

    def __post_init__(self) -> None:
        if self.step <= 0 or self.matching_step <= 0 or self.multiplier_k < 1 or \
                min(self.half_width, self.detect_half_width) < self.multiplier_k:
            raise InputError("need steps > 0 and half widths ≥ multiplier_k ≥ 1.")
        if self.matching_range[1] > 0 or self.matching_range[0] >= self.matching_range[1]:
            raise InputError("matching_range must be two log10 contrasts lo < hi ≤ 0.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quick_config(**overrides: Any) -> BatteryConfig:
    """`--quick`: few conditions, narrow sampling, 2 seeds, 200 permutations (a smoke test, not a result)."""
    base: dict[str, Any] = {"half_width": 4, "detect_half_width": 4, "seeds": 2, "n_permutations": 200,
                            "detect_steps": 3, "detection_rows": 3, "quick": True}
    base.update(overrides)
    return BatteryConfig(**base)


# ---------------------------------------------------------------------------------------------- evaluation
class MemoBank:
    """A bank whose distances are remembered per (image, reference): the detection search and the CVPR multipliers
    ask for many of the same images."""

    def __init__(self, bank: DistanceBank) -> None:
        self.bank, self.label, self.names, self.groups = bank, bank.label, bank.names, bank.groups
        self._memo: dict[tuple[str, str], np.ndarray] = {}
        self.n_images = 0

    @staticmethod
    def _key(t: torch.Tensor) -> str:
        return hashlib.sha1(t.detach().cpu().numpy().tobytes()).hexdigest()

    def distances(self, images: torch.Tensor, blank: torch.Tensor, index: np.ndarray) -> np.ndarray:
        bk = self._key(blank)
        keys = [(self._key(images[i]), bk) for i in range(images.shape[0])]
        miss = [i for i, k in enumerate(keys) if k not in self._memo]
        if miss:
            d = np.asarray(self.bank.distances(images[miss], blank, np.asarray(index)[miss]), dtype=np.float64)
            self.n_images += len(miss)
            for i, row in zip(miss, d, strict=True):
                self._memo[keys[i]] = row
        return np.stack([self._memo[k] for k in keys])


def bank_distances(bank: DistanceBank, reference: torch.Tensor, images: torch.Tensor, batch_size: int,
                   channels: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Distances N×M of `images` to one `reference` image and, for a `FeatureBank` with `channels`, every channel's
    single-channel distance {layer: N×C} from the same forward pass."""
    n = images.shape[0]
    if not isinstance(bank, FeatureBank):
        return np.asarray(bank.distances(images, reference, np.arange(n)), dtype=np.float64), {}
    sb = bank.bank
    cols = [sb.column[name] for name in bank.names]
    out = np.empty((n, len(cols)))
    chans: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        ref = sb.reference(bank.extractor(reference.to(bank.device)))
        for s in range(0, n, batch_size):
            x = images[s : s + batch_size].to(bank.device)
            per_layer = np.empty((x.shape[0], len(bank.layers), sb.n_columns))

            def sink(layer: str, feat: torch.Tensor, s: int = s, per_layer: np.ndarray = per_layer) -> None:
                li = bank.layers.index(layer)
                for i in range(feat.shape[0]):
                    per_layer[i, li], ch = sb.compare_layer(layer, feat[i : i + 1], ref)
                    if channels:
                        chans.setdefault(layer, np.empty((n, ch.size)))[s + i] = ch

            bank.extractor.stream(x, sink)
            out[s : s + x.shape[0]] = sb.combine(per_layer)[:, cols]
    return out, chans


@dataclass
class Sampled:
    """Distances of every bank (N×M) and of every channel of the channel bank ({layer: N×C}) for one image set."""

    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    channels: dict[str, np.ndarray] = field(default_factory=dict)


def sample(banks: Sequence[DistanceBank], view: Viewing, groups: Sequence[tuple[np.ndarray, np.ndarray]],
           channel_bank: str | None, batch_size: int, desc: str, progress: bool) -> Sampled:
    """Run each (reference luminance 1×S×S, test luminances N×S×S) group through every bank; results stacked."""
    out = Sampled()
    total = sum(len(t) for _, t in groups) * len(banks)
    bar = progress_bar(total, desc, "img", enabled=progress, leave=False)
    for bank in banks:
        parts, chan_parts = [], []
        for ref, tests in groups:
            d, ch = bank_distances(bank, view.images(ref), view.images(tests), batch_size,
                                   channels=bank.label == channel_bank)
            parts.append(d)
            chan_parts.append(ch)
            bar.update(len(tests))
        out.metrics[bank.label] = np.concatenate(parts)
        if bank.label == channel_bank:
            out.channels = {k: np.concatenate([c[k] for c in chan_parts]) for k in chan_parts[0]}
    bar.close()
    return out


# ---------------------------------------------------------------------------------------------- the tests
def _rows(test: str, bank: DistanceBank, scores: dict[str, np.ndarray], n: int) -> pd.DataFrame:
    df = pd.DataFrame({"test": test, "bank": bank.label, "metric": bank.names, "group": bank.groups, "n": n})
    for c in RESULT_COLUMNS[5:]:
        df[c] = scores.get(c, np.full(len(bank.names), np.nan))
    return df


def run_masking(test: str, banks: Sequence[DistanceBank], view: Viewing, config: BatteryConfig,
                channel_bank: str | None, progress: bool) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Results rows, curves and per-channel scores of one masking test."""
    mt = masking_test(test, view)
    human = human_masking(test)
    if config.quick:
        human = human.iloc[:: max(1, len(human) // 3)].reset_index(drop=True)
    k = np.arange(-config.half_width, config.half_width + 1)
    groups, log_c, n_valid, clipped = [], [], [], []
    for cm, h in zip(human["mask_contrast"], human["test_contrast"], strict=True):
        lc = np.log10(h) + k * config.step
        valid = lc <= 0.0  # test contrast ≤ 1
        lum, clip = mt.luminance(cm, 10.0 ** lc[valid])
        ref, _ = mt.luminance(cm, 0.0)
        groups.append((ref, lum))
        log_c.append(lc)
        n_valid.append(int(valid.sum()))
        clipped.append(float(clip.max()))
    smp = sample(banks, view, groups, channel_bank, config.batch_size, test, progress)
    log_c_arr, nv = np.array(log_c), np.array(n_valid)
    center = config.half_width

    def shaped(d: np.ndarray) -> np.ndarray:
        out = np.full((len(groups), len(k), d.shape[1]), np.nan)
        s = 0
        for j, m in enumerate(nv):
            out[j, :m] = d[s : s + m]
            s += m
        return out

    rows, curves = [], []
    hm, ht = human["mask_contrast"].to_numpy(), human["test_contrast"].to_numpy()
    for bank in banks:
        sc = masking_scores(shaped(smp.metrics[bank.label]), log_c_arr, nv, center, config.multiplier_k,
                            config.step, hm, ht, config.search_steps)
        rows.append(_rows(test, bank, sc, len(human)))
        for mi, (name, grp) in enumerate(zip(bank.names, bank.groups, strict=True)):
            if grp != "pe-random":
                curves.append(pd.DataFrame({"test": test, "bank": bank.label, "metric": name, "group": grp,
                                            "x": hm, "reference": np.nan, "human": ht,
                                            "predicted": 10.0 ** sc["pred"][:, mi]}))
    chan: dict[str, Any] = {}  # "_layers": [(layer, n_channels)], then one array of scores per channel score
    if smp.channels:
        layers = list(smp.channels)
        allc = shaped(np.concatenate([smp.channels[lay] for lay in layers], axis=1))
        sc = masking_scores(allc, log_c_arr, nv, center, config.multiplier_k, config.step, hm, ht,
                            config.search_steps)
        chan = {"_layers": [(lay, smp.channels[lay].shape[1]) for lay in layers],
                f"{test}_spearman": sc["spearman"], f"{test}_rmse": sc["rmse"]}
    ref = _reference_masking(test, hm, ht)
    info = {"params": mt.params, "n_images": int(nv.sum() + len(groups)), "max_clipped_fraction": max(clipped)}
    return pd.concat([*rows, ref], ignore_index=True), pd.concat(curves, ignore_index=True), {"channels": chan,
                                                                                             "info": info}


def _reference_masking(test: str, hm: np.ndarray, ht: np.ndarray) -> pd.DataFrame:
    from psychofeat.hvs.battery_scoring import SLOPE_MIN_MASK, ls_slope

    lh = np.log10(ht)
    sel = hm >= SLOPE_MIN_MASK
    return pd.DataFrame([
        {"test": test, "bank": "reference", "metric": "human", "group": "reference", "n": len(hm), "spearman": 1.0,
         "rmse": 0.0, "bias": 0.0, "spearman_thr": 1.0, "slope": ls_slope(np.log10(hm[sel]), lh[sel]),
         "n_censored": 0.0},
        {"test": test, "bank": "reference", "metric": "no masking (constant threshold)", "group": "reference",
         "n": len(hm), "spearman": np.nan, "rmse": float(np.std(lh)), "bias": 0.0, "spearman_thr": np.nan,
         "slope": 0.0, "n_censored": 0.0},
    ])


def run_matching(banks: Sequence[DistanceBank], view: Viewing, config: BatteryConfig, channel_bank: str | None,
                 progress: bool) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Results rows, curves and per-channel scores of the contrast-matching test."""
    mt = MatchingTest()
    pairs = human_matching()
    if config.quick:
        pairs = pairs[pairs["reference_index"].isin([1, 4, 7]) & pairs["test_frequency"].isin([1.0, 5.0, 20.0])]
        pairs = pairs.reset_index(drop=True)
    refs = pairs.drop_duplicates("reference_index")[["reference_index", "reference_contrast"]]
    ref_pos = {int(r): i for i, r in enumerate(refs["reference_index"])}
    pairs = pairs.assign(reference_index=pairs["reference_index"].map(ref_pos))
    freqs = sorted(pairs["test_frequency"].unique())
    lo, hi = config.matching_range
    step = config.matching_step
    k_n = int(math.floor((hi - lo) / step + 1e-9)) + 1
    lo = hi - (k_n - 1) * step  # samples end at the upper contrast
    lc = lo + np.arange(k_n) * step
    blank = mt.blank(view)
    ref_lum = mt.luminance(view, mt.reference_cpd, refs["reference_contrast"].to_numpy())
    groups = [(blank, ref_lum)] + [(blank, mt.luminance(view, f, 10.0 ** lc)) for f in freqs]
    smp = sample(banks, view, groups, channel_bank, config.batch_size, "matching", progress)
    r_n = len(refs)

    def split(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return d[:r_n], d[r_n:].reshape(len(freqs), k_n, d.shape[1])

    rows, curves = [], []
    for bank in banks:
        dr, dt = split(smp.metrics[bank.label])
        sc = matching_scores(dr, dt, lo, step, k_n, pairs, freqs, config.search_steps)
        rows.append(_rows(MATCHING_TEST, bank, sc, len(pairs)))
        for mi, (name, grp) in enumerate(zip(bank.names, bank.groups, strict=True)):
            if grp != "pe-random":
                curves.append(pd.DataFrame({"test": MATCHING_TEST, "bank": bank.label, "metric": name, "group": grp,
                                            "x": pairs["test_frequency"].to_numpy(),
                                            "reference": pairs["reference_contrast"].to_numpy(),
                                            "human": pairs["match_contrast"].to_numpy(),
                                            "predicted": 10.0 ** sc["pred"][:, mi]}))
    chan: dict[str, Any] = {}  # "_layers": [(layer, n_channels)], then one array of scores per channel score
    if smp.channels:
        allc = np.concatenate(list(smp.channels.values()), axis=1)
        dr, dt = split(allc)
        chan = {"_layers": [(lay, v.shape[1]) for lay, v in smp.channels.items()],
                "matching_rmse": matching_scores(dr, dt, lo, step, k_n, pairs, freqs,
                                                 config.search_steps)["rmse"]}
    err = np.log10(pairs["reference_contrast"].to_numpy()) - np.log10(pairs["match_contrast"].to_numpy())
    ref = pd.DataFrame([{"test": MATCHING_TEST, "bank": "reference", "metric": "contrast constancy (match = reference)",
                         "group": "reference", "n": len(pairs), "spearman": np.nan,
                         "rmse": float(np.sqrt(np.mean(err**2))), "bias": float(err.mean()), "spearman_thr": np.nan,
                         "slope": np.nan, "n_censored": 0.0}])
    info = {"background": mt.background, "reference_cpd": mt.reference_cpd, "frequencies": freqs,
            "n_images": int(r_n + len(freqs) * k_n + 1)}
    return pd.concat([*rows, ref], ignore_index=True), pd.concat(curves, ignore_index=True), {"channels": chan,
                                                                                             "info": info}


def run_detection(banks: Sequence[DistanceBank], view: Viewing, config: BatteryConfig,
                  progress: bool) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Detection tests with `detect_bank` (display-model stimuli), plus the CVPR multiplier score."""
    from psychofeat.hvs.battery_scoring import multiplier_spearman

    stim = detection_stimuli(view, max_rows=config.detection_rows)
    test_of = stim.rows["test"].to_numpy()
    dcfg = DetectionConfig(width_decades=config.detect_half_width * config.step, n_steps=config.detect_steps,
                           batch_size=config.batch_size)
    rows, per_row, curves = [], [], []
    log_h = stim.rows["log10_threshold"].to_numpy(dtype=np.float64)
    mean = stim.rows["mean"].to_numpy(dtype=np.float64)
    c_max = np.log10((1 - mean) / mean).clip(max=0.0)
    j = np.arange(-config.multiplier_k, config.multiplier_k + 1)
    idx = np.repeat(np.arange(len(stim)), j.size)
    lc = log_h[idx] + np.tile(j, len(stim)) * config.step
    ok = lc <= c_max[idx]
    n_images = {}
    for bank in banks:
        memo = MemoBank(bank)
        df = detect_bank(memo, stim, dcfg, progress)
        df["test"] = test_of[df["stimulus"].to_numpy()]
        d = CachedDistances(memo, stim, config.batch_size)(idx[ok], lc[ok])
        n_images[bank.label] = memo.n_images
        sc = score_rows(df)
        for test in dict.fromkeys(test_of):
            sel = test_of[idx[ok]] == test
            spear = multiplier_spearman(np.tile(j, len(stim))[ok][sel], d[sel])
            s = sc[sc["dataset"] == DETECTION_TESTS[test]].set_index("metric").loc[bank.names]
            rows.append(_rows(test, bank, {"spearman": spear, "rmse": s["rmse"].to_numpy(),
                                           "bias": s["bias"].to_numpy(), "spearman_thr": s["spearman"].to_numpy(),
                                           "n_censored": s["n_censored"].to_numpy(float)},
                              int(s["n"].iloc[0])))
        per_row.append(df)
        keep = df[df["group"] != "pe-random"]
        t = keep["test"].to_numpy()
        x = np.where(t == "detection_frequency", keep["s_frequency"],
                     np.where(t == "detection_luminance", keep["luminance"], keep["area"]))
        curves.append(pd.DataFrame({"test": t, "bank": bank.label, "metric": keep["metric"].to_numpy(),
                                    "group": keep["group"].to_numpy(), "x": x,
                                    "reference": keep["s_frequency"].to_numpy(),
                                    "human": 10.0 ** keep["log10_human"].to_numpy(),
                                    "predicted": 10.0 ** keep["log10_pred"].to_numpy()}))
    ref = constant_threshold_reference(stim)
    ref = ref[ref["dataset"] != "pooled"]
    test_by_ds = {v: k for k, v in DETECTION_TESTS.items()}
    rows.append(pd.DataFrame({"test": ref["dataset"].map(test_by_ds), "bank": "reference", "metric":
                              "constant threshold", "group": "reference", "n": ref["n"], "spearman": np.nan,
                              "rmse": ref["rmse"], "bias": 0.0, "spearman_thr": np.nan, "slope": np.nan,
                              "n_censored": 0.0}))
    info = {"config": dcfg.to_dict(), "n_images": n_images, "stimuli": stim.describe().to_dict("records")}
    return pd.concat(rows, ignore_index=True), pd.concat(per_row, ignore_index=True), \
        pd.concat(curves, ignore_index=True), info


__all__ = [
    "CHANNEL_SCORES",
    "RESULT_COLUMNS",
    "TESTS",
    "BatteryConfig",
    "MemoBank",
    "Sampled",
    "bank_distances",
    "quick_config",
    "run_detection",
    "run_masking",
    "run_matching",
    "sample",
]
