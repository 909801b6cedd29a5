"""Fewer forward passes for `psychofeat analyze`: what each reduction of the probe protocol costs in agreement.

One recorded superset of stimuli answers every reduced protocol: the uniform field and the radial frequency sweep
(24 frequencies × 4 phases) and linear gratings at *every* mid frequency g_i (23) × 16 orientations × 4 phases, each
through all 13 ReLU layers of VGG-16 (original ImageNet weights). A reduced protocol (fewer phases in either sweep,
fewer orientations, fewer orientation-sweep frequencies) uses a subset of those stimuli, so `analyze` is run with
`responses=` looking its stimuli up in the recording instead of running the network: the very scoring code of a
real run, on the very responses a real run would measure (checked: the recorded reference reproduces a real
reference run's scores). Each protocol is compared with the reference per layer (`psychofeat.agreement`): Spearman's
ρ of PE, the top-25 % overlap and identity. Cost is counted in stimuli and in forward FLOPs (each pass stops at the
deepest layer it needs, as in a real run), relative to the reference.

    python scripts/analyze_tradeoff.py [--out out/tradeoff] [--check-real out/analyze/scores.csv]

Writes tradeoff.csv (one row per protocol) and per_layer.csv into --table-dir (docs/results/fast_analysis). The
recording (about 55 MB) is kept in --out/superset.npz, so a second call only scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: name -> ProbeProtocol overrides of the reference (SCIENCE.md: 4 phases, 16 orientations, 12 grid frequencies)
VARIANTS: dict[str, dict[str, Any]] = {
    "reference": {},
    "phases2": {"n_phase": 2},
    "phases1": {"n_phase": 1},
    "orient_phases2": {"n_phase_orient": 2},
    "orient_phases1": {"n_phase_orient": 1},
    "grid6": {"n_orient_freq": 6},
    "grid4": {"n_orient_freq": 4},
    "orient8": {"n_orient": 8},
    "orient_phases2_grid6": {"n_phase_orient": 2, "n_orient_freq": 6},
    "orient_phases1_grid6": {"n_phase_orient": 1, "n_orient_freq": 6},
    "orient_phases2_orient8": {"n_phase_orient": 2, "n_orient": 8},
    "orient_phases2_orient8_grid6": {"n_phase_orient": 2, "n_orient": 8, "n_orient_freq": 6},
    "orient_phases1_orient8_grid6": {"n_phase_orient": 1, "n_orient": 8, "n_orient_freq": 6},
    "orient8_grid6": {"n_orient": 8, "n_orient_freq": 6},
    "orient8_grid4": {"n_orient": 8, "n_orient_freq": 4},
    "phases2_orient8_grid6": {"n_phase": 2, "n_orient": 8, "n_orient_freq": 6},
    "phases1_grid6": {"n_phase": 1, "n_orient_freq": 6},
    # 2 phases in quadrature {0, π/2} instead of the counterphase pair {0, π}: scored by reading the π/2 responses
    # where a 2-phase protocol asks for π (QUADRATURE below); no ProbeProtocol has these phases
    "orient_quadrature": {"n_phase_orient": 2},
    "quadrature": {"n_phase": 2},
}
QUADRATURE = {"orient_quadrature": ("linear",), "quadrature": ("linear", "radial")}


def _key(kind: Any, f: float, th: float, ph: float) -> tuple[str, float, float, float]:
    return str(kind), round(float(f), 9), round(float(th), 9), round(float(ph), 9)


def superset(protocol: Any) -> Any:
    """The stimuli every reduced protocol draws from (see the module docstring)."""
    from psychofeat.stimuli import StimulusSet, concat, frequency_sweep, gray_set

    ff, tt, pp = np.meshgrid(protocol.mid_frequencies, protocol.orientations, protocol.phases, indexing="ij")
    n = ff.size
    lin = StimulusSet(np.full(n, "linear"), ff.ravel(), tt.ravel(), pp.ravel(), protocol)
    return concat([gray_set(protocol), frequency_sweep(protocol), lin])


def record(backbone: Any, path: Path, batch_size: int = 16) -> dict[str, Any]:
    """Probe the superset through all default layers once and save keys and responses."""
    from psychofeat.probe import probe
    from psychofeat.stimuli import ProbeProtocol

    stim = superset(ProbeProtocol())
    names = backbone.depth_order(backbone.default_layers)
    resp = probe(backbone, stim, names, batch_size, progress=True, desc="superset")
    np.savez(path, kind=stim.kind, freq=stim.freq, orient=stim.orient, phase=stim.phase, layers=np.array(names),
             **{f"r_{k}": v for k, v in resp.items()})
    return load(path)


def load(path: Path) -> dict[str, Any]:
    z = np.load(path, allow_pickle=False)
    index = {_key(*t): i for i, t in enumerate(zip(z["kind"], z["freq"], z["orient"], z["phase"]))}
    return {"index": index, "resp": {str(k): z[f"r_{k}"] for k in z["layers"]}}


def lookup(rec: dict[str, Any], counter: list[int], quadrature: Sequence[str] = ()) -> Any:
    """A `responses=` source for `analyze` that reads the recording (and counts the stimuli it was asked for);
    for the stimulus kinds in `quadrature`, phase π is read as π/2."""

    def phase(kind: str, ph: float) -> float:
        return np.pi / 2 if kind in quadrature and round(float(ph), 9) == round(np.pi, 9) else ph

    def source(stim: Any, upto: Sequence[str], desc: str) -> dict[str, np.ndarray]:
        rows = np.array([rec["index"][_key(k, f, t, phase(k, p))]
                         for k, f, t, p in zip(stim.kind, stim.freq, stim.orient, stim.phase)])
        counter.append(len(rows))
        return {k: rec["resp"][k][rows] for k in upto}

    return source


def flops_to_depth(backbone: Any, size: int = 224) -> dict[str, float]:
    """Forward FLOPs of one stimulus up to each default layer, relative to the deepest."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    names = backbone.depth_order(backbone.default_layers)
    out = {}
    for name in names:
        idx = int(backbone.resolve_layer(name).split(".")[-1])
        with FlopCounterMode(display=False) as fc, torch.inference_mode():
            backbone.net.features[: idx + 1](torch.zeros(1, 3, size, size))
        out[name] = float(fc.get_total_flops())
    top = out[names[-1]]
    return {k: v / top for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/tradeoff")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--table-dir", default="docs/results/fast_analysis")
    ap.add_argument("--check-real", default=None,
                    help="scores.csv of a real default analysis: the recorded reference must reproduce it")
    args = ap.parse_args(argv)

    from psychofeat.agreement import score_agreement
    from psychofeat.analysis import AnalysisConfig, analyze
    from psychofeat.backbones import load_backbone
    from psychofeat.io import write_json, write_table
    from psychofeat.machine import cpu_line
    from psychofeat.stimuli import ProbeProtocol

    print(cpu_line(), file=sys.stderr)
    backbone = load_backbone("vgg16", args.weights)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "superset.npz"
    rec = load(path) if path.is_file() else record(backbone, path)
    rel = flops_to_depth(backbone)
    results: dict[str, Any] = {}
    for name, overrides in VARIANTS.items():
        counter: list[int] = []
        res = analyze(backbone, None, AnalysisConfig(protocol=ProbeProtocol(**overrides)), progress=False,
                      responses=lookup(rec, counter, QUADRATURE.get(name, ())))
        cost = sum(p["n_stimuli"] * rel[p["deepest_layer"]] for p in res.info["stimulus_passes"])
        results[name] = {"scores": res.scores, "n_stimuli": res.info["n_stimuli"], "flop_units": cost}
    ref = results["reference"]
    summary, per_layer = [], []
    for name, r in results.items():
        cmp = score_agreement(ref["scores"], r["scores"])
        cmp.insert(0, "protocol", name)
        per_layer.append(cmp)
        summary.append({"protocol": name, "overrides": json.dumps(VARIANTS[name]), "n_stimuli": r["n_stimuli"],
                        "stimuli_vs_reference": r["n_stimuli"] / ref["n_stimuli"],
                        "flops_vs_reference": r["flop_units"] / ref["flop_units"],
                        "min_pe_spearman": cmp["pe_spearman"].min(),
                        "median_pe_spearman": cmp["pe_spearman"].median(),
                        "min_top_overlap": cmp["top_overlap"].min(),
                        "layers_identical": int(cmp["top_identical"].sum()), "layers": len(cmp),
                        "worst_layer": cmp.loc[cmp["pe_spearman"].idxmin(), "layer"]})
    table = pd.DataFrame(summary)
    tables = Path(args.table_dir)
    write_table(tables / "tradeoff.csv", table)
    write_table(tables / "per_layer.csv", pd.concat(per_layer, ignore_index=True))
    if args.check_real:
        real = pd.read_csv(args.check_real)
        chk = score_agreement(real, ref["scores"])
        check = {"real_scores": args.check_real, "min_pe_spearman": float(chk["pe_spearman"].min()),
                 "max_abs_pe_diff": float(chk["max_abs_pe_diff"].max()),
                 "layers_identical": int(chk["top_identical"].sum())}
        write_json(tables / "superset_check.json", check)
        print(f"recorded reference vs real run: {check}", file=sys.stderr)
    print(table.drop(columns=["overrides"]).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
