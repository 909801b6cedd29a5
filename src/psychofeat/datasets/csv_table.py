"""A full-reference set described by a CSV: the way to evaluate on any data, including your own.

Columns: `distorted`, `reference` (paths), `score` (number), `score_type` ("mos" | "dmos", one value for the
whole file). Relative paths are relative to the CSV's folder, or to `root` when given; any other columns
are kept as metadata (`distortion`, if present, becomes `Sample.distortion`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from psychofeat.datasets.base import FullReferenceDataset, Sample
from psychofeat.errors import DataMissingError, InputError
from psychofeat.stats import check_score_type

REQUIRED = ("distorted", "reference", "score", "score_type")


def load_csv_dataset(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    name: str | None = None,
    score_type: str | None = None,
    check: bool = True,
) -> FullReferenceDataset:
    """Read a dataset CSV (see the module docstring).

    `score_type` may replace a missing `score_type` column; if both are given they must agree.
    `check`: raise `MissingFilesError` listing every missing image.
    """
    csv_path = Path(path).expanduser()
    if not csv_path.is_file():
        raise DataMissingError(f"dataset CSV {csv_path} does not exist.")
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    base = Path(root).expanduser() if root is not None else csv_path.parent
    return dataset_from_frame(table, base, name or csv_path.stem, score_type, str(csv_path), check)


def dataset_from_frame(
    table: pd.DataFrame,
    base: Path,
    name: str,
    score_type: str | None = None,
    source: str = "the table",
    check: bool = True,
) -> FullReferenceDataset:
    """Build a dataset from a table with the CSV's columns (string cells); relative paths join `base`."""
    st = _score_type(table, source, score_type)
    needed = [c for c in REQUIRED if c not in table.columns and not (c == "score_type" and st)]
    if needed:
        raise InputError(
            f"{source} lacks the columns {needed}; a dataset CSV needs the header "
            "distorted,reference,score,score_type (paths relative to the CSV's folder)."
        )
    if not st:
        raise InputError(f"{source} has an empty score_type column; use mos or dmos.")
    scores = pd.to_numeric(table["score"], errors="coerce")
    bad = [int(i) for i in table.index[scores.isna()]]
    if bad:
        raise InputError(f"{source}: missing or non-numeric scores in data rows {[b + 1 for b in bad[:10]]}.")
    extra = [c for c in table.columns if c not in REQUIRED and c != "distortion"]
    samples = [
        Sample(
            distorted=_join(base, str(row["distorted"])),
            reference=_join(base, str(row["reference"])),
            score=float(score),
            score_type=st,  # type: ignore[arg-type]
            distortion=str(row["distortion"]) if "distortion" in table.columns else "",
            meta={c: row[c] for c in extra},
        )
        for (_, row), score in zip(table.iterrows(), scores)
    ]
    ds = FullReferenceDataset(name, samples, st, base, f"Relative paths are taken from {base}.")
    if check:
        ds.check_files()
    return ds


def _score_type(table: pd.DataFrame, source: str, given: str | None) -> str:
    values = sorted({str(v).strip().lower() for v in table["score_type"]}) if "score_type" in table.columns else []
    if len(values) > 1:
        raise InputError(f"{source} mixes score types {values}; one file holds one kind of score.")
    if given is not None:
        st = check_score_type(given)
        if values and values[0] != st:
            raise InputError(f"{source} says score_type={values[0]!r} but {st!r} was requested.")
        return st
    return check_score_type(values[0]) if values and values[0] else ""


def _join(base: Path, rel: str) -> Path:
    p = Path(rel.strip()).expanduser()
    return p if p.is_absolute() else base / p
