"""Human-scored image sets as plain data: one `Sample` per distorted image, one `Triplet` per 2AFC judgment.

A dataset only *describes* files and scores; images are read on demand (`psychofeat.datasets.pairs`), so
building one is cheap and a missing file is found by `check_files()` before any computation starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd

from psychofeat.config import find_data_root
from psychofeat.errors import DataMissingError, InputError
from psychofeat.stats import ScoreType, check_score_type

#: at most this many missing paths are printed in the error message (all are in `MissingFilesError.missing`)
MAX_LISTED = 50


class MissingFilesError(DataMissingError):
    """Files of a dataset are missing; `missing` holds every one of them, not just the first."""

    def __init__(self, message: str, missing: Sequence[Path]) -> None:
        super().__init__(message)
        self.missing: list[Path] = list(missing)


def bundled_root(name: str, folder: str, layout: str, what: str = "your copy") -> Path:
    """`<data root>/<official folder>` when it exists; otherwise a `DataMissingError` asking for the root."""
    data = find_data_root()
    if data is not None and (data / folder).is_dir():
        return data / folder
    raise DataMissingError(
        f"dataset {name!r} is not bundled: give the folder of {what} as the dataset root (root=...), "
        f"or place it at <data root>/{folder}. Expected layout: {layout}."
    )


def missing_files_error(
    name: str, missing: Sequence[Path], total: int, root: Path | None, hint: str = ""
) -> MissingFilesError:
    """One error listing all missing files (the message shows the first `MAX_LISTED`)."""
    shown = "\n".join(f"  {p}" for p in missing[:MAX_LISTED])
    more = f"\n  ... and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
    where = f" under {root}" if root is not None else ""
    msg = f"{len(missing)} of {total} files of dataset {name!r} are missing{where}:\n{shown}{more}"
    if len(missing) >= total and root is not None:
        msg += f"\nNothing was found: is {root} the dataset's folder?"
    if hint:
        msg += f"\n{hint}"
    return MissingFilesError(msg, missing)


def _find_missing(paths: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    missing: list[Path] = []
    for p in paths:
        if p not in seen:
            seen.add(p)
            if not p.is_file():
                missing.append(p)
    return missing


@dataclass(frozen=True)
class Sample:
    """One distorted image, its reference and the human score of the distorted image.

    `score_type` is "mos" (higher = better quality) or "dmos" (higher = worse). `distortion` is the
    distortion family when the dataset says so ("" otherwise); `meta` holds the rest (level, source names).
    """

    distorted: Path
    reference: Path
    score: float
    score_type: ScoreType
    distortion: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


class FullReferenceDataset(Sequence[Sample]):
    """An ordered set of (distorted, reference, score) samples sharing one score type.

    Order is the source's order and is kept by every method, so per-image results can be aligned with
    `to_frame()` row by row. `by_reference()` groups the samples so that a reference's features are
    computed once.
    """

    def __init__(
        self,
        name: str,
        samples: Iterable[Sample],
        score_type: str,
        root: Path | None = None,
        layout_hint: str = "",
    ) -> None:
        self.name = name
        self.score_type: ScoreType = check_score_type(score_type)
        self.root = root
        self.layout_hint = layout_hint
        self._samples: tuple[Sample, ...] = tuple(samples)
        if not self._samples:
            raise InputError(f"dataset {name!r} has no samples.")
        other = sorted({s.score_type for s in self._samples} - {self.score_type})
        if other:
            raise InputError(f"dataset {name!r} mixes score types: {self.score_type} and {', '.join(other)}.")
        bad = [i for i, s in enumerate(self._samples) if not np.isfinite(s.score)]
        if bad:
            raise InputError(f"dataset {name!r} has non-finite scores in rows {bad[:10]}.")

    # ---- sequence protocol
    def __len__(self) -> int:
        return len(self._samples)

    @overload
    def __getitem__(self, i: int) -> Sample: ...
    @overload
    def __getitem__(self, i: slice) -> FullReferenceDataset: ...
    def __getitem__(self, i: int | slice) -> Sample | FullReferenceDataset:
        if isinstance(i, slice):
            return self.subset(range(*i.indices(len(self))))
        return self._samples[i]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._samples)

    def __repr__(self) -> str:
        return (
            f"FullReferenceDataset({self.name!r}, {len(self)} pairs, {len(self.references())} references, "
            f"{self.score_type.upper()})"
        )

    # ---- views
    @property
    def scores(self) -> np.ndarray:
        """Human scores in sample order (float64)."""
        return np.array([s.score for s in self._samples], dtype=np.float64)

    @property
    def higher_is_better(self) -> bool:
        """True for MOS (quality), False for DMOS (damage)."""
        return self.score_type == "mos"

    def references(self) -> list[Path]:
        """Distinct reference images, in order of first appearance."""
        return list(dict.fromkeys(s.reference for s in self._samples))

    def by_reference(self) -> dict[Path, list[int]]:
        """Sample indices grouped by reference (references in order of first appearance)."""
        groups: dict[Path, list[int]] = {}
        for i, s in enumerate(self._samples):
            groups.setdefault(s.reference, []).append(i)
        return groups

    def subset(self, indices: Iterable[int], name: str | None = None) -> FullReferenceDataset:
        """A dataset of the given samples (in the given order)."""
        return FullReferenceDataset(
            name or self.name, [self._samples[i] for i in indices], self.score_type, self.root, self.layout_hint
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per sample: distorted, reference, score, score_type, distortion, then the metadata keys."""
        rows = []
        for s in self._samples:
            row: dict[str, Any] = {
                "distorted": str(s.distorted),
                "reference": str(s.reference),
                "score": s.score,
                "score_type": s.score_type,
                "distortion": s.distortion,
            }
            row.update({k: v for k, v in s.meta.items() if k not in row})
            rows.append(row)
        return pd.DataFrame(rows)

    # ---- files
    def missing_files(self) -> list[Path]:
        """Every distorted or reference file that does not exist (each listed once, in sample order)."""
        return _find_missing(p for s in self._samples for p in (s.distorted, s.reference))

    def check_files(self) -> None:
        """Raise `MissingFilesError` listing *all* missing files, or return quietly."""
        missing = self.missing_files()
        if missing:
            total = len(set(p for s in self._samples for p in (s.distorted, s.reference)))
            raise missing_files_error(self.name, missing, total, self.root, self.layout_hint)


