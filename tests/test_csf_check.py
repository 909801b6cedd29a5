"""CSF check: the shift fit against an independent optimiser and closed forms, the pooled score, row
selection on the real data, and the CLI end to end (files, manifest, report, overwrite refusal)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar

from psychofeat.cli import main
from psychofeat.csf import get_csf
from psychofeat.errors import InputError
from psychofeat.hvs.csf_check import POOLED, fit_vertical_shift, resolve_models, score, select_check_rows


def test_shift_fit_recovers_a_known_offset() -> None:
    rng = np.random.default_rng(0)
    model = rng.normal(size=50)
    noise = rng.normal(scale=0.1, size=50)
    noise -= noise.mean()
    fit = fit_vertical_shift(model + 0.7 + noise, model)
    assert fit.n == 50
    assert fit.shift == pytest.approx(0.7, abs=1e-12)
    assert fit.rmse == pytest.approx(np.sqrt(np.mean(noise**2)), rel=1e-12)
    assert fit.rmse_unshifted == pytest.approx(np.sqrt(np.mean((0.7 + noise) ** 2)), rel=1e-12)


def test_shift_fit_is_the_least_squares_optimum() -> None:
    rng = np.random.default_rng(1)
    data, model = rng.normal(size=30), rng.normal(size=30)
    best = minimize_scalar(lambda c: np.mean((data - model - c) ** 2), bracket=(-5, 5), tol=1e-12)
    fit = fit_vertical_shift(data, model)
    assert fit.shift == pytest.approx(best.x, abs=1e-6)
    assert fit.rmse == pytest.approx(np.sqrt(best.fun), rel=1e-9)


def test_shift_fit_rejects_empty_or_nonfinite_input() -> None:
    with pytest.raises(InputError):
        fit_vertical_shift(np.array([]), np.array([]))
    with pytest.raises(InputError):
        fit_vertical_shift(np.array([1.0, np.nan]), np.array([0.0, 0.0]))


def test_score_fits_one_shift_per_dataset_and_pools_the_residuals() -> None:
    models = resolve_models(["mannos_sakrison"])
    col = "log10_S_mannos_sakrison"
    pred = pd.DataFrame(
        {
            "dataset": ["b", "b", "modelfest", "modelfest", "modelfest"],
            "log10_S_data": [1.1, 0.9, 2.0, 2.2, 2.4],
            col: [0.0, 0.0, 0.0, 0.0, 0.0],
        }
    )
    table = score(pred, models)
    assert table["dataset"].tolist() == ["modelfest", "b", POOLED]  # ModelFest first
    mf = table.iloc[0]
    assert mf["shift"] == pytest.approx(2.2) and mf["rmse"] == pytest.approx(np.sqrt(0.08 / 3))
    assert table.iloc[1]["shift"] == pytest.approx(1.0) and table.iloc[1]["rmse"] == pytest.approx(0.1)
    pooled = table.iloc[2]
    assert pooled["n"] == 5 and np.isnan(pooled["shift"])
    assert pooled["rmse"] == pytest.approx(np.sqrt((0.08 + 0.02) / 5))


def test_check_rows_share_one_domain(data_root: Path) -> None:
    models = resolve_models(None)
    rows, excluded = select_check_rows("all", models)
    assert set(rows["dataset"]) == {"modelfest", "hdrvdp_csf", "rovamo1993", "virsu1979", "wright1983"}
    # hdrvdp_csf's 2e-5 and 2e-4 cd/m² rows lie below the models' 1e-3 cd/m² limit
    assert excluded.set_index("dataset")["n_out_of_domain"].to_dict() == {"hdrvdp_csf": 6}
    for m in models:
        assert m.in_domain(rows["s_frequency"], rows["luminance"]).all()
    mf, none_out = select_check_rows("modelfest", models)
    assert len(mf) == 14 and none_out.empty
    with pytest.raises(InputError):
        select_check_rows("everything", models)  # type: ignore[arg-type]


def test_cli_csf_check_on_modelfest(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "check"
    assert main(["hvs", "csf-check", "--datasets", "modelfest", "--out", str(out)]) == 0
    table = pd.read_csv(out / "csf_check.csv")
    assert table.columns.tolist() == ["dataset", "model", "n", "shift", "rmse", "rmse_unshifted"]
    assert sorted(table["model"].unique()) == ["barten", "castle", "mannos_sakrison"]
    mf = table[table["dataset"] == "modelfest"].set_index("model")
    assert (mf["n"] == 14).all()
    # a model of luminance and stimulus size must beat the fixed 1974 curve on ModelFest's mixed-size Gabors
    assert mf.loc["castle", "rmse"] < mf.loc["mannos_sakrison", "rmse"]
    assert mf.loc["barten", "rmse"] < mf.loc["mannos_sakrison", "rmse"]
    rows = pd.read_csv(out / "csf_check_rows.csv")
    castle = get_csf("castle").sensitivity(rows["s_frequency"], rows["luminance"], rows["area"])
    np.testing.assert_allclose(rows["log10_S_castle"], np.log10(castle), rtol=1e-9)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["datasets"] == "modelfest" and manifest["n_rows"] == 14 and "psychofeat_version" in manifest
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 and 'src="http' not in html
    # a second run into the same folder is refused without --overwrite (exit code 2), accepted with it
    assert main(["hvs", "csf-check", "--datasets", "modelfest", "--out", str(out)]) == 2
    assert main(["hvs", "csf-check", "--datasets", "modelfest", "--out", str(out), "--overwrite"]) == 0


def test_cli_reports_unknown_model_as_a_user_error(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x"
    assert main(["hvs", "csf-check", "--models", "barton", "--out", str(out)]) == 2
    assert "barten" in capsys.readouterr().err
    assert not out.exists()  # the typo is caught before the output folder is created


def test_cli_hvs_without_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hvs"]) == 0
    assert "csf-check" in capsys.readouterr().out
