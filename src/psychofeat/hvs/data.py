"""The castleCSF contrast-sensitivity measurements (18 studies), loaded as tidy tables.

Files (read through the data root: ``<data root>/hvs/``, see `psychofeat.config`):
``data_aggregated.csv`` (sensitivities averaged over observers) and ``data_individual.csv`` (one row per
observer and condition), joined with ``color_directions.csv`` (the modulation direction Δ in CIE 2006 LMS)
and ``backgrounds.csv`` (the background LMS). Units as in the files: luminance cd/m², s_frequency cpd,
t_frequency Hz, ge_sigma and eccentricity degrees, area deg², orientation degrees; ``sensitivity`` is
1 / threshold cone contrast (for an achromatic modulation: 1 / Michelson contrast).

Every column of the source is kept — stimulus geometry included (``ge_sigma``, ``area``, ``orientation``,
``stimulus``, ``ge_lambda``), so the same rows can later be rendered as threshold stimuli — plus:

* ``L_delta, M_delta, S_delta, col_dir_label``: the modulation direction, joined on (col_dir_id, dataset)
  because two ids (110, 111) are used twice in color_directions.csv (hdr_csf_disc and hansen2009);
* ``bkg_L, bkg_M, bkg_S, bkg_label``: the background;
* ``achromatic_angle_deg``: the angle between the cone-contrast vector (ΔL/L, ΔM/M, ΔS/S) and (1, 1, 1).

``inf`` is the source's marker for a missing value (``age``, ``var_log_cone_contrast``): it becomes NaN.

The achromatic rule. A modulation is achromatic when it changes luminance but not chromaticity, i.e. when
it is a scaled copy of its background: all three cone contrasts are equal, so the cone-contrast vector is
parallel to (1, 1, 1). `select_achromatic` keeps rows whose angle is at most ``max_angle_deg``
(default 5°). In the data the angles fall into two clearly separated groups: 0–0.32° (modelfest,
rovamo1993, hdrvdp_csf, laird2006, robson1966, snowden1995, virsu1979, virsu1982, wright1983: col_dir_id
1, 23, 41, 54, 92, 93, 95, 96, 99) and ≥ 22° for everything else, so any threshold between 0.5° and 20°
gives the same rows. Excluded by this rule although their source papers call them achromatic: the "C1"
direction of colorfest, hdr_csf, hdr_csf_disc and hansen2009 (col_dir_id 2, 9, 105, 114), whose recorded
LMS modulation carries 2.2× more S-cone than L/M-cone contrast (22.4° from the luminance axis) — under the
CIE 2006 LMS of the data they are not luminance-only, so a luminance CSF cannot be compared with them on
equal terms. Pass ``max_angle_deg=25`` to include them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from psychofeat.config import DATA_ROOT_ENV, data_path
from psychofeat.errors import DataMissingError, InputError
from psychofeat.io import sha256_file

HVS_DIR = "hvs"
MEASUREMENT_FILES: dict[str, str] = {"aggregated": "data_aggregated.csv", "individual": "data_individual.csv"}
COLOR_DIRECTIONS_FILE = "color_directions.csv"
BACKGROUNDS_FILE = "backgrounds.csv"

#: columns every measurement file must have (the individual file also has observer and age, and no N)
REQUIRED_COLUMNS: tuple[str, ...] = (
    "luminance",
    "s_frequency",
    "t_frequency",
    "orientation",
    "col_dir_id",
    "bkg_id",
    "ge_sigma",
    "ge_lambda",
    "stimulus",
    "area",
    "log_cone_contrast",
    "sensitivity",
    "var_log_cone_contrast",
    "stim_id",
    "dataset",
    "eccentricity",
    "vis_field",
)
#: the stimulus description needed to render a row again (kept by every selection)
GEOMETRY_COLUMNS: tuple[str, ...] = (
    "stimulus",
    "s_frequency",
    "t_frequency",
    "orientation",
    "ge_sigma",
    "ge_lambda",
    "area",
    "eccentricity",
    "vis_field",
    "luminance",
)
#: default tolerance of the achromatic rule (see the module docstring)
ACHROMATIC_MAX_ANGLE_DEG = 5.0
#: the stimulus types a CSF of spatial frequency can predict (discs have s_frequency 0)
PERIODIC_STIMULI: tuple[str, ...] = ("gabor", "grating")

Kind = Literal["aggregated", "individual"]


def hvs_file(name: str) -> Path:
    """Path of a file in ``<data root>/hvs``; `DataMissingError` names the setting to fix when it is absent."""
    try:
        return data_path(HVS_DIR, name)
    except DataMissingError as exc:
        raise DataMissingError(
            f"castleCSF data file hvs/{name} not found: {exc} Point {DATA_ROOT_ENV} (or --data-root) at the shared "
            "data folder that holds hvs/ (castleCSF's data_aggregated.csv, data_individual.csv, "
            "color_directions.csv, backgrounds.csv)."
        ) from exc


def _read_csv(path: Path) -> pd.DataFrame:
    """Read one CSV; ±inf in numeric columns becomes NaN (the source uses inf as a missing-value marker)."""
    df = pd.read_csv(path)
    num = df.select_dtypes(include="number").columns
    df[num] = df[num].replace([np.inf, -np.inf], np.nan)
    return df


@lru_cache(maxsize=8)
def _load_cached(kind: str, measurements: str, directions: str, backgrounds: str) -> pd.DataFrame:
    df = _read_csv(Path(measurements))
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataMissingError(f"{measurements} lacks the columns {missing}; is it castleCSF's {kind} data file?")
    df = _join_color_directions(df, _read_csv(Path(directions)), directions)
    df = _join_backgrounds(df, _read_csv(Path(backgrounds)), backgrounds)
    df["achromatic_angle_deg"] = achromatic_angle_deg(df)
    return df


def load_measurements(kind: Kind = "aggregated") -> pd.DataFrame:
    """castleCSF measurements (``"aggregated"``: 2,295 rows; ``"individual"``: 7,332 rows) with the colour and
    background columns joined and ``achromatic_angle_deg`` added. Returns a fresh copy on every call."""
    if kind not in MEASUREMENT_FILES:
        raise InputError(f"kind must be one of {sorted(MEASUREMENT_FILES)}, got {kind!r}.")
    paths = (hvs_file(MEASUREMENT_FILES[kind]), hvs_file(COLOR_DIRECTIONS_FILE), hvs_file(BACKGROUNDS_FILE))
    return _load_cached(kind, *(str(p.resolve()) for p in paths)).copy()


def _join_color_directions(df: pd.DataFrame, dirs: pd.DataFrame, source: str) -> pd.DataFrame:
    """Attach L/M/S_delta and the label; the key is (col_dir_id, dataset) since ids are reused across datasets."""
    cols = ["col_dir_id", "dataset", "L_delta", "M_delta", "S_delta", "col_dir_label"]
    out = df.merge(dirs[cols], on=["col_dir_id", "dataset"], how="left", validate="many_to_one")
    unmatched = out["L_delta"].isna()
    if unmatched.any():
        bad = out.loc[unmatched, ["dataset", "col_dir_id"]].drop_duplicates().head(5).to_dict("records")
        raise DataMissingError(f"{source} has no colour direction for {int(unmatched.sum())} rows, e.g. {bad}.")
    return out


def _join_backgrounds(df: pd.DataFrame, bkg: pd.DataFrame, source: str) -> pd.DataFrame:
    """Attach the background LMS and label as bkg_L, bkg_M, bkg_S, bkg_label (bkg_id is unique)."""
    b = bkg[["bkg_id", "L", "M", "S", "bkg_label"]].rename(columns={"L": "bkg_L", "M": "bkg_M", "S": "bkg_S"})
    out = df.merge(b, on="bkg_id", how="left", validate="many_to_one")
    unmatched = out["bkg_L"].isna()
    if unmatched.any():
        bad = sorted(out.loc[unmatched, "bkg_id"].unique().tolist())[:5]
        raise DataMissingError(f"{source} has no background for bkg_id {bad} ({int(unmatched.sum())} rows).")
    return out


def achromatic_angle_deg(df: pd.DataFrame) -> pd.Series:
    """Angle [deg] between the cone-contrast vector (ΔL/L, ΔM/M, ΔS/S) and (1, 1, 1); 0 for a pure luminance
    modulation. The sign of Δ is ignored (a decrement is as achromatic as an increment)."""
    delta = df[["L_delta", "M_delta", "S_delta"]].to_numpy(dtype=np.float64)
    bkg = df[["bkg_L", "bkg_M", "bkg_S"]].to_numpy(dtype=np.float64)
    contrast = delta / bkg
    cos = np.abs(contrast.sum(axis=1)) / (np.sqrt(3.0) * np.linalg.norm(contrast, axis=1))
    return pd.Series(np.degrees(np.arccos(np.clip(cos, 0.0, 1.0))), index=df.index, name="achromatic_angle_deg")


def select_achromatic(df: pd.DataFrame, max_angle_deg: float = ACHROMATIC_MAX_ANGLE_DEG) -> pd.DataFrame:
    """Rows whose modulation is luminance-only within `max_angle_deg` (the rule in the module docstring)."""
    if not 0.0 <= max_angle_deg <= 90.0:
        raise InputError(f"max_angle_deg must be between 0 and 90 degrees, got {max_angle_deg}.")
    return df[df["achromatic_angle_deg"] <= max_angle_deg]


def select_foveal(df: pd.DataFrame) -> pd.DataFrame:
    """Rows measured at the fovea (eccentricity 0°)."""
    return df[df["eccentricity"] == 0]


def select_static(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a static stimulus (t_frequency 0 Hz)."""
    return df[df["t_frequency"] == 0]


