"""`python -m benchmarks {metric,analyze,sr,memory,precision,all} [--device cpu|cuda] [--out FILE.json]`.

Speed and memory of psychofeat against baselines measured in the same process and run (memory: one fresh
subprocess per variant), on the device given. Prints the machine (CPU model, kernels, native bf16, threads) first,
then tables of ratios, and writes JSON. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import loadavg, machine_info, print_table, wait_for_quiet
from psychofeat.machine import cpu_line

WHICH = ("metric", "analyze", "sr", "memory", "precision", "all")


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v]


def _sizes(s: str) -> list[tuple[int, int]]:
    out = []
    for item in s.split(","):
        w, h = item.lower().split("x")
        out.append((int(w), int(h)))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=WHICH, help="benchmark to run (all = the five in turn)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--out", default=None, help="write the results as JSON here (default: print JSON to stdout)")
    p.add_argument("--weights", default=None, help="VGG-16 weights source (default: original ImageNet)")
    p.add_argument("--selection", default=None,
                   help="selection.json of `psychofeat analyze` for the top-25%% variants "
                        "(default: a quick analysis of the metric layers, see docs/benchmarks.md)")
    g = p.add_argument_group("metric")
    g.add_argument("--sizes", type=_sizes, default=None, help="W×H list, default 256x256,768x512")
    g.add_argument("--pairs", type=_ints, default=None,
                   help="pairs per batch for each size (default cpu: 4,1; cuda: 64,16)")
    g.add_argument("--dtypes", default="fp32,bf16",
                   help="comma list of fp32, bf16 (bf16 skipped where it does not run)")
    g.add_argument("--repeats", type=int, default=None, help="timed samples per variant (default cpu 5, cuda 20)")
    g.add_argument("--warmup", type=int, default=None, help="untimed calls per variant first (default cpu 1, cuda 3)")
    g.add_argument("--inner", type=int, default=None, help="calls per timed sample (default cpu 1, cuda 5)")
    g.add_argument("--no-lpips", action="store_true", help="leave lpips out even if installed")
    g = p.add_argument_group("analyze")
    g.add_argument("--batch-size", type=int, default=16, help="analysis batch size (default 16)")
    g.add_argument("--no-fast", action="store_true", help="time the reference protocol only")
    g = p.add_argument_group("sr")
    g.add_argument("--sr-batch", type=int, default=16)
    g.add_argument("--sr-patch", type=int, default=96, help="HR patch size (LR = patch / 4)")
    g.add_argument("--sr-repeats", type=int, default=None, help="timed steps per loss (default cpu 5, cuda 30)")
    g = p.add_argument_group("memory")
    g.add_argument("--mem-size", type=_sizes, default=[(1080, 800)], help="W×H of the pair (default 1080x800)")
    g.add_argument("--mem-dtype", default="fp32", choices=["fp32", "bf16"])
    g = p.add_argument_group("precision")
    g.add_argument("--prec-repeats", type=int, default=3, help="timed forwards per precision (default 3)")
    g.add_argument("--prec-batch", type=int, default=16, help="images per forward (default 16)")
    g.add_argument("--prec-size", type=int, default=224, help="image side in px (default 224)")
    g = p.add_argument_group("load")
    g.add_argument("--max-load", type=float, default=None,
                   help="wait until the 1-minute load average is below this before each benchmark (CPU machines "
                        "shared with others); the load is recorded either way")
    g.add_argument("--max-wait", type=float, default=1800.0, help="give up waiting after this many seconds")
    return p


def _resolve_selection(args: argparse.Namespace, backbone: Any, tmp: Path) -> tuple[Any, dict[str, Any], Path]:
    """Top-25% of the metric layers for the metric; a selection file (full PE ranking) for the SR/memory workers.

    In order: --selection; the selection of this run's default analysis (`all`); a quick analysis (see models).
    """
    from benchmarks.models import top_selection

    given = args.selection or getattr(args, "analysis_selection", None)
    full, top, info = top_selection(backbone, given)
    if given:
        if not args.selection:
            info["source"] = f"the default analysis of this run ({given})"
        return top, info, Path(given)
    path = _selection_path(args, tmp)
    full.save(path)
    info["written_to"] = str(path)
    return top, info, path


def _selection_path(args: argparse.Namespace, tmp: Path) -> Path:
    return Path(args.out).with_suffix(".selection.json") if args.out else tmp / "selection.json"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from psychofeat.io import write_json

    dev = torch.device(args.device)
    gpu = dev.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True  # every variant alike: best algorithm per shape
    # analyze first: without --selection, its selection.json (the real default analysis) feeds the other three
    which = ["analyze", "metric", "sr", "memory", "precision"] if args.which == "all" else [args.which]
    machine = machine_info(dev)
    print(cpu_line(machine), file=sys.stderr)
    payload: dict[str, Any] = {
        "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "loadavg_start": loadavg(),
        "benchmarks": {},
    }
    acceptance: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        backbone = sel = sel_info = sel_path = None
        for name in which:
            if name not in ("analyze", "precision") and backbone is None:
                from psychofeat.backbones import load_backbone

                backbone = load_backbone("vgg16", args.weights, device=dev)
                sel, sel_info, sel_path = _resolve_selection(args, backbone, tmp)
                payload["top25_selection"] = sel_info
            q = None
            if args.max_load is not None:
                q = wait_for_quiet(args.max_load, args.max_wait)
                print(f"[{name}] load average {q['loadavg']} (waited {q['waited_s']} s; quiet={q['quiet']})",
                      file=sys.stderr)
            la = loadavg()
            t0 = time.perf_counter()
            r = _run_one(name, args, dev, backbone, sel, sel_info, sel_path, tmp)
            r["loadavg_start"], r["loadavg_end"], r["wall_s"] = la, loadavg(), round(time.perf_counter() - t0, 1)
            if q is not None:
                r["quiet_wait"] = q
            payload["benchmarks"][name] = r
            acceptance += r.get("acceptance", [])
    payload["acceptance"] = acceptance
    payload["loadavg_end"] = loadavg()
    print("\n== acceptance (docs/benchmarks.md; GPU targets need --device cuda)")
    print_table(acceptance, ["target", "value", "threshold", "met"])
    if args.out:
        write_json(Path(args.out), payload)
        print(f"\nwrote {args.out}")
    else:
        json.dump(payload, sys.stdout, indent=2, default=str)
        print()
    return 0


def _default(value: int | None, default: int) -> int:
    return default if value is None else value


def _run_one(name: str, args: argparse.Namespace, dev: Any, backbone: Any, sel: Any, sel_info: Any,
             sel_path: Any, tmp: Path) -> dict[str, Any]:
    gpu = dev.type == "cuda"
    if name == "metric":
        from benchmarks.metric_bench import SIZES, run

        r = run(backbone, sel, dev, sizes=args.sizes or SIZES, pairs=args.pairs,
                dtypes=[d for d in args.dtypes.split(",") if d],
                repeats=_default(args.repeats, 20 if gpu else 5), warmup=_default(args.warmup, 3 if gpu else 1),
                inner=_default(args.inner, 5 if gpu else 1), use_lpips=not args.no_lpips, selection_info=sel_info)
        print(f"\n== metric ({dev}; pairs/s, median of {r['repeats']} interleaved samples)")
        print_table([x for x in r["rows"] if not x["variant"].startswith("trunk")],
                    ["size", "dtype", "pairs_per_batch", "variant", "pairs_per_s", "vs_lpips", "vs_ceiling",
                     "ceiling_from", "vs_lpips_cpu", "vs_ceiling_cpu"])
        for s in r["skipped"]:
            print(f"  skipped {s['dtype']}: {s['reason']}")
        print(f"  lpips: {r['lpips']}")
        return r
    if name == "analyze":
        from benchmarks.analyze_bench import run as run_analyze

        out = None
        if not args.selection:  # keep the default analysis' selection for the benchmarks that follow
            out = _selection_path(args, tmp)
            args.analysis_selection = out
        r = run_analyze(str(dev), args.weights, args.batch_size, selection_out=out, fast=not args.no_fast)
        if out is not None:
            r["selection_written_to"] = str(out)
        r["acceptance"] = [{"target": "analyze / bare forward <= 1.25", "value": r["ratio"], "threshold": 1.25,
                            "met": r["ratio"] <= 1.25}]
        if dev.type == "cpu":
            r["acceptance"].append({"target": "analyze (cpu) <= 180 s", "value": r["analyze_s"], "threshold": 180.0,
                                    "met": r["analyze_s"] <= 180.0})
        print(f"\n== analyze ({dev})")
        rows = [{"protocol": "reference", **r}]
        if "fast" in r:
            f = r["fast"]
            rows.append({**f, "protocol": f"fast ({f['dtype']})"})
            r["acceptance"] += [
                {"target": "fast: >= 5x faster than the reference", "value": f["speedup_vs_reference"],
                 "threshold": 5.0, "met": f["speedup_vs_reference"] >= 5.0},
                {"target": "fast / its bare forward <= 1.15", "value": f["ratio"], "threshold": 1.15,
                 "met": f["ratio"] <= 1.15},
                {"target": "fast vs reference: PE Spearman >= 0.99 (worst layer)", "value": f["min_pe_spearman"],
                 "threshold": 0.99, "met": f["min_pe_spearman"] >= 0.99},
                {"target": "fast vs reference: top-25% overlap >= 0.90 (worst layer)", "value": f["min_top_overlap"],
                 "threshold": 0.90, "met": f["min_top_overlap"] >= 0.90},
            ]
        print_table(rows, ["protocol", "n_stimuli", "analyze_s", "bare_forward_s", "ratio", "cpu_ratio"])
        if "fast" in r:
            print(f"fast: {r['fast']['speedup_vs_reference']:.2f}x faster; agreement per layer:")
            print_table(r["fast"]["agreement"], ["layer", "channels", "k", "pe_spearman", "top_overlap",
                                                 "top_identical", "max_abs_pe_diff"])
        return r
    if name == "sr":
        from benchmarks.sr_bench import run as run_sr

        r = run_sr(str(dev), sel_path, args.weights, args.sr_batch, args.sr_patch,
                   repeats=_default(args.sr_repeats, 30 if gpu else 5), warmup=5 if gpu else 2)
        print(f"\n== sr training step and loss ({dev}; batch {r['batch']}, HR {r['hr_patch']}², autocast "
              f"{r['autocast']}; layers {','.join(r['layers'])})")
        print_table(r["rows"], ["variant", "median_ms", "per_s", "ratio_vs_pixel", "gflop", "flop_ratio_vs_pixel"])
        print(f"top-k step / all-channel step {r['ratio_top_vs_all']:.3f} (target <= 1.0); top-k loss / bare trunk "
              f"{r['ratio_loss_vs_trunk']:.3f} (target <= 1.10); top-k step / pixel step {r['ratio_top_vs_pixel']:.2f};"
              f" loss to {r['shallow_layers'][-1]}: step {r['ratio_shallow_vs_top']:.2f}x the full top-k step, "
              f"{r['ratio_shallow_vs_pixel']:.2f}x pixel")
        return r
    if name == "memory":
        from benchmarks.memory_bench import run as run_memory

        (w, h) = args.mem_size[0]
        r = run_memory(str(dev), w, h, args.weights, str(sel_path) if sel_path else None, args.mem_dtype)
        print(f"\n== peak memory, one {w}×{h} pair ({dev}, {r['dtype']}; {r['measure']}; fresh process per variant)")
        print_table(r["rows"], ["variant", r["measure"], "forward_peak_mib", "peak_vs_lpips", "forward_peak_vs_lpips",
                                "skipped", "error"])
        return r
    if name == "precision":
        from benchmarks.precision_bench import run as run_precision

        r = run_precision(str(dev), args.weights, batch=args.prec_batch, size=args.prec_size, repeats=args.prec_repeats)
        print(f"\n== precision ({dev}; VGG-16 forward, batch {r['batch']} at {r['size']}², channels-last; native "
              f"bf16: {'yes' if r['native_bf16'] else 'no'}; auto = {r['auto_dtype']})")
        print_table(r["rows"], ["variant", "median_s", "min_s", "max_s", "vs_fp32"])
        return r
    raise ValueError(name)


if __name__ == "__main__":
    raise SystemExit(main())
