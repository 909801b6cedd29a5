"""Check the CSF models against human thresholds: ``psychofeat hvs csf-check``.

Rows: castleCSF's aggregated measurements (averaged over observers) that are achromatic, foveal (0°),
static (0 Hz) Gabors or gratings (`psychofeat.hvs.data.select_csf_rows`); ``datasets="modelfest"`` keeps
ModelFest's 14 rows only. Each row is predicted at its own spatial frequency, luminance and area. Rows
outside the common domain of the models (1/16–64 cpd, 10⁻³–10⁴ cd/m²; see `psychofeat.csf.base`) are
left out and counted, so every model is scored on the same rows and no clamped value enters a score.

Score, per dataset and model: the residuals r = log10 S_data − log10 S_model get one free vertical shift
(least squares in the log domain, i.e. shift = mean r), and the RMSE of r − shift is reported in log10
units (0.1 = a factor 1.26). The shift absorbs what a CSF cannot know about a study — its detection
criterion (e.g. 2AFC 75 % vs 4AFC), observers and display — and gives the relative Mannos–Sakrison curve
its scale; ``rmse_unshifted`` (no shift) is also reported for the absolute models. The ``pooled`` row
combines datasets: RMSE over all rows after each dataset's own shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from psychofeat.csf import CSFModel, available_csfs, get_csf
from psychofeat.errors import InputError
from psychofeat.hvs.data import (
    ACHROMATIC_MAX_ANGLE_DEG,
    GEOMETRY_COLUMNS,
    POOLED,
    aggregated_sha256,
    dataset_order,
    load_measurements,
    order_with_pooled,
    select_csf_rows,
    select_datasets,
)
from psychofeat.report import HtmlReport

DatasetChoice = Literal["modelfest", "all"]
DATASET_CHOICES: tuple[str, ...] = ("modelfest", "all")
TABLE_COLUMNS = ["dataset", "model", "n", "shift", "rmse", "rmse_unshifted"]


@dataclass(frozen=True)
class ShiftFit:
    """Result of fitting log10 data = log10 model + shift by least squares."""

    n: int
    shift: float  # log10 units; data are 10**shift times the model
    rmse: float  # RMSE of the residuals after the shift [log10 units]
    rmse_unshifted: float  # RMSE without the shift [log10 units]


def fit_vertical_shift(log_data: np.ndarray, log_model: np.ndarray) -> ShiftFit:
    """One free vertical shift in the log domain: shift = mean(log_data − log_model) minimises the squared
    residuals; returns it with the RMSE after and before the shift."""
    resid = np.asarray(log_data, dtype=np.float64) - np.asarray(log_model, dtype=np.float64)
    if resid.size == 0 or not np.all(np.isfinite(resid)):
        raise InputError("fit_vertical_shift needs at least one row and finite log sensitivities.")
    shift = float(resid.mean())
    return ShiftFit(
        n=int(resid.size),
        shift=shift,
        rmse=float(np.sqrt(np.mean((resid - shift) ** 2))),
        rmse_unshifted=float(np.sqrt(np.mean(resid**2))),
    )


def resolve_models(names: Sequence[str] | None) -> list[CSFModel]:
    """The CSF models to check (all by default), by name."""
    return [get_csf(n) for n in (names or available_csfs())]


def select_check_rows(
    datasets: DatasetChoice = "all",
    models: Sequence[CSFModel] = (),
    max_angle_deg: float = ACHROMATIC_MAX_ANGLE_DEG,
    measurements: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows to score and a table of the rows left out (dataset, n_out_of_domain).

    `measurements` defaults to the aggregated castleCSF data; pass `load_measurements("individual")` to score
    per-observer rows instead.
    """
    if datasets not in DATASET_CHOICES:
        raise InputError(f"datasets must be one of {', '.join(DATASET_CHOICES)}; got {datasets!r}.")
    df = load_measurements("aggregated") if measurements is None else measurements
    rows = select_datasets(select_csf_rows(df, max_angle_deg), datasets)
    ok = np.ones(len(rows), dtype=bool)
    for model in models:
        ok &= model.in_domain(rows["s_frequency"].to_numpy(), rows["luminance"].to_numpy())
    excluded = (
        rows.loc[~ok].groupby("dataset").size().rename("n_out_of_domain").reset_index()
        if (~ok).any()
        else pd.DataFrame({"dataset": pd.Series(dtype=str), "n_out_of_domain": pd.Series(dtype=int)})
    )
    return rows.loc[ok].reset_index(drop=True), excluded


