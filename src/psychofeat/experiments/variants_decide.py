"""`psychofeat variants decide`: the pre-registered decision rule of docs/variants.md, applied to the outputs of
`psychofeat variants run` for the ImageNet network and (optionally) the random-weight control.

Gates of a variant V of the ImageNet network (all must pass):
* A: ΔSRCC(V − all) on the IQA set, Bonferroni-level percentile interval above 0;
* B: the same against its chance control (random-k for the hard cut, its own shuffled weights for a soft one);
* C: detection RMSE(V) ≤ RMSE(all) + s on ModelFest and on pooled, s = s.d. of RMSE over the random-k seeds.
Among qualifying variants the largest point ΔSRCC(V − all) wins (tie: lower ModelFest RMSE). The random-weight
network only labels the result: "not specific to learned features" if its V also passes gate A.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from psychofeat.errors import InputError

MODELFEST, POOLED = "modelfest", "pooled"


def _read_optional(folders: Sequence[Path], name: str) -> pd.DataFrame | None:
    """`name` from the first of `folders` that has it (IQA and detection may come from separate runs), else None."""
    for folder in folders:
        path = Path(folder) / name
        if path.is_file():
            return pd.read_csv(path)
    return None


def _read(folders: Sequence[Path], name: str) -> pd.DataFrame:
    """`name` from the first of `folders` that has it; refused with the fix when none has."""
    table = _read_optional(folders, name)
    if table is None:
        raise InputError(f"{name} is in none of {[str(f) for f in folders]}; run `psychofeat variants run` first.")
    return table


def detection_summary(det: pd.DataFrame) -> pd.DataFrame:
    """Per variant: ModelFest and pooled RMSE, and the all-channel and random-k (mean, sd) references."""
    rows = []
    for ds in (MODELFEST, POOLED):
        d = det[det["dataset"] == ds]
        if d.empty:
            continue
        rnd = d[d["kind"] == "random-k"]["rmse"]
        all_rmse = float(d.loc[d["metric"] == "all", "rmse"].iloc[0])
        for _, r in d[d["kind"] == "variant"].iterrows():
            rows.append({"variant": r["metric"], "dataset": ds, "rmse": r["rmse"], "spearman": r["spearman"],
                         "n_censored": r["n_censored"], "rmse_all": all_rmse, "rmse_random_mean": rnd.mean(),
                         "rmse_random_sd": rnd.std(ddof=1), "n_random": rnd.size,
                         "not_worse": bool(r["rmse"] <= all_rmse + rnd.std(ddof=1))})
    return pd.DataFrame(rows)


def gates(diffs: pd.DataFrame, det: pd.DataFrame | None) -> pd.DataFrame:
    """One row per variant: its ΔSRCC vs all / control with the gates A, B, C."""
    rows = []
    summary = detection_summary(det) if det is not None else None
    for v, g in diffs.groupby("variant", sort=False):
        g = g.set_index("versus")
        control = "random-k" if "shuffled" not in g.index else "shuffled"
        row: dict[str, Any] = {"variant": v, "csf": g["csf"].iloc[0], "weighting": g["weighting"].iloc[0],
                               "d_all": g.loc["all", "srcc_diff"], "d_all_lo95": g.loc["all", "lo95"],
                               "d_all_hi95": g.loc["all", "hi95"], "d_all_lo_bonf": g.loc["all", "lo_bonferroni"],
                               "A": bool(g.loc["all", "gate_passed"]), "control": control,
                               "d_control": g.loc[control, "srcc_diff"], "d_control_lo95": g.loc[control, "lo95"],
                               "d_control_hi95": g.loc[control, "hi95"],
                               "d_control_lo_bonf": g.loc[control, "lo_bonferroni"],
                               "B": bool(g.loc[control, "gate_passed"]),
                               "d_random": g.loc["random-k", "srcc_diff"], "d_random_lo95": g.loc["random-k", "lo95"],
                               "d_random_hi95": g.loc["random-k", "hi95"]}
        if summary is not None and not summary.empty:
            s = summary[summary["variant"] == v].set_index("dataset")
            for ds in (MODELFEST, POOLED):
                row[f"rmse_{ds}"] = float(s.loc[ds, "rmse"]) if ds in s.index else np.nan
            row["C"] = all(ds in s.index and bool(s.loc[ds, "not_worse"]) for ds in (MODELFEST, POOLED))
        else:
            row["C"] = False  # no detection result: the gate cannot be passed
        row["qualifies"] = row["A"] and row["B"] and row["C"]
        rows.append(row)
    return pd.DataFrame(rows)


def decide(imagenet: Sequence[Path], random: Sequence[Path] | None = None) -> dict[str, Any]:
    """Apply the rule; returns the gate tables and the decision (which variant, if any, becomes the default)."""
    diffs = _read(imagenet, "iqa_differences.csv")
    det = _read_optional(imagenet, "detection_variants.csv")
    table = gates(diffs, det)
    qual = table[table["qualifies"]]
    decision: dict[str, Any] = {"rule": "docs/variants.md (pre-registered)", "n_variants": len(table),
                                "detection_available": det is not None}
    if qual.empty:
        decision.update(winner=None, change_defaults=False,
                        statement="no pre-registered variant qualifies: every default stays as it is")
    else:
        best = qual.sort_values(["d_all", "rmse_modelfest"], ascending=[False, True]).iloc[0]
        decision.update(winner=best["variant"], csf=best["csf"], weighting=best["weighting"], change_defaults=True)
    control_table = None
    if random is not None:
        rdiffs = _read(random, "iqa_differences.csv")
        rdet = _read_optional(random, "detection_variants.csv")
        control_table = gates(rdiffs, rdet)
        if decision.get("winner"):
            r = control_table[control_table["variant"] == decision["winner"]]
            specific = r.empty or not bool(r["A"].iloc[0])
            decision["specific_to_learned_features"] = bool(specific)
    return {"decision": decision, "imagenet": table, "random": control_table}


# --------------------------------------------------------------------------------------------- tables for notes
def _ci(v: float, lo: float, hi: float, digits: int = 3) -> str:
    return f"{v:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def iqa_markdown(folders: Sequence[Path]) -> str:
    """Per variant: SRCC with its CI and the paired differences vs all, random-k and its shuffled control."""
    table = _read(folders, "iqa_variants.csv")
    diffs = _read(folders, "iqa_differences.csv")
    lines = ["| variant | SRCC [95 % CI] | Δ vs all [95 % CI] | Bonferroni lower | Δ vs random-k [95 % CI] | "
             "Δ vs shuffled [95 % CI] | eff. channels |", "|---|---|---|---|---|---|---:|"]
    for _, r in table[table["kind"] == "variant"].iterrows():
        d = diffs[diffs["variant"] == r["name"]].set_index("versus")
        sh = _ci(*d.loc["shuffled", ["srcc_diff", "lo95", "hi95"]]) if "shuffled" in d.index else "–"
        lines.append(f"| {r['name']} | {r['srcc']:.3f} [{r['srcc_lo']:.3f}, {r['srcc_hi']:.3f}] | "
                     f"{_ci(*d.loc['all', ['srcc_diff', 'lo95', 'hi95']])} | {d.loc['all', 'lo_bonferroni']:+.3f} | "
                     f"{_ci(*d.loc['random-k', ['srcc_diff', 'lo95', 'hi95']])} | {sh} | "
                     f"{r['effective_channels']:.0f} |")
    ref = table[table["name"] == "all"].iloc[0]
    lines.append(f"| all channels | {ref['srcc']:.3f} [{ref['srcc_lo']:.3f}, {ref['srcc_hi']:.3f}] | | | | | "
                 f"{ref['effective_channels']:.0f} |")
    for kind, label in (("random-k", "random-k 25 %"), ("shuffled", "shuffled soft weights (all)")):
        s = table[table["kind"] == kind]["srcc"]
        if not s.empty:
            lines.append(f"| {label}: mean ± sd ({s.size}) [min, max] | {s.mean():.3f} ± {s.std(ddof=1):.3f} "
                         f"[{s.min():.3f}, {s.max():.3f}] | | | | | |")
    return "\n".join(lines)


def detection_markdown(folders: Sequence[Path]) -> str:
    """ModelFest and pooled RMSE / Spearman / censored of every variant, all channels and random-k."""
    det = _read_optional(folders, "detection_variants.csv")
    if det is None:
        return "(no detection run)"

    def cell(ds: str, metric: str, col: str, fmt: str) -> str:
        v = det[(det["dataset"] == ds) & (det["metric"] == metric)][col]
        return format(float(v.iloc[0]), fmt) if not v.empty and np.isfinite(v.iloc[0]) else ""

    def spread(ds: str, col: str) -> str:
        r = det[(det["dataset"] == ds) & (det["kind"] == "random-k")][col]
        return f"{r.mean():.3f} ± {r.std(ddof=1):.3f}" if r.size > 1 else ""

    lines = ["| metric | ModelFest RMSE | ModelFest Spearman | pooled RMSE | pooled Spearman | censored (pooled) |",
             "|---|---:|---:|---:|---:|---:|"]
    shown = det[det["kind"].isin(["variant", "reference"])]["metric"].drop_duplicates()
    for m in shown:
        lines.append(f"| {m} | {cell(MODELFEST, m, 'rmse', '.3f')} | {cell(MODELFEST, m, 'spearman', '.2f')} | "
                     f"{cell(POOLED, m, 'rmse', '.3f')} | {cell(POOLED, m, 'spearman', '.2f')} | "
                     f"{cell(POOLED, m, 'n_censored', '.0f')} |")
    n = int((det[det["dataset"] == MODELFEST]["kind"] == "random-k").sum())
    lines.append(f"| random-k 25 % ({n} seeds, mean ± sd) | {spread(MODELFEST, 'rmse')} | "
                 f"{spread(MODELFEST, 'spearman')} | {spread(POOLED, 'rmse')} | {spread(POOLED, 'spearman')} | |")
    c = "constant threshold"
    lines.append(f"| *{c}* | *{cell(MODELFEST, c, 'rmse', '.3f')}* | | *{cell(POOLED, c, 'rmse', '.3f')}* | | |")
    return "\n".join(lines)


def gates_markdown(table: pd.DataFrame, control: pd.DataFrame | None) -> str:
    lines = ["| variant | A: Δ vs all, Bonferroni lower > 0 | B: vs control | C: detection not worse | qualifies | "
             "random-weight net: A |", "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        ra = "–"
        if control is not None and (control["variant"] == r["variant"]).any():
            c = control[control["variant"] == r["variant"]].iloc[0]
            ra = f"{'yes' if c['A'] else 'no'} ({c['d_all']:+.3f}, lower {c['d_all_lo_bonf']:+.3f})"
        lines.append(f"| {r['variant']} | {'yes' if r['A'] else 'no'} ({r['d_all']:+.3f}, lower "
                     f"{r['d_all_lo_bonf']:+.3f}) | {'yes' if r['B'] else 'no'} ({r['control']}: "
                     f"{r['d_control']:+.3f}, lower "
                     f"{r['d_control_lo_bonf']:+.3f}) | {'yes' if r['C'] else 'no'} | "
                     f"{'**yes**' if r['qualifies'] else 'no'} | {ra} |")
    return "\n".join(lines)


def pe_rank_markdown(folders: Sequence[Path]) -> str:
    """Spearman of PE (responsive channels) between CSF choices, per layer, and the share of common top-k."""
    df = _read(folders, "pe_rank_spearman.csv")
    df["pair"] = df["csf_a"] + "–" + df["csf_b"]
    pairs = list(dict.fromkeys(df["pair"]))
    head = "| layer | " + " | ".join(f"ρ(PE) {p}" for p in pairs) + " | " + \
        " | ".join(f"top-25 % shared {p}" for p in pairs) + " |"
    lines = [head, "|---|" + "---:|" * (2 * len(pairs))]
    for layer, g in df.groupby("layer", sort=False):
        g = g.set_index("pair")
        lines.append(f"| {layer} | " + " | ".join(f"{g.loc[p, 'spearman_pe_responsive']:.3f}" for p in pairs) + " | "
                     + " | ".join(f"{g.loc[p, 'top_k_shared']:.2f}" for p in pairs) + " |")
    return "\n".join(lines)


def summary_markdown(imagenet: Sequence[Path], random: Sequence[Path] | None, res: Mapping[str, Any]) -> str:
    """Every table of the comparison, as quoted in docs/variants.md."""
    parts = ["## PE ranking between CSF choices (ImageNet VGG-16, responsive channels)", pe_rank_markdown(imagenet),
             "## live-subset, ImageNet VGG-16", iqa_markdown(imagenet),
             "## Detection thresholds, ImageNet VGG-16", detection_markdown(imagenet)]
    if random is not None:
        parts += ["## live-subset, random-weight VGG-16 (control)", iqa_markdown(random)]
        if _read_optional(random, "detection_variants.csv") is not None:
            parts += ["## Detection thresholds, random-weight VGG-16", detection_markdown(random)]
    parts += ["## Gates of the pre-registered rule", gates_markdown(res["imagenet"], res["random"]),
              f"Decision: {dict(res['decision'])}"]
    return "\n\n".join(parts) + "\n"
