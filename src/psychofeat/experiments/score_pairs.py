"""`psychofeat distance A B`: score two images, or the same-named images of two folders, with named metrics.

The rules are those of `psychofeat iqa` (`experiments.iqa.preflight`): every file is opened before any computation,
so a long run never dies on its last pair; all pairs whose two images differ in size, and all images too small for
a metric, are refused together in one error; greyscale, palette and alpha images are converted to RGB by
`psychofeat.images` and listed (a documented conversion, not an error). `--resize SHORT_SIDE` scales both images
alike after the size check (`datasets.pairs.resize_short_side`).

Folders are paired by exact file name (`A/x.png` with `B/x.png`); names found on one side only are reported, and
files whose suffix is not an image format's are skipped and reported, so a README beside the images is harmless.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from psychofeat.errors import DataMissingError, InputError
from psychofeat.images import IMAGE_SUFFIXES, image_header, list_images, skip_reason
from psychofeat.io import kind_of

#: what `distance` reads from a folder: the common image suffixes plus the netpbm family and GIF
PAIR_SUFFIXES = (*IMAGE_SUFFIXES, ".ppm", ".pgm", ".pnm", ".gif")
DEFAULT_METRICS = ("vgg16-pe-top25",)


@dataclass
class PairPlan:
    """Which files are compared, and what was left out."""

    pairs: list[tuple[Path, Path]]
    only_a: list[str] = field(default_factory=list)  # names in A without a same-named file in B
    only_b: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files that are not images (by suffix)


@dataclass
class PairScores:
    table: pd.DataFrame  # one row per pair: name, a, b, width, height, one column per metric, converted_to_rgb
    plan: PairPlan
    metrics: list[str]


def _images(folder: Path, skipped: list[str]) -> dict[str, Path]:
    images, others = list_images(folder, PAIR_SUFFIXES)
    for p in others:  # files of other formats, and dangling links (listed, never dropped silently); not folders
        if p.is_file():
            skipped.append(str(p))
        elif not p.is_dir():  # a dangling link, a fifo, a device
            skipped.append(f"{p} ({skip_reason(p)})")
    return {p.name: p for p in images}


def match_pairs(a: str | Path, b: str | Path) -> PairPlan:
    """Two image files -> one pair; two folders -> the pairs of same-named images."""
    a, b = Path(a), Path(b)
    for p in (a, b):
        if not p.exists():
            raise DataMissingError(f"{p} does not exist; give two image files or two folders of images.")
    if a.is_file() and b.is_file():
        return PairPlan([(a, b)])
    if not (a.is_dir() and b.is_dir()):
        kinds = ", ".join(f"{p} is {kind_of(os.stat(p)) if p.exists() else 'missing'}" for p in (a, b))
        raise InputError(f"give two image files or two folders, not one of each ({kinds}).")
    skipped: list[str] = []
    ia, ib = _images(a, skipped), _images(b, skipped)
    common = sorted(set(ia) & set(ib))
    plan = PairPlan([(ia[n], ib[n]) for n in common], sorted(set(ia) - set(ib)), sorted(set(ib) - set(ia)), skipped)
    if not plan.pairs:
        raise InputError(
            f"no image file name occurs in both folders ({len(ia)} images in {a}, {len(ib)} in {b}); pairs are "
            f"matched by exact file name, e.g. {a / 'x.png'} with {b / 'x.png'}."
        )
    return plan


def preflight(plan: PairPlan, min_size: int, short_side: int | None) -> dict[Path, str]:
    """Open every file; refuse all size mismatches / too-small images at once; return {path: mode} of non-RGB ones."""
    from psychofeat.images import check_pair_sizes

    return check_pair_sizes(plan.pairs, min_size, short_side)


def check_pair_memory(plan: PairPlan, resize: int | None, deep: bool) -> None:
    """Refuse, before any pixel is read, a pair that will not fit in memory (the largest pair, at its native size
    and after --resize): `psychofeat.resources`."""
    from psychofeat.datasets.pairs import resized_shape
    from psychofeat.resources import check_memory, pair_bytes

    (w, h), _ = max((image_header(pa) for pa, _ in plan.pairs), key=lambda hm: hm[0][0] * hm[0][1])
    need = pair_bytes(w, h, deep=resize is None and deep)
    what = f"the largest pair ({w}x{h} px)"
    if resize is not None:
        rh, rw = resized_shape(h, w, resize)
        need += pair_bytes(rw, rh, deep=deep)
        what = f"the largest pair ({w}x{h} px, {rw}x{rh} px after --resize {resize})"
    check_memory(need, what, "lower --resize, or score smaller images.")


def score_pairs(
    a: str | Path,
    b: str | Path,
    metrics: Sequence[str] = DEFAULT_METRICS,
    resize: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    progress: bool = True,
) -> PairScores:
    """Every metric on every pair (one row per pair), after checking all files first."""
    import torch
    from tqdm.auto import tqdm

    from psychofeat.datasets import load_pair
    from psychofeat.metrics_registry import create_metric, metric_info

    if not metrics:
        raise InputError("name at least one metric (see `psychofeat distance --list-metrics`).")
    infos = [metric_info(m) for m in metrics]  # unknown names fail before any file is read
    min_size = max(i.min_size for i in infos)
    if resize is not None and resize < min_size:
        raise InputError(f"--resize must be at least {min_size} px (the chosen metrics' minimum), got {resize}.")
    plan = match_pairs(a, b)
    converted = preflight(plan, min_size, resize)
    check_pair_memory(plan, resize, any(i.kind == "deep" for i in infos))
    modules: dict[str, Any] = {}
    for info in infos:
        extra: dict[str, Any] = {"dtype": dtype} if info.kind == "deep" else {}
        modules[info.name] = create_metric(info.name, device=device, **extra).eval()
    rows = []
    for pa, pb in tqdm(plan.pairs, desc="pairs", unit="pair", disable=None if progress else True):
        xa, xb = load_pair(pa, pb, resize)
        row: dict[str, Any] = {"name": pa.name, "a": str(pa), "b": str(pb),
                               "width": int(xa.shape[-1]), "height": int(xa.shape[-2])}
        with torch.no_grad():
            for name, module in modules.items():
                row[name] = float(module(xa.to(device), xb.to(device)).reshape(-1)[0])
        row["converted_to_rgb"] = ";".join(f"{side} ({converted[p]})" for side, p in (("a", pa), ("b", pb))
                                           if p in converted)
        rows.append(row)
    return PairScores(pd.DataFrame(rows), plan, [i.name for i in infos])