def predict(rows: pd.DataFrame, models: Sequence[CSFModel]) -> pd.DataFrame:
    """`rows` (geometry, dataset and sensitivity kept) with ``log10_S_data`` and one ``log10_S_<model>`` column each."""
    keep = ["dataset", "stim_id", "col_dir_id", "bkg_id", *GEOMETRY_COLUMNS, "sensitivity"]
    out = rows[[c for c in keep if c in rows.columns]].copy()
    out["log10_S_data"] = np.log10(out["sensitivity"].to_numpy(dtype=np.float64))
    for model in models:
        s = model.sensitivity(out["s_frequency"].to_numpy(), out["luminance"].to_numpy(), out["area"].to_numpy())
        out[f"log10_S_{model.name}"] = np.log10(s)
    return out


def score(pred: pd.DataFrame, models: Sequence[CSFModel]) -> pd.DataFrame:
    """dataset × model table (n, shift, rmse, rmse_unshifted) plus the pooled row per model."""
    records = []
    for model in models:
        col = f"log10_S_{model.name}"
        fits = {
            ds: fit_vertical_shift(g["log10_S_data"].to_numpy(), g[col].to_numpy())
            for ds, g in pred.groupby("dataset", sort=False)
        }
        for ds in dataset_order(list(fits)):
            f = fits[ds]
            records.append({"dataset": ds, "model": model.name, **_fit_dict(f)})
        n = sum(f.n for f in fits.values())
        pooled_sq = sum(f.n * f.rmse**2 for f in fits.values())
        pooled_sq_raw = sum(f.n * f.rmse_unshifted**2 for f in fits.values())
        records.append(
            {
                "dataset": POOLED,
                "model": model.name,
                "n": n,
                "shift": float("nan"),
                "rmse": float(np.sqrt(pooled_sq / n)),
                "rmse_unshifted": float(np.sqrt(pooled_sq_raw / n)),
            }
        )
    return pd.DataFrame.from_records(records, columns=TABLE_COLUMNS)


def _fit_dict(f: ShiftFit) -> dict[str, float | int]:
    return {"n": f.n, "shift": f.shift, "rmse": f.rmse, "rmse_unshifted": f.rmse_unshifted}


def run_csf_check(
    out: str | Path,
    datasets: DatasetChoice = "all",
    model_names: Sequence[str] | None = None,
    overwrite: bool = False,
    max_angle_deg: float = ACHROMATIC_MAX_ANGLE_DEG,
) -> pd.DataFrame:
    """Score the models and write ``csf_check.csv``, ``csf_check_rows.csv`` (per-row predictions),
    ``manifest.json`` and ``report.html`` into `out`. Returns the score table."""
    from psychofeat.io import provenance, run_folder, write_json, write_table

    models = resolve_models(model_names)  # before touching the output folder: a typo must not leave it behind
    with run_folder(out, overwrite) as run:  # built beside `out`, swapped in whole at the end
        out_dir = run.path
        rows, excluded = select_check_rows(datasets, models, max_angle_deg)
        if rows.empty:
            raise InputError(f"no achromatic foveal static rows to check for datasets={datasets!r}.")
        pred = predict(rows, models)
        table = score(pred, models)
        write_table(out_dir / "csf_check.csv", table)
        write_table(out_dir / "csf_check_rows.csv", pred)
        info = provenance(
            command_name="hvs csf-check",
            datasets=datasets,
            models=[m.name for m in models],
            max_angle_deg=max_angle_deg,
            n_rows=len(pred),
            rows_out_of_domain=excluded.to_dict("records"),
            data_sha256=aggregated_sha256(),
        )
        write_json(out_dir / "manifest.json", info)
        build_report(table, pred, models, excluded, info).write(out_dir / "report.html")
    return table


# --- report -------------------------------------------------------------------------------------------------------


def build_report(
    table: pd.DataFrame,
    pred: pd.DataFrame,
    models: Sequence[CSFModel],
    excluded: pd.DataFrame,
    info: dict[str, Any],
) -> HtmlReport:
    """The self-contained HTML report: method, score table, RMSE bars, data vs shifted models per dataset."""
    rep = HtmlReport("CSF check: models vs human contrast thresholds (castleCSF data)")
    rep.paragraph(
        f"{len(pred)} achromatic, foveal, static Gabor/grating rows of castleCSF's aggregated data "
        f"(datasets: {info['datasets']}; achromatic = cone-contrast vector within {info['max_angle_deg']:g} deg "
        "of (1,1,1)). Each row is predicted at its own frequency, luminance and area. Score per dataset: RMSE "
        "of log10 sensitivity after one free vertical shift (least squares in log10; the shift is in log10 "
        "units). 'pooled' = RMSE over all rows after each dataset's own shift."
    )
    for m in models:
        scale = "absolute (1/threshold contrast)" if m.absolute else "relative"
        rep.paragraph(f"{m.name}: {m.reference}; scale {scale}.")
    if not excluded.empty:
        rep.paragraph(
            "Rows outside the models' common domain (1/16-64 cpd, 1e-3-1e4 cd/m2) were left out: "
            + ", ".join(f"{r.dataset} {r.n_out_of_domain}" for r in excluded.itertuples()),
            css_class="note",
        )
    rep.heading("Scores")
    rep.table(_wide_table(table), caption="RMSE of log10 sensitivity after the per-dataset shift (n rows)")
    rep.table(table, caption="csf_check.csv")
    rep.figure(_rmse_figure(table), caption="RMSE per dataset and model (log10 units; lower is better)")
    for ds in dataset_order(pred["dataset"].unique().tolist()):
        rep.heading(f"Dataset {ds}")
        sub = pred[pred["dataset"] == ds]
        shifts = table[table["dataset"] == ds].set_index("model")["shift"].to_dict()
        rep.figure(_dataset_figure(ds, sub, models, shifts), caption=_dataset_caption(ds, sub))
    rep.provenance(info)
    return rep


