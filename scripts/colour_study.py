#!/usr/bin/env python
"""The pre-registered colour study of docs/colour.md (issue 22), in three steps:

    # 1. colour scores of a network from its default analysis (no human data) + the probe cost
    python scripts/colour_study.py scores --analysis out/colour/analyze-imagenet --out out/colour/imagenet
    python scripts/colour_study.py scores --analysis out/colour/analyze-random --weights random \
        --out out/colour/random
    # 2. (a) low- vs high-PE colour tuning; (b), (c) on live-subset with the iqa machinery
    python scripts/colour_study.py study --analysis out/colour/analyze-imagenet --out out/colour/imagenet
    python scripts/colour_study.py study --analysis out/colour/analyze-random --weights random \
        --out out/colour/random
    # 3. the decision rule, and the small tables for docs/results/colour/
    python scripts/colour_study.py decide --imagenet out/colour/imagenet --random out/colour/random \
        --docs docs/results/colour

Selections are built with `psychofeat.selection` (`colour_scores.colour_selection`) and evaluated by the iqa
machinery exactly as `psychofeat variants run` does (`experiments.variants.run_iqa_part`: one forward pass per
image, `SelectionBank`, the first pair checked against the shared core); the statistics are iqa-claim's
(`stats.srcc_with_resamples`, `percentile_ci`, `iqa_claim.holm`). Nothing here is fitted to human data.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

N_BOOT = 10_000
BOOT_SEED = 0
N_SEEDS = 20
FRACTION = 0.25
N_PERMUTATIONS = 10_000
PERM_SEED = 0
M_GATES = 3
SELECTIONS = ("colour", "today", "achprot")
DIFFERENCES = (("colour", "today"), ("colour", "random-k"), ("colour", "achprot"), ("colour", "all"),
               ("today", "all"), ("achprot", "today"))


def _load(args: argparse.Namespace) -> tuple[Any, Any, pd.DataFrame]:
    import psychofeat.backbones as B
    from psychofeat.selection import Selection

    analysis = Path(args.analysis)
    base = Selection.load(analysis / "selection.json")
    scores = pd.read_csv(analysis / "scores.csv")
    net = B.load_backbone(base.model, args.weights)
    base.check_backbone(net)
    return net, base, scores


def cmd_scores(args: argparse.Namespace) -> None:
    """Colour scores + a same-process timing of the achromatic frequency sweep for the cost comparison."""
    import torch

    from psychofeat.colour_scores import ColourConfig, colour_scores
    from psychofeat.io import provenance, write_json, write_npz, write_table
    from psychofeat.probe import probe
    from psychofeat.stimuli import ProbeProtocol, concat, frequency_sweep, gray_set

    torch.set_num_threads(args.threads)
    net, base, scores = _load(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    res = colour_scores(net, scores, config=ColourConfig(), progress=False)
    load1 = os.getloadavg()
    p = ProbeProtocol()
    stim = concat([gray_set(p), frequency_sweep(p)])
    t0 = time.perf_counter()
    probe(net, stim, res.info["layers"], 16, "cpu", "float32", progress=False)
    t_ach = time.perf_counter() - t0
    load2 = os.getloadavg()
    analysis_manifest = json.loads((Path(args.analysis) / "manifest.json").read_text())
    cost = {"colour_probe_s": res.info["timing_s"]["probe"], "colour_n_stimuli": res.info["n_stimuli"],
            "achromatic_frequency_sweep_probe_s": t_ach, "achromatic_frequency_sweep_n_stimuli": len(stim),
            "analysis_n_stimuli": analysis_manifest.get("n_stimuli"),
            "analysis_timing_s": analysis_manifest.get("timing_s"),
            "loadavg": {"before_colour": list(load0), "after_colour": list(load1), "after_achromatic": list(load2)},
            "threads": args.threads}
    write_table(out / "colour_scores.csv", res.table)
    write_npz(out / "colour_curves.npz", **res.curves)
    write_json(out / "colour_manifest.json", provenance(experiment="colour-scores", **res.info, cost=cost,
                                                         analysis=str(args.analysis)))
    print(json.dumps(cost, indent=1))


# ------------------------------------------------------------------------------------------------------ (a)
def hypothesis_a(base: Any, scores: pd.DataFrame, table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per layer: Mann–Whitney (low-PE > high-PE colour index), AUC, Holm; the mean AUC with a within-layer
    permutation null (one-sided)."""
    from scipy.stats import mannwhitneyu, spearmanr

    from psychofeat.stats import holm

    merged = scores[["layer", "channel", "pe", "unresponsive"]].merge(table, on=["layer", "channel"])
    rows, groups = [], []
    for layer in base.layers:
        df = merged[(merged["layer"] == layer) & ~merged["unresponsive"] & ~merged["colour_unresponsive"]]
        df = df.sort_values("channel")
        n_layer = base.n_channels[layer]
        k = min(max(1, int(round(FRACTION * n_layer))), len(df) // 2)
        ch, pe, ci = df["channel"].to_numpy(), df["pe"].to_numpy(), df["colour_index"].to_numpy()
        high = np.lexsort((ch, -pe))[:k]
        low = np.lexsort((ch, pe))[:k]
        u = mannwhitneyu(ci[low], ci[high], alternative="greater")
        auc = float(u.statistic) / (k * k)
        rho = spearmanr(pe, ci).statistic
        rows.append({"layer": layer, "n_eligible": len(df), "k": k, "median_ci_low": float(np.median(ci[low])),
                     "median_ci_high": float(np.median(ci[high])), "median_ci_layer": float(np.median(ci)),
                     "mean_ci_low": float(ci[low].mean()), "mean_ci_high": float(ci[high].mean()),
                     "auc_low_gt_high": auc, "U": float(u.statistic), "p_one_sided": float(u.pvalue),
                     "spearman_pe_ci": float(rho)})
        groups.append((ci[low], ci[high]))
    res = pd.DataFrame(rows)
    res["p_holm"] = holm(res["p_one_sided"].to_numpy())
    # the mean AUC over layers; null: labels permuted within each layer
    rng = np.random.default_rng(PERM_SEED)
    observed = float(res["auc_low_gt_high"].mean())
    null = np.zeros(N_PERMUTATIONS)
    for lo, hi in groups:
        x = np.concatenate([lo, hi])
        k = lo.size
        from scipy.stats import rankdata

        r = rankdata(x)
        perm = rng.permuted(np.broadcast_to(r, (N_PERMUTATIONS, r.size)), axis=1)
        u = perm[:, :k].sum(axis=1) - k * (k + 1) / 2  # U of the first k (ties: average ranks, as scipy)
        null += u / (k * hi.size)
    null /= len(groups)
    p = (1 + int((null >= observed - 1e-12).sum())) / (1 + N_PERMUTATIONS)
    pooled = {"mean_auc": observed, "p_one_sided": p, "n_layers": len(groups), "n_permutations": N_PERMUTATIONS,
              "seed": PERM_SEED, "supported": bool(observed > 0.5 and p < 0.05),
              "layers_holm_lt_0_05": [r["layer"] for _, r in res.iterrows() if r["p_holm"] < 0.05]}
    return res, pooled


# ------------------------------------------------------------------------------------------------- (b), (c)
def build(base: Any, table: pd.DataFrame) -> tuple[dict[str, Any], list[Any]]:
    from psychofeat.colour_scores import colour_selection
    from psychofeat.experiments.variants import Column

    sels = {"colour": colour_selection(base, table, "pe_colour", "top", FRACTION),
            "today": base.select("top", FRACTION),
            "achprot": colour_selection(base, table, "pe_achprot", "top", FRACTION),
            "all": base.select("all")}
    cols = [Column(n, "variant") for n in SELECTIONS] + [Column("all", "reference")]
    for s in range(N_SEEDS):
        sels[f"random-k/s{s}"] = base.select("random", FRACTION, s)
        cols.append(Column(f"random-k/s{s}", "random-k", seed=s))
    return sels, cols


def differences(per_pair: pd.DataFrame, subset: np.ndarray, label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SRCC of every selection and the pre-registered differences on `subset` of the pairs (common resamples)."""
    from psychofeat.stats import percentile_ci, srcc_with_resamples

    pp = per_pair[subset]
    names = [*SELECTIONS, "all", *[f"random-k/s{s}" for s in range(N_SEEDS)]]
    point, boot = srcc_with_resamples({n: pp[n].to_numpy() for n in names}, pp["human_score"].to_numpy(),
                                      str(pp["score_type"].iloc[0]), N_BOOT, BOOT_SEED)
    rnd = [f"random-k/s{s}" for s in range(N_SEEDS)]
    point["random-k"] = float(np.mean([point[n] for n in rnd]))
    boot["random-k"] = np.mean([boot[n] for n in rnd], axis=0)
    srcc_rows = []
    for n in (*SELECTIONS, "all", "random-k"):
        lo, hi = percentile_ci(boot[n])
        extra = {}
        if n == "random-k":
            v = np.array([point[r] for r in rnd])
            extra = {"sd_over_seeds": float(v.std(ddof=1)), "min": float(v.min()), "max": float(v.max())}
        srcc_rows.append({"subset": label, "n_pairs": int(subset.sum()), "selection": n, "srcc": point[n],
                          "lo95": lo, "hi95": hi, **extra})
    level = 1.0 - 0.05 / M_GATES
    diff_rows = []
    for a, b in DIFFERENCES:
        d = boot[a] - boot[b]
        finite = d[np.isfinite(d)]
        lo, hi = percentile_ci(d)
        glo, ghi = percentile_ci(d, level)
        diff_rows.append({"subset": label, "n_pairs": int(subset.sum()), "a": a, "b": b,
                          "srcc_diff": point[a] - point[b], "lo95": lo, "hi95": hi, "gate_level": level,
                          "lo_gate": glo, "hi_gate": ghi, "frac_resamples_le_0": float(np.mean(finite <= 0)),
                          "gate_passed": bool(glo > 0)})
    return pd.DataFrame(srcc_rows), pd.DataFrame(diff_rows)


def overlap(sels: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for layer in sels["today"].layers:
        t, c, a = (set(sels[n].channels[layer].tolist()) for n in ("today", "colour", "achprot"))
        rows.append({"layer": layer, "k": len(t), "colour_shared_with_today": len(t & c) / max(1, len(t)),
                     "achprot_shared_with_today": len(t & a) / max(1, len(t)),
                     "colour_shared_with_achprot": len(c & a) / max(1, len(t))})
    return pd.DataFrame(rows)


def cmd_study(args: argparse.Namespace) -> None:
    import torch

    from psychofeat.experiments.variants import VariantsConfig, run_iqa_part
    from psychofeat.io import provenance, write_json, write_table

    torch.set_num_threads(args.threads)
    net, base, scores = _load(args)
    out = Path(args.out)
    table = pd.read_csv(out / "colour_scores.csv")
    res_a, pooled_a = hypothesis_a(base, scores, table)
    write_table(out / "a_layers.csv", res_a)
    write_json(out / "a_pooled.json", pooled_a)
    print(res_a.to_string(), json.dumps(pooled_a, indent=1), sep="\n")
    sels, cols = build(base, table)
    write_table(out / "selection_overlap.csv", overlap(sels))
    sels["colour"].save(out / "selection_colour.json")
    sels["achprot"].save(out / "selection_achprot.json")
    if args.no_iqa:
        return
    cfg = VariantsConfig(analyses=(("barten", str(args.analysis)),), weights=args.weights, n_seeds=N_SEEDS,
                         n_boot=N_BOOT, boot_seed=BOOT_SEED, n_tests=M_GATES, threads=args.threads, detect=False)
    load0, t0 = os.getloadavg(), time.perf_counter()
    table_iqa, diffs_variants, per_pair, info = run_iqa_part(cfg, net, sels, cols, print, progress=False)
    wall = time.perf_counter() - t0
    write_table(out / "per_pair.csv", per_pair)
    write_table(out / "iqa_variants.csv", table_iqa)
    srcc_all, diff_all = [], []
    subsets = {"overall": np.ones(len(per_pair), bool)}
    subsets.update({str(d): (per_pair["distortion"] == d).to_numpy() for d in sorted(per_pair["distortion"].unique())})
    for label, mask in subsets.items():
        s, d = differences(per_pair, mask, label)
        srcc_all.append(s)
        diff_all.append(d)
    srcc_t, diff_t = pd.concat(srcc_all, ignore_index=True), pd.concat(diff_all, ignore_index=True)
    write_table(out / "b_srcc.csv", srcc_t)
    write_table(out / "b_differences.csv", diff_t)
    write_json(out / "study_manifest.json", provenance(
        experiment="colour-study", analysis=str(args.analysis), weights=args.weights, iqa=info,
        wall_s=wall, loadavg_start=list(load0), loadavg_end=list(os.getloadavg()),
        settings={"n_boot": N_BOOT, "boot_seed": BOOT_SEED, "n_seeds": N_SEEDS, "fraction": FRACTION,
                  "m_gates": M_GATES, "n_permutations": N_PERMUTATIONS}))
    print(srcc_t.to_string(), diff_t.to_string(), sep="\n")


# ------------------------------------------------------------------------------------------------- decision
def cmd_decide(args: argparse.Namespace) -> None:
    from psychofeat.io import write_json, write_table

    docs = Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for net, folder in (("imagenet", Path(args.imagenet)), ("random", Path(args.random))):
        diff = pd.read_csv(folder / "b_differences.csv")
        overall = diff[diff["subset"] == "overall"].set_index(["a", "b"])
        gates = {"A_colour_gt_today": bool(overall.loc[("colour", "today"), "gate_passed"]),
                 "B_colour_gt_random": bool(overall.loc[("colour", "random-k"), "gate_passed"]),
                 "C_colour_gt_achprot": bool(overall.loc[("colour", "achprot"), "gate_passed"])}
        pooled = json.loads((folder / "a_pooled.json").read_text())
        out[net] = {"gates": gates, "qualifies": all(gates.values()), "a": pooled}
        for name in ("a_layers.csv", "b_srcc.csv", "b_differences.csv", "selection_overlap.csv"):
            write_table(docs / f"{name[:-4]}_{net}.csv", pd.read_csv(folder / name))
    im = out["imagenet"]
    if im["qualifies"]:
        wording = ("not specific to learned features" if out["random"]["gates"]["A_colour_gt_today"]
                   else "specific to the trained network")
        decision = f"qualifies: the colour-aware PE becomes the default ranking ({wording})"
    elif im["gates"]["A_colour_gt_today"] and im["gates"]["B_colour_gt_random"]:
        decision = "does not qualify (gate C): the gain is the colour protocol's achromatic part; defaults stay"
    else:
        decision = "does not qualify: every default stays as it is"
    a_ok = im["a"]["supported"]
    if im["qualifies"] and a_ok:
        explanation = "supported"
    elif a_ok:
        explanation = "not supported: colour tuning differs between PE groups but does not explain the agreement"
    else:
        explanation = "not supported: the premise (a) fails"
    out["decision"] = decision
    out["explanation"] = explanation
    write_json(docs / "decision.json", out)
    print(json.dumps(out, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("scores", "study"):
        s = sub.add_parser(name)
        s.add_argument("--analysis", required=True, help="folder of `psychofeat analyze` (default settings)")
        s.add_argument("--weights", default=None, help="weights of the network (default: original ImageNet)")
        s.add_argument("--out", required=True)
        s.add_argument("--threads", type=int, default=1)
        if name == "study":
            s.add_argument("--no-iqa", action="store_true", help="only (a) and the selections")
    d = sub.add_parser("decide")
    d.add_argument("--imagenet", required=True)
    d.add_argument("--random", required=True)
    d.add_argument("--docs", required=True)
    args = ap.parse_args()
    {"scores": cmd_scores, "study": cmd_study, "decide": cmd_decide}[args.cmd](args)


if __name__ == "__main__":
    main()