@dataclass(frozen=True)
class Triplet:
    """A 2AFC judgment: which of p0, p1 is closer to the reference.

    `h` is the fraction of humans who chose **p0** (SCIENCE.md). BAPPS stores the opposite fraction
    (`judge` = preference for p1); its loader converts.
    """

    reference: Path
    p0: Path
    p1: Path
    h: float
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


class TwoAFCDataset(Sequence[Triplet]):
    """An ordered set of 2AFC triplets (BAPPS style), scored with `psychofeat.stats.two_afc`."""

    def __init__(self, name: str, triplets: Iterable[Triplet], root: Path | None = None, layout_hint: str = "") -> None:
        self.name = name
        self.root = root
        self.layout_hint = layout_hint
        self._triplets: tuple[Triplet, ...] = tuple(triplets)
        if not self._triplets:
            raise InputError(f"dataset {name!r} has no triplets.")
        bad = [i for i, t in enumerate(self._triplets) if np.isfinite(t.h) and not 0.0 <= t.h <= 1.0]
        if bad:
            raise InputError(f"dataset {name!r}: h must lie in [0, 1]; rows {bad[:10]} do not.")

    def __len__(self) -> int:
        return len(self._triplets)

    @overload
    def __getitem__(self, i: int) -> Triplet: ...
    @overload
    def __getitem__(self, i: slice) -> TwoAFCDataset: ...
    def __getitem__(self, i: int | slice) -> Triplet | TwoAFCDataset:
        if isinstance(i, slice):
            return TwoAFCDataset(self.name, self._triplets[i], self.root, self.layout_hint)
        return self._triplets[i]

    def __iter__(self) -> Iterator[Triplet]:
        return iter(self._triplets)

    def __repr__(self) -> str:
        return f"TwoAFCDataset({self.name!r}, {len(self)} triplets)"

    @property
    def h(self) -> np.ndarray:
        """Fraction of humans who chose p0, per triplet (NaN where the judgment file is missing)."""
        return np.array([t.h for t in self._triplets], dtype=np.float64)

    def to_frame(self) -> pd.DataFrame:
        """One row per triplet: reference, p0, p1, h, then the metadata keys."""
        rows = []
        for t in self._triplets:
            row: dict[str, Any] = {"reference": str(t.reference), "p0": str(t.p0), "p1": str(t.p1), "h": t.h}
            row.update({k: v for k, v in t.meta.items() if k not in row})
            rows.append(row)
        return pd.DataFrame(rows)

    def missing_files(self) -> list[Path]:
        """Every image or judgment file that does not exist."""
        paths: list[Path] = []
        for t in self._triplets:
            paths += [t.reference, t.p0, t.p1]
            judge = t.meta.get("judge_file")
            if judge is not None:
                paths.append(Path(judge))
        return _find_missing(paths)

    def check_files(self) -> None:
        """Raise `MissingFilesError` listing *all* missing files, or return quietly."""
        missing = self.missing_files()
        if missing:
            total = 4 * len(self._triplets)
            raise missing_files_error(self.name, missing, total, self.root, self.layout_hint)
