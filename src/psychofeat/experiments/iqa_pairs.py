"""The image pairs of `psychofeat iqa`: checks before any computation and one pass measuring every pair.

Every image goes through the network once (references once), every selection and every channel is read off the
stored feature maps by `psychofeat.distance_bank.SelectionBank`, and the first pair is recomputed with the shared
core (`verify_pair`). Shared by `psychofeat.experiments.iqa` and `psychofeat.experiments.variants`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from psychofeat.backbones.base import Backbone
from psychofeat.classic import psnr, ssim
from psychofeat.datasets import FullReferenceDataset, check_same_size, resize_short_side
from psychofeat.distance_bank import SelectionBank, direct_distances, single_threaded
from psychofeat.features import FeatureExtractor
from psychofeat.images import check_pair, check_pair_sizes, load_image
from psychofeat.metric import MIN_SIZE
from psychofeat.precision import compute_context, resolve_dtype
from psychofeat.selection import Selection

#: PSNR of identical images is +inf; it is reported as this many dB so that every statistic stays finite
PSNR_CAP_DB = 100.0
#: the batched distances must equal the shared core's to this relative tolerance (float32 rounding is ~1e-6)
VERIFY_RTOL = 1e-3


def preflight(ds: FullReferenceDataset, short_side: int | None) -> dict[str, Any]:
    """Check every file and pair before any computation; returns the conversions that will be applied.

    Raises one error listing *all* missing files (`MissingFilesError`) or *all* pairs whose two images differ
    in size / are too small, so a long run never dies on its last image. Greyscale (and palette/alpha) images
    are converted to RGB by `psychofeat.images` (documented conversion): they are listed, not refused.
    """
    ds.check_files()
    not_rgb = check_pair_sizes([(s.distorted, s.reference) for s in ds], MIN_SIZE, short_side,
                               subject="distorted images", relation=" from their reference",
                               second="its reference ", fix="fix the dataset")
    grey = sorted(str(p) for p in not_rgb)
    return {"converted_to_rgb": grey, "resize_short_side": short_side}


@dataclass
class PairValues:
    """Everything measured on the pairs, in dataset order."""

    per_layer: np.ndarray  # n × L × columns
    channels: dict[str, np.ndarray]  # layer -> n × C single-channel distances
    psnr_db: np.ndarray
    ssim: np.ndarray
    verification: dict[str, Any]
    timing_s: dict[str, float]


def _features(
    extractor: FeatureExtractor, img: torch.Tensor, device: torch.device, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """One forward pass capturing every needed layer (channels-last input: faster convolutions, free row views)."""
    with torch.no_grad(), compute_context(device, dtype):
        feats = extractor(img.to(device).contiguous(memory_format=torch.channels_last))
    return {k: v.float() for k, v in feats.items()}


def measure_pairs(
    ds: FullReferenceDataset,
    backbone: Backbone,
    bank: SelectionBank,
    verify: Mapping[str, Selection],
    short_side: int | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    progress: bool = True,
    threads: int | None = None,
    with_baselines: bool = True,
) -> PairValues:
    """One forward pass per image (references once), every selection and every channel from the stored maps.

    The forward passes run with `threads` intra-op threads (None: torch's setting); everything else on the CPU
    runs single-threaded (many short operations, see `single_threaded`). `with_baselines=False` skips PSNR and
    SSIM (left NaN) for experiments that compare selections only.
    """
    dev = torch.device(device)
    light = 1 if dev.type == "cpu" else None
    dt = resolve_dtype(dtype, dev)
    extractor = FeatureExtractor(backbone, bank.layers)
    n, n_layers = len(ds), len(bank.layers)
    per_layer = np.full((n, n_layers, bank.n_columns), np.nan)
    channels: dict[str, np.ndarray] = {}
    psnr_db, ssim_v = np.full(n, np.nan), np.full(n, np.nan)
    verification: dict[str, Any] = {}
    t_fwd = t_stats = t_base = 0.0
    bar = tqdm(total=n, desc=f"{ds.name}: pairs", unit="pair", disable=None if progress else True)
    for ref_path, indices in ds.by_reference().items():
        y_raw = load_image(ref_path)
        y = resize_short_side(y_raw, short_side) if short_side else y_raw
        t0 = time.perf_counter()
        with single_threaded(threads):
            fy = _features(extractor, y, dev, dt)
        t1 = time.perf_counter()
        ref = bank.reference(fy)
        t_fwd, t_stats = t_fwd + t1 - t0, t_stats + time.perf_counter() - t1
        for i in indices:
            sample = ds[i]
            x_raw = load_image(sample.distorted)
            check_same_size(x_raw, y_raw, sample.distorted, ref_path)
            x = resize_short_side(x_raw, short_side) if short_side else x_raw
            check_pair(x, y, MIN_SIZE, names=(str(sample.distorted), str(ref_path)))
            t0 = time.perf_counter()
            with single_threaded(threads):
                fx = _features(extractor, x, dev, dt)
            t1 = time.perf_counter()
            per_layer[i], chans = bank.compare(fx, ref)
            t2 = time.perf_counter()
            for k, v in chans.items():
                channels.setdefault(k, np.full((n, v.size), np.nan))[i] = v
            with single_threaded(light):
                if not verification:
                    verification = verify_pair(fx, fy, bank, per_layer[i], verify, str(sample.distorted))
                    verification["seconds"] = time.perf_counter() - t2
                t3 = time.perf_counter()
                if with_baselines:
                    psnr_db[i], ssim_v[i] = baselines(x, y)
            t_fwd, t_stats, t_base = t_fwd + t1 - t0, t_stats + t2 - t1, t_base + time.perf_counter() - t3
            bar.update(1)
            del fx
        del fy, ref
    bar.close()
    timing = {"forward": t_fwd, "selections_and_channels": t_stats, "baselines": t_base}
    return PairValues(per_layer, channels, psnr_db, ssim_v, verification, timing)


def baselines(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """PSNR (dB, capped at `PSNR_CAP_DB` for identical images) and SSIM of one RGB pair in [0, 1]."""
    x64, y64 = x.double(), y.double()
    p = float(psnr(x64, y64)[0])
    return min(p, PSNR_CAP_DB), float(ssim(x64, y64)[0])


def verify_pair(
    fx: Mapping[str, torch.Tensor],
    fy: Mapping[str, torch.Tensor],
    bank: SelectionBank,
    per_layer: np.ndarray,
    selections: Mapping[str, Selection],
    pair: str,
) -> dict[str, Any]:
    """Recompute `selections` on one pair with the shared core; raise if the batched values differ."""
    if not selections:
        return {"checked": []}
    direct = direct_distances(fx, fy, selections, bank.modes, bank.eps)
    worst = 0.0
    for name, d in direct.items():
        batched = per_layer[:, bank.column[name]]
        rel = np.abs(batched - d) / np.maximum(np.abs(d), 1e-30)
        worst = max(worst, float(rel.max()))
    if not worst <= VERIFY_RTOL:
        raise RuntimeError(
            f"internal check failed: batched selection distances differ from psychofeat.distance by {worst:.2e} "
            f"(relative) on {pair}. Please report this with the command line."
        )
    return {"pair": pair, "checked": list(direct), "max_relative_difference": worst, "tolerance": VERIFY_RTOL}


__all__ = ["PSNR_CAP_DB", "VERIFY_RTOL", "PairValues", "baselines", "measure_pairs", "preflight", "verify_pair"]
