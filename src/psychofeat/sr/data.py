"""SR training pairs with stateless patch sampling, and the Set5/Set14/BSD100 benchmark loader.

Training pairs (`TrainPairs.from_data_root`): every HR image of `sr_train/images` is modcropped to a multiple of the
scale and its LR made once with the benchmark's own degradation (`psychofeat.sr.resize.matlab_downscale`); both are
kept in memory as uint8 (≈ 65 MB for the default pool) and cached per process.

Sampling is **stateless**: the patch for position `i` of the global batch at step `step` is a pure function of
`(seed, step, i)`, drawn from its own generator `numpy.random.default_rng([seed, step, i])`: which image
(uniformly over images), where to crop (uniformly over aligned positions; the HR crop is exactly 4× the LR crop),
and which of the 8 flips/90° rotations. Nothing carries over between steps, so

* a resumed run draws exactly the patches the uninterrupted run would have drawn (no sampler state to save);
* DDP rank r of W takes positions r, r+W, r+2W, … of the same global batch (a DistributedSampler without state),
  so the union over ranks is the single-process batch whatever W is;
* there is no worker seeding to get wrong.

JPEG sources (Sun-Hays80, `lossy_source = 1` in SOURCES.csv) are **excluded by default**: they are IJG quality ≈ 75
with 4:2:0 chroma, so as HR targets they teach a model to reproduce blocking and half-resolution chroma, and they
would give the feature losses JPEG artefacts to match. `include_jpeg=True` adds them (80 images, ~190 MB decoded).
The default pool is the 54 lossless images: Kodak24 crops, McMaster, 8 Urban100 and 4 Manga109 pages.
"""

from __future__ import annotations

import csv
import fnmatch
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from psychofeat.config import data_path
from psychofeat.errors import DataMissingError, InputError, unknown_name
from psychofeat.images import load_image_uint8
from psychofeat.sr.resize import matlab_downscale, modcrop

#: number of distinct flip/rotation augmentations (the dihedral group of the square)
N_AUGMENTATIONS = 8


def augment(img: np.ndarray, k: int) -> np.ndarray:
    """Dihedral transform k ∈ 0..7 of an H×W×C image: rotate by 90°·(k mod 4), then flip left-right if k ≥ 4."""
    out = np.rot90(img, k % 4, axes=(0, 1))
    if k >= 4:
        out = out[:, ::-1]
    return out


def patch_rng(seed: int, step: int, index: int) -> np.random.Generator:
    """The generator of one patch; its own stream for every (seed, step, position in the global batch)."""
    return np.random.default_rng([seed, step, index])


def _to_tensor(batch: list[np.ndarray]) -> torch.Tensor:
    arr = np.ascontiguousarray(np.stack(batch))
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)


