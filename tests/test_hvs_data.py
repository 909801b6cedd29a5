"""castleCSF measurement loader: row counts and anomalies documented in shared/data/hvs/README.md, the joins,
the achromatic rule (synthetic truths and the resulting ids) and the selections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from psychofeat.errors import DataMissingError, InputError
from psychofeat.hvs.data import (
    GEOMETRY_COLUMNS,
    achromatic_angle_deg,
    load_measurements,
    select_achromatic,
    select_csf_rows,
    select_modelfest,
)

LUMINANCE_ONLY_IDS = {1, 23, 41, 54, 92, 93, 95, 96, 99}
C1_IDS = {2, 9, 105, 114}  # "C1" of colorfest, hdr_csf, hdr_csf_disc, hansen2009: 22.4° off the luminance axis


@pytest.fixture(scope="module")
def aggregated(data_root: Path) -> pd.DataFrame:
    return load_measurements("aggregated")


@pytest.fixture(scope="module")
def individual(data_root: Path) -> pd.DataFrame:
    return load_measurements("individual")


def _frame(delta: list[list[float]], bkg: list[list[float]]) -> pd.DataFrame:
    d, b = np.asarray(delta, dtype=float), np.asarray(bkg, dtype=float)
    cols = {"L_delta": d[:, 0], "M_delta": d[:, 1], "S_delta": d[:, 2]}
    return pd.DataFrame(cols | {"bkg_L": b[:, 0], "bkg_M": b[:, 1], "bkg_S": b[:, 2]})


def test_achromatic_angle_of_known_directions() -> None:
    bkg = [[30.0, 15.0, 1.0]] * 4
    delta = [
        [3.0, 1.5, 0.1],  # a scaled copy of the background: luminance only
        [-6.0, -3.0, -0.2],  # a decrement is as achromatic as an increment
        [30.0, 0.0, 0.0],  # L-cone isolating: cone contrasts (1, 0, 0)
        [30.0, -15.0, 0.0],  # L-M opponent: cone contrasts (1, -1, 0), orthogonal to (1, 1, 1)
    ]
    np.testing.assert_allclose(
        achromatic_angle_deg(_frame(delta, bkg)), [0.0, 0.0, np.degrees(np.arccos(1 / np.sqrt(3))), 90.0], atol=1e-6
    )


def test_loads_every_row_with_joins_and_no_inf(aggregated: pd.DataFrame, individual: pd.DataFrame) -> None:
    assert len(aggregated) == 2295 and len(individual) == 7332
    for df in (aggregated, individual):
        assert set(GEOMETRY_COLUMNS) <= set(df.columns)
        assert df[["L_delta", "bkg_L", "achromatic_angle_deg"]].notna().all().all()
        num = df.select_dtypes(include="number")
        assert not np.isinf(num.to_numpy(dtype=float)).any()
    assert {"observer", "age"} <= set(individual.columns)


def test_inf_missing_values_become_nan(aggregated: pd.DataFrame, individual: pd.DataFrame) -> None:
    # README: var_log_cone_contrast missing in 693 (NaN) + 71 (inf, lucassen2018) aggregated rows
    assert aggregated["var_log_cone_contrast"].isna().sum() == 693 + 71
    assert aggregated.loc[aggregated.dataset == "lucassen2018", "var_log_cone_contrast"].isna().all()
    # README: ModelFest's individual rows have age and variance written as inf
    mf = select_modelfest(individual)
    assert len(mf) == 896 and mf["age"].isna().all() and mf["var_log_cone_contrast"].isna().all()


def test_sensitivity_is_the_inverse_threshold_cone_contrast(aggregated: pd.DataFrame) -> None:
    np.testing.assert_allclose(aggregated["sensitivity"], 10.0 ** -aggregated["log_cone_contrast"], rtol=1e-6)


def test_modelfest_rows_are_the_documented_14_gabors(aggregated: pd.DataFrame) -> None:
    mf = select_modelfest(aggregated)
    assert sorted(mf["stim_id"]) == list(range(1, 15))
    assert (mf["luminance"] == 30).all() and (mf["col_dir_id"] == 41).all() and (mf["stimulus"] == "gabor").all()
    assert (mf["eccentricity"] == 0).all() and (mf["t_frequency"] == 0).all()
    fixed_size = mf[mf["stim_id"] <= 10]
    np.testing.assert_allclose(fixed_size["area"], np.pi * 0.5**2, rtol=1e-3)
    assert (mf["achromatic_angle_deg"] < 1e-3).all()
    pd.testing.assert_frame_equal(select_csf_rows(mf), mf)


def test_achromatic_rule_selects_the_luminance_only_directions(aggregated: pd.DataFrame) -> None:
    assert set(select_achromatic(aggregated)["col_dir_id"]) == LUMINANCE_ONLY_IDS
    # the two groups are far apart: any tolerance between 0.5° and 20° gives the same rows
    assert set(select_achromatic(aggregated, 0.5)["col_dir_id"]) == LUMINANCE_ONLY_IDS
    assert set(select_achromatic(aggregated, 20.0)["col_dir_id"]) == LUMINANCE_ONLY_IDS
    assert set(select_achromatic(aggregated, 25.0)["col_dir_id"]) == LUMINANCE_ONLY_IDS | C1_IDS
    with pytest.raises(InputError):
        select_achromatic(aggregated, -1.0)


def test_csf_rows_are_achromatic_foveal_static_gratings(aggregated: pd.DataFrame) -> None:
    rows = select_csf_rows(aggregated)
    assert (rows["eccentricity"] == 0).all() and (rows["t_frequency"] == 0).all()
    assert rows["stimulus"].isin(["gabor", "grating"]).all() and (rows["s_frequency"] > 0).all()
    assert rows["dataset"].value_counts().to_dict() == {
        "hdrvdp_csf": 86,
        "rovamo1993": 46,
        "modelfest": 14,
        "virsu1979": 6,
        "wright1983": 3,
    }


def test_reused_colour_direction_ids_are_joined_per_dataset(data_root: Path, aggregated: pd.DataFrame) -> None:
    dirs = pd.read_csv(data_root / "hvs" / "color_directions.csv")
    assert dirs["col_dir_id"].duplicated().any()  # 110 and 111 are used by two datasets
    raw = pd.read_csv(data_root / "hvs" / "data_aggregated.csv")
    merged = raw.merge(dirs, on=["col_dir_id", "dataset"])
    assert len(merged) == len(aggregated)
    np.testing.assert_array_equal(merged["S_delta"].to_numpy(), aggregated["S_delta"].to_numpy())


def test_missing_data_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSYCHOFEAT_DATA_ROOT", str(tmp_path))
    with pytest.raises(DataMissingError, match="PSYCHOFEAT_DATA_ROOT"):
        load_measurements()


def test_unknown_kind_is_an_input_error() -> None:
    with pytest.raises(InputError):
        load_measurements("pooled")  # type: ignore[arg-type]