def select_periodic(df: pd.DataFrame) -> pd.DataFrame:
    """Gabors and gratings with s_frequency > 0: the stimuli a CSF of spatial frequency describes (no discs)."""
    return df[df["stimulus"].isin(PERIODIC_STIMULI) & (df["s_frequency"] > 0)]


def select_modelfest(df: pd.DataFrame) -> pd.DataFrame:
    """The ModelFest rows (Watson 2000): 14 achromatic foveal static Gabors at 30 cd/m² (896 individual rows)."""
    return df[df["dataset"] == "modelfest"]


def select_csf_rows(df: pd.DataFrame, max_angle_deg: float = ACHROMATIC_MAX_ANGLE_DEG) -> pd.DataFrame:
    """Achromatic, foveal, static Gabor/grating rows: what an achromatic static foveal CSF should predict."""
    return select_periodic(select_static(select_foveal(select_achromatic(df, max_angle_deg))))


def select_datasets(df: pd.DataFrame, datasets: str | Sequence[str]) -> pd.DataFrame:
    """Rows of "all" datasets, of one dataset id (e.g. "modelfest") or of a list of ids."""
    if isinstance(datasets, str):
        return df if datasets == "all" else df[df["dataset"] == datasets]
    return df[df["dataset"].isin(list(datasets))]