class TrainPairs:
    """Aligned (HR, LR) uint8 image pairs and the stateless patch sampler over them."""

    def __init__(
        self, hr_images: Sequence[np.ndarray], lr_images: Sequence[np.ndarray], names: Sequence[str], scale: int = 4
    ) -> None:
        if not (len(hr_images) == len(lr_images) == len(names)) or not hr_images:
            raise InputError("TrainPairs needs one LR image and one name per HR image, and at least one image.")
        for hr, lr, name in zip(hr_images, lr_images, names):
            if hr.dtype != np.uint8 or lr.dtype != np.uint8 or hr.ndim != 3 or lr.ndim != 3:
                raise InputError(f"training image {name}: HR and LR must be H×W×3 uint8 arrays.")
            if hr.shape != (lr.shape[0] * scale, lr.shape[1] * scale, lr.shape[2]):
                raise InputError(f"training image {name}: HR {hr.shape} is not {scale}× LR {lr.shape}; modcrop it.")
        self.hr = list(hr_images)
        self.lr = list(lr_images)
        self.names = list(names)
        self.scale = scale

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_data_root(
        cls, *, include_jpeg: bool = False, pattern: str | None = None, scale: int = 4
    ) -> TrainPairs:
        """The `sr_train` pool (see the module docstring); `pattern` (a glob on file names) selects a subset."""
        files = training_files(include_jpeg=include_jpeg, pattern=pattern)
        hr, lr = _load_pairs(tuple(str(f) for f in files), scale)
        return cls(hr, lr, [f.name for f in files], scale)

    def min_lr_size(self) -> int:
        return min(min(lr.shape[:2]) for lr in self.lr)

    def sample(self, seed: int, step: int, index: int, hr_patch: int) -> tuple[np.ndarray, np.ndarray]:
        """The (HR, LR) patch pair for one position of one step's global batch (H×W×3 uint8 views)."""
        if hr_patch % self.scale:
            raise InputError(f"the HR patch size {hr_patch} must be a multiple of the scale {self.scale}.")
        p = hr_patch // self.scale
        rng = patch_rng(seed, step, index)
        i = int(rng.integers(len(self.lr)))
        lr_img, hr_img = self.lr[i], self.hr[i]
        h, w = lr_img.shape[:2]
        if h < p or w < p:
            raise InputError(f"training image {self.names[i]} (LR {h}×{w}) is smaller than the LR patch {p}×{p}.")
        top = int(rng.integers(h - p + 1))
        left = int(rng.integers(w - p + 1))
        k = int(rng.integers(N_AUGMENTATIONS))
        s = self.scale
        lr_patch = lr_img[top : top + p, left : left + p]
        hr_crop = hr_img[top * s : (top + p) * s, left * s : (left + p) * s]
        return augment(hr_crop, k), augment(lr_patch, k)

    def batch(
        self, seed: int, step: int, batch_size: int, hr_patch: int, rank: int = 0, world_size: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's share of the global batch at `step`: (LR N×3×p×p, HR N×3×sp×sp) float in [0, 1].

        `batch_size` is the *global* batch; rank r takes positions r, r+W, … (so W must divide it).
        """
        if world_size < 1 or not 0 <= rank < world_size:
            raise InputError(f"invalid rank {rank} of world size {world_size}.")
        if batch_size % world_size:
            raise InputError(
                f"the global batch {batch_size} must be divisible by the number of processes {world_size}."
            )
        pairs = [self.sample(seed, step, i, hr_patch) for i in range(rank, batch_size, world_size)]
        return _to_tensor([lr for _, lr in pairs]), _to_tensor([hr for hr, _ in pairs])


def training_files(include_jpeg: bool = False, pattern: str | None = None) -> list[Path]:
    """The sr_train image files (sorted), without lossy (JPEG) sources unless asked, optionally glob-filtered."""
    folder = data_path("sr_train", "images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not include_jpeg:
        lossy = _lossy_sources(folder.parent / "SOURCES.csv")
        files = [f for f in files if f.name not in lossy and f.suffix.lower() == ".png"]
    if pattern:
        files = [f for f in files if fnmatch.fnmatch(f.name, pattern)]
    if not files:
        raise DataMissingError(
            f"no training images in {folder} match (include_jpeg={include_jpeg}, pattern={pattern!r})."
        )
    return files


def _lossy_sources(sources_csv: Path) -> set[str]:
    if not sources_csv.is_file():
        return set()
    with open(sources_csv, newline="", encoding="utf-8") as fh:
        return {Path(r["file"]).name for r in csv.DictReader(fh) if r.get("lossy_source") == "1"}


@functools.lru_cache(maxsize=2)
def _load_pairs(files: tuple[str, ...], scale: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Decode, modcrop and degrade once per process (the LR making is the slow part: ~20 ms per image)."""
    hr_list: list[np.ndarray] = []
    lr_list: list[np.ndarray] = []
    for f in tqdm(files, desc="preparing LR", unit="img", disable=None, leave=False):
        hr = modcrop(load_image_uint8(f), scale)
        hr_list.append(np.ascontiguousarray(hr))
        lr_list.append(matlab_downscale(hr, scale))
    return hr_list, lr_list


# ---------------------------------------------------------------------------------------------------------------
# benchmark sets

#: CLI spelling -> folder name in sr_benchmark/
BENCHMARK_SETS = {"set5": "Set5", "set14": "Set14", "bsd100": "BSD100"}


@dataclass(frozen=True)
class BenchmarkPair:
    """One benchmark image: HR (H×W×3 uint8, already a multiple of 4) and the provided LR_x4 file."""

    set: str
    name: str
    canonical_name: str
    hr: np.ndarray
    lr: np.ndarray


def benchmark_folder(set_name: str) -> str:
    """'set14' / 'Set14' -> 'Set14'; unknown names raise with suggestions."""
    key = set_name.strip().lower()
    if key not in BENCHMARK_SETS:
        raise unknown_name("benchmark set", set_name, BENCHMARK_SETS)
    return BENCHMARK_SETS[key]


def load_benchmark(set_name: str, limit: int | None = None, scale: int = 4) -> list[BenchmarkPair]:
    """HR + LR_x4 pairs of one set, in file order; greyscale files (Set14 `bridge`) become RGB (R = G = B)."""
    if scale != 4:
        raise InputError(f"sr_benchmark ships x4 LR files only; scale {scale} is not available.")
    folder = benchmark_folder(set_name)
    root = data_path("sr_benchmark", folder)
    canonical = _canonical_names(root.parent / "MANIFEST.csv", folder)
    hr_files = sorted((root / "HR").glob("*.png"))
    if limit is not None:
        hr_files = hr_files[:limit]
    pairs = []
    for hr_file in hr_files:
        lr_file = root / "LR_x4" / hr_file.name
        hr, lr = load_image_uint8(hr_file), load_image_uint8(lr_file)
        if hr.shape != (lr.shape[0] * scale, lr.shape[1] * scale, 3):
            raise InputError(f"{hr_file}: HR {hr.shape} is not {scale}× LR {lr.shape}.")
        stem = hr_file.stem
        pairs.append(BenchmarkPair(folder, stem, canonical.get(stem, stem), hr, lr))
    if not pairs:
        raise DataMissingError(f"no HR images found in {root / 'HR'}.")
    return pairs


def _canonical_names(manifest: Path, folder: str) -> dict[str, str]:
    if not manifest.is_file():
        return {}
    with open(manifest, newline="", encoding="utf-8") as fh:
        return {r["name"]: r["canonical_name"] for r in csv.DictReader(fh) if r["set"] == folder}


__all__ = [
    "BENCHMARK_SETS",
    "BenchmarkPair",
    "N_AUGMENTATIONS",
    "TrainPairs",
    "augment",
    "benchmark_folder",
    "load_benchmark",
    "patch_rng",
    "training_files",
]