def _rmse_wide(table: pd.DataFrame) -> pd.DataFrame:
    """dataset rows (ModelFest first, pooled last) × model columns of RMSE."""
    wide = table.pivot(index="dataset", columns="model", values="rmse")
    return wide.loc[order_with_pooled(wide.index)]


def _wide_table(table: pd.DataFrame) -> pd.DataFrame:
    """dataset rows × model columns of RMSE, with n."""
    wide = _rmse_wide(table)
    n = table.drop_duplicates("dataset").set_index("dataset")["n"]
    wide.insert(0, "n", n.loc[wide.index].astype(int))
    return wide.reset_index()


def _rmse_figure(table: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    wide = _rmse_wide(table)
    fig, ax = plt.subplots(figsize=(1.4 + 1.1 * len(wide), 3.2))
    width = 0.8 / max(len(wide.columns), 1)
    x = np.arange(len(wide))
    for j, model in enumerate(wide.columns):
        ax.bar(x + (j - (len(wide.columns) - 1) / 2) * width, wide[model].to_numpy(), width, label=model)
    ax.set_xticks(x, wide.index, rotation=20)
    ax.set_ylabel("RMSE [log10 sensitivity]")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _conditions(sub: pd.DataFrame) -> list[tuple[float, float, pd.DataFrame]]:
    """The (luminance, area) conditions of a dataset, each with its rows sorted by frequency."""
    groups = sub.groupby(["luminance", "area"], sort=True)
    return [(float(lum), float(area), g.sort_values("s_frequency")) for (lum, area), g in groups]


def _dataset_figure(ds: str, sub: pd.DataFrame, models: Sequence[CSFModel], shifts: dict[str, float]) -> Any:
    """One panel per model: data (dots) and the shifted model (lines over each condition's frequency range,
    open squares where a condition has a single row); colour = luminance, line style = area."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    conds = _conditions(sub)
    lums = sorted({c[0] for c in conds})
    areas = sorted({c[1] for c in conds})
    cmap = plt.get_cmap("viridis")
    color = {lum: cmap(x) for lum, x in zip(lums, np.linspace(0.0, 0.9, len(lums)), strict=True)}
    styles = ["-", "--", ":", "-."]
    style = {area: styles[i % len(styles)] for i, area in enumerate(areas)}
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        shift = shifts[model.name]
        for lum, area, g in conds:
            c = color[lum]
            ax.plot(g["s_frequency"], g["log10_S_data"], "o", color=c, ms=4)
            if len(g) > 1:
                f = np.geomspace(g["s_frequency"].min(), g["s_frequency"].max(), 80)
                ax.plot(f, np.log10(model.sensitivity(f, lum, area)) + shift, style[area], color=c, lw=1.2)
            else:
                ax.plot(g["s_frequency"], g[f"log10_S_{model.name}"] + shift, "s", mfc="none", color=c, ms=6)
        ax.set_xscale("log")
        ax.set_xlabel("spatial frequency [cpd]")
        ax.set_title(f"{model.name} (shift {shift:+.2f})", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("log10 sensitivity")
    handles = [Line2D([], [], color=color[lum], marker="o", ls="", label=f"{lum:g} cd/m²") for lum in lums]
    handles += [Line2D([], [], color="0.3", ls=style[a], label=f"{a:.3g} deg²") for a in areas[: len(styles)]]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    fig.suptitle(ds, fontsize=11)
    fig.tight_layout()
    return fig


def _dataset_caption(ds: str, sub: pd.DataFrame) -> str:
    lum = sorted(sub["luminance"].unique())
    return (
        f"{ds}: {len(sub)} rows, {sub['stimulus'].iloc[0]}s, luminance {lum[0]:g}-{lum[-1]:g} cd/m2. Dots: data; "
        "lines / open squares: model + its dataset shift, at each condition's luminance and area."
    )