#: the primary reference, listed first in every table; the label of all datasets taken together, listed last
FIRST_DATASET = "modelfest"
POOLED = "pooled"


def dataset_order(names: Iterable[str]) -> list[str]:
    """ModelFest first, then the others alphabetically."""
    uniq = sorted(set(names))
    return ([FIRST_DATASET] if FIRST_DATASET in uniq else []) + [d for d in uniq if d != FIRST_DATASET]


def order_with_pooled(names: Iterable[str]) -> list[str]:
    """`dataset_order` of the datasets, then the pooled label when present."""
    names = list(names)
    return [*dataset_order(n for n in names if n != POOLED), *([POOLED] if POOLED in names else [])]


def aggregated_sha256() -> dict[str, str]:
    """{file name: sha256} of the aggregated measurements, for manifests."""
    name = MEASUREMENT_FILES["aggregated"]
    return {name: sha256_file(hvs_file(name))}


__all__ = [
    "ACHROMATIC_MAX_ANGLE_DEG",
    "FIRST_DATASET",
    "GEOMETRY_COLUMNS",
    "MEASUREMENT_FILES",
    "POOLED",
    "achromatic_angle_deg",
    "aggregated_sha256",
    "dataset_order",
    "hvs_file",
    "load_measurements",
    "order_with_pooled",
    "select_achromatic",
    "select_csf_rows",
    "select_datasets",
    "select_foveal",
    "select_modelfest",
    "select_periodic",
    "select_static",
]
