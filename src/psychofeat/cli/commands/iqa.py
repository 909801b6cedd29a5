"""`psychofeat iqa` and `psychofeat iqa-claim`: selected-channel metrics against human quality scores."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from psychofeat.cli.common import (
    add_device_args,
    add_model_args,
    add_out_args,
    count0_arg,
    count_arg,
    csv_list,
    fraction_arg,
    name_list,
    seed_arg,
    size_arg,
    threads_arg,
)

if TYPE_CHECKING:
    from psychofeat.experiments.iqa import IqaConfig


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="live-subset",
                   help="live-subset (default), live, csiq, tid2013, kadid10k, pipal, or a CSV file "
                   "(columns distorted, reference, score, score_type); see docs/datasets.md")
    p.add_argument("--root", default=None, help="the dataset's folder (default: looked up under the data root)")
    add_model_args(p)
    p.add_argument("--selection", default=None,
                   help="selection.json of `psychofeat analyze` for the same --model/--weights (default: analyse "
                   "the network first with default settings; its outputs go to OUT/analyze/)")
    p.add_argument("--layers", type=name_list, default=None,
                   help="comma-separated layers (default: all layers of the selection)")
    p.add_argument("--fraction", type=fraction_arg, default=0.25,
                   help="k as a fraction of each layer's channels (default 0.25)")
    p.add_argument("--seeds", type=count_arg, default=20, help="random-k seeds 0..N-1 (default 20)")
    p.add_argument("--mode", choices=["normalized", "mse"], default="normalized",
                   help="normalized (unit norm across the selected channels, default) or mse")
    p.add_argument("--resize", type=size_arg, default=None, metavar="SHORT_SIDE",
                   help="scale both images so the short side has this many pixels (antialiased bicubic; "
                   "default: native size)")
    p.add_argument("--n-boot", type=count0_arg, default=1000, help="bootstrap resamples for the CIs (default 1000)")
    p.add_argument("--boot-seed", type=seed_arg, default=0, help="seed of the bootstrap resamples (default 0)")
    add_device_args(p)
    p.add_argument("--threads", type=threads_arg, default=None,
                   help="CPU threads of the forward passes (default: torch's, = the cores); the rest of the work "
                   "is single-threaded. Use 1 when the cores are shared with other jobs (docs/iqa.md)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "iqa",
        help="agreement of top/bottom/random/all-channel metrics, PSNR and SSIM with human scores",
        description="Score every pair of a full-reference set with the selection's top-k, bottom-k, random-k "
        "(many seeds) and all channels, and with PSNR and SSIM; report SRCC, KRCC, PLCC and RMSE with bootstrap "
        "CIs. Writes results.json, per_image.csv, manifest.json and report.html.",
    )
    _common(p)
    add_out_args(p, "out/iqa")
    p.set_defaults(func=run, claim=False)

    c = sub.add_parser(
        "iqa-claim",
        help="iqa plus the paper's claim: PE vs single-channel agreement per layer, agreement vs k",
        description="Everything `iqa` does, plus: per layer, the Spearman correlation across channels between PE "
        "and each channel's single-channel agreement with the human scores (permutation p-value), and the "
        "agreement of top/bottom/random selections as a function of k. Adds claim*.csv, claim.json and "
        "channel_distances.npz.",
    )
    _common(c)
    c.add_argument("--fractions", default=None,
                   help="k values of the agreement-vs-k curve (default 0.05,0.1,0.25,0.5,0.75,1)")
    c.add_argument("--permutations", type=count_arg, default=10_000, help="permutations of each test (default 10000)")
    c.add_argument("--perm-seed", type=seed_arg, default=0, help="seed of the permutations (default 0)")
    add_out_args(c, "out/iqa-claim")
    c.set_defaults(func=run, claim=True)


def config_from_args(args: argparse.Namespace) -> IqaConfig:
    from psychofeat.errors import InputError
    from psychofeat.experiments.iqa import DEFAULT_CURVE_FRACTIONS, IqaConfig

    fractions = DEFAULT_CURVE_FRACTIONS
    if getattr(args, "fractions", None):
        try:
            fractions = tuple(float(v) for v in csv_list(args.fractions) or [])
        except ValueError:
            raise InputError(f"--fractions must be comma-separated numbers, got {args.fractions!r}.") from None
    layers = csv_list(args.layers)
    return IqaConfig(
        dataset=args.dataset, root=args.root, model=args.model, weights=args.weights,
        preprocessing=getattr(args, "preprocessing", None), selection=args.selection,
        layers=tuple(layers) if layers else None, fraction=args.fraction, n_seeds=args.seeds, mode=args.mode,
        resize=args.resize, device=args.device, dtype=args.dtype, n_boot=args.n_boot, boot_seed=args.boot_seed,
        claim=args.claim, curve_fractions=fractions, n_permutations=getattr(args, "permutations", 10_000),
        perm_seed=getattr(args, "perm_seed", 0), threads=args.threads,
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from psychofeat.experiments.iqa import results_table, run_iqa
    from psychofeat.experiments.iqa_report import write_outputs
    from psychofeat.io import run_folder

    config = config_from_args(args)
    with run_folder(args.out, args.overwrite) as run:  # built beside --out, swapped in whole at the end
        result = run_iqa(config, analyze_out=run.path / "analyze", log=lambda s: print(s, file=sys.stderr))
        source = result.info.get("selection_source") or {}
        if source.get("generated_by_this_run") and source.get("path"):
            source["path"] = str(run.final(source["path"]))  # where it will be, not the folder being built
        write_outputs(result, run.path, report=not args.no_report)
    out = run.target
    table = results_table(result.results)[["metric", "srcc", "srcc_lo", "srcc_hi", "srcc_sd", "plcc", "krcc"]]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep=""))
    if result.claim is not None:
        cols = ["layer", "n_with_srcc", "rho", "p_value", "p_holm", "rho_responsive", "p_responsive"]
        print()
        print(result.claim.layers[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        for label, r in result.claim.pooled.items():
            print(f"mean rho over {r['n_layers']} layers ({label}): {r['mean_rho']:.3f}, "
                  f"permutation p = {r['p_value']:.3g}")
    t = result.info["timing_s"]
    print(f"\n{len(result.dataset)} pairs in {t['total']:.0f} s (forward passes {t['forward']:.0f} s); wrote {out}/")
    return 0
