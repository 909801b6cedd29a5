"""Scores of the threshold benchmark (``psychofeat hvs detect``, `psychofeat.hvs.detection`): per metric and
dataset, the spread of log distance at the human thresholds and the error of the predicted thresholds; the
constant-threshold reference; random-k selections summarised over seeds; and the summary table of the report and
the command line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from psychofeat.hvs.data import POOLED, dataset_order, order_with_pooled
from psychofeat.hvs.threshold_search import STATUS_OK
from psychofeat.hvs.threshold_stimuli import ThresholdStimuli


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from psychofeat.stats import srcc

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return srcc(a, b)


def score_rows(per_row: pd.DataFrame) -> pd.DataFrame:
    """One row per (metric, dataset) plus ``pooled``: n, score, rmse, bias, spearman, exponent, n_censored."""
    recs: list[dict[str, Any]] = []
    keys = ["bank", "metric", "group"]
    for (bank, metric, group), g in per_row.groupby(keys, sort=False):
        parts = []
        for ds in dataset_order(g["dataset"].unique()):
            h = g[g["dataset"] == ds]
            err = h["log10_pred"].to_numpy() - h["log10_human"].to_numpy()
            dev = h["log10_distance"].to_numpy() - h["log10_distance"].mean()
            parts.append((ds, h, err, dev))
            recs.append(_score_record(bank, metric, group, ds, h, err, dev))
        if len(parts) > 1:
            h = pd.concat([p[1] for p in parts])
            err = np.concatenate([p[2] for p in parts])
            dev = np.concatenate([p[3] for p in parts])
            recs.append(_score_record(bank, metric, group, POOLED, h, err, dev))
    return pd.DataFrame.from_records(recs)


def _score_record(bank: str, metric: str, group: str, ds: str, h: pd.DataFrame, err: np.ndarray,
                  dev: np.ndarray) -> dict[str, Any]:
    ex = h["exponent"].to_numpy(dtype=float)
    return {
        "bank": bank, "metric": metric, "group": group, "dataset": ds, "n": len(h),
        "score": float(np.sqrt(np.mean(dev**2))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "bias": float(np.mean(err)),
        "spearman": _spearman(h["log10_pred"].to_numpy(), h["log10_human"].to_numpy()),
        "exponent": float(np.nanmedian(ex)) if np.isfinite(ex).any() else float("nan"),
        "n_censored": int((h["status"] != STATUS_OK).sum()),
    }


def constant_threshold_reference(stimuli: ThresholdStimuli) -> pd.DataFrame:
    """The RMSE of predicting one threshold for every stimulus of a dataset (its geometric mean): the standard
    deviation of log10 human thresholds. A metric whose RMSE is not below it has learned nothing about which
    stimuli are harder to see. Rows in the layout of `score_rows` (metric "constant threshold", group "reference")."""
    rows = stimuli.rows
    recs, devs = [], []
    for ds in dataset_order(rows["dataset"].unique()):
        h = rows.loc[rows["dataset"] == ds, "log10_threshold"].to_numpy(dtype=float)
        dev = h - h.mean()
        devs.append(dev)
        recs.append((ds, len(h), dev))
    if len(recs) > 1:
        recs.append((POOLED, sum(r[1] for r in recs), np.concatenate(devs)))
    return pd.DataFrame.from_records([
        {"bank": "reference", "metric": "constant threshold", "group": "reference", "dataset": ds, "n": n,
         "score": float("nan"), "rmse": float(np.sqrt(np.mean(dev**2))), "bias": 0.0, "spearman": float("nan"),
         "exponent": float("nan"), "n_censored": 0}
        for ds, n, dev in recs
    ])


def random_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Random-k selections per dataset: mean and s.d. over seeds of score, rmse and spearman, and where the
    PE top-k, bottom-k and all-channel metrics fall among them (fraction of random seeds with a lower, i.e.
    better, score and RMSE)."""
    recs = []
    for (bank, ds), g in scores.groupby(["bank", "dataset"], sort=False):
        r = g[g["group"] == "pe-random"]
        if r.empty:
            continue
        rec: dict[str, Any] = {"bank": bank, "dataset": ds, "n_seeds": len(r)}
        for col in ("score", "rmse", "spearman"):
            rec[f"{col}_mean"] = float(r[col].mean())
            rec[f"{col}_sd"] = float(r[col].std(ddof=1)) if len(r) > 1 else float("nan")
        for grp in ("pe-top", "pe-bottom", "pe-all"):
            t = g[g["group"] == grp]
            if t.empty:
                continue
            for col in ("score", "rmse"):
                rec[f"{grp}_{col}"] = float(t[col].iloc[0])
                rec[f"{grp}_{col}_frac_random_better"] = float((r[col] < t[col].iloc[0]).mean())
        recs.append(rec)
    cols = ["bank", "dataset", "n_seeds", "score_mean", "score_sd", "rmse_mean", "rmse_sd", "spearman_mean",
            "spearman_sd"]
    return pd.DataFrame.from_records(recs) if recs else pd.DataFrame(columns=cols)


def summary_table(scores: pd.DataFrame, random: pd.DataFrame, datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """Metrics × (dataset: score, rmse, spearman), random-k selections as one 'mean ± sd' row per bank."""
    datasets = list(datasets or order_with_pooled(scores["dataset"].unique()))
    fixed = scores[scores["group"] != "pe-random"]
    rows: list[dict[str, Any]] = []
    for metric, g in fixed.groupby("metric", sort=False):
        g = g.set_index("dataset")
        rec: dict[str, Any] = {"metric": metric, "group": g["group"].iloc[0]}
        for ds in datasets:
            for col in ("score", "rmse", "spearman"):
                v = float(g.loc[ds, col]) if ds in g.index else float("nan")
                rec[f"{ds}:{col}"] = f"{v:.3f}" if math.isfinite(v) else ""
        rows.append(rec)
    for bank, g in random.groupby("bank", sort=False):
        g = g.set_index("dataset")
        rec = {"metric": f"{bank}/pe-random (mean ± sd, {int(g['n_seeds'].iloc[0])} seeds)", "group": "pe-random"}
        for ds in datasets:
            for col in ("score", "rmse", "spearman"):
                rec[f"{ds}:{col}"] = (f"{g.loc[ds, col + '_mean']:.3f} ± {g.loc[ds, col + '_sd']:.3f}"
                                      if ds in g.index else "")
        rows.append(rec)
    return pd.DataFrame.from_records(rows)


__all__ = ["constant_threshold_reference", "random_summary", "score_rows", "summary_table"]
