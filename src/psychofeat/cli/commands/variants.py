"""`psychofeat variants run|decide`: the pre-registered comparison of PE variants (docs/variants.md)."""

from __future__ import annotations

import argparse

from psychofeat.cli.common import (
    add_out_args,
    add_threads_arg,
    count0_arg,
    count_arg,
    csv_list,
    fraction_arg,
    seed_arg,
    set_threads,
    show_help,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "variants",
        help="compare CSF choices × hard/soft PE weightings against all channels (docs/variants.md)",
        description="The pre-registered comparison of issue 16: every CSF × weighting variant, all channels, "
        "random-k and shuffled-weight controls, on a full-reference IQA set and the detection benchmark.",
    )
    p.set_defaults(func=show_help(p))
    verbs = p.add_subparsers(dest="variants_command", metavar="SUBCOMMAND")

    r = verbs.add_parser("run", help="evaluate every variant of one network (IQA set + detection thresholds)",
                         description="Evaluate every variant of one network in one batched pass per benchmark.")
    r.add_argument("--analyses", required=True,
                   help="CSF=folder pairs of `psychofeat analyze` outputs, default CSF first, e.g. "
                   "barten=out/analyze,castle=out/a-castle,mannos_sakrison=out/a-mannos")
    r.add_argument("--weights", default=None,
                   help="weights of the network the analyses were run on (default: ImageNet)")
    r.add_argument("--dataset", default="live-subset", help="full-reference IQA set (default live-subset)")
    r.add_argument("--root", default=None, help="the dataset's folder (default: under the data root)")
    r.add_argument("--fraction", type=fraction_arg, default=0.25,
                   help="k of the hard top-k and random-k (default 0.25)")
    r.add_argument("--weightings", default=None,
                   help="comma-separated subset of top,soft-pe,soft-rank,soft-mu1,soft-mu2 (default all)")
    r.add_argument("--seeds", type=count_arg, default=20, help="random-k seeds on the IQA set (default 20)")
    r.add_argument("--shuffles", type=count_arg, default=10, help="shuffled-weight seeds per soft variant (default 10)")
    r.add_argument("--detect-seeds", type=count_arg, default=10,
                   help="random-k seeds of the detection benchmark (default 10)")
    r.add_argument("--no-iqa", action="store_true", help="skip the IQA set (e.g. to run detection in another process)")
    r.add_argument("--no-detect", action="store_true", help="skip the detection benchmark")
    r.add_argument("--detect-datasets", default="all", help="threshold datasets: all (default), modelfest, or one id")
    r.add_argument("--n-boot", type=count0_arg, default=10_000, help="bootstrap resamples (default 10000)")
    r.add_argument("--boot-seed", type=seed_arg, default=0, help="seed of the bootstrap resamples (default 0)")
    r.add_argument("--n-tests", type=count_arg, default=15, help="Bonferroni divisor: variants tested (default 15)")
    add_threads_arg(r, default=1, note="; 1 because the machine is shared")
    add_out_args(r, "out/variants/imagenet")
    r.set_defaults(func=run)

    d = verbs.add_parser("decide", help="apply the pre-registered decision rule to `variants run` outputs")
    d.add_argument("--imagenet", required=True,
                   help="output folder(s) of `variants run` for the ImageNet network (comma-separated: IQA and "
                   "detection may come from separate runs)")
    d.add_argument("--random", default=None, help="the same for the random-weight network")
    d.add_argument("--out", default=None, help="write decision.json and gates*.csv here (default: --imagenet)")
    d.set_defaults(func=decide)


def run(args: argparse.Namespace) -> int:
    import sys

    from psychofeat.errors import InputError
    from psychofeat.experiments.variants import WEIGHTINGS, VariantsConfig, run_variants, write_variants
    from psychofeat.io import run_folder

    pairs = []
    for item in csv_list(args.analyses) or []:
        csf, sep, path = item.partition("=")
        if not sep or not csf or not path:
            raise InputError(f"--analyses takes CSF=folder pairs, got {item!r}.")
        pairs.append((csf.strip(), path.strip()))
    config = VariantsConfig(
        analyses=tuple(pairs), weights=args.weights, dataset=args.dataset, root=args.root, fraction=args.fraction,
        weightings=tuple(csv_list(args.weightings) or WEIGHTINGS), n_seeds=args.seeds, n_shuffles=args.shuffles,
        detect_seeds=args.detect_seeds, iqa=not args.no_iqa, detect=not args.no_detect,
        detect_datasets=args.detect_datasets,
        n_boot=args.n_boot, boot_seed=args.boot_seed,
        n_tests=args.n_tests, threads=args.threads,
    )
    set_threads(config.threads)  # the whole run: forward passes and the detection search
    with run_folder(args.out, args.overwrite) as run:  # built beside --out, swapped in whole at the end
        result = run_variants(config, log=lambda s: print(s, file=sys.stderr))
        write_variants(result, run.path)
    out = run.target
    if result.differences is not None:
        cols = ["variant", "versus", "srcc_diff", "lo95", "hi95", "lo_bonferroni", "gate_passed"]
        print(result.differences[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nwrote {out}/")
    return 0


def decide(args: argparse.Namespace) -> int:
    from pathlib import Path

    from psychofeat.experiments.variants_decide import decide as apply_rule
    from psychofeat.experiments.variants_decide import summary_markdown
    from psychofeat.io import record_outputs, write_json, write_table, write_text

    imagenet = [Path(p) for p in csv_list(args.imagenet) or []]
    random = [Path(p) for p in csv_list(args.random) or []] or None
    res = apply_rule(imagenet, random)
    out = Path(args.out or imagenet[0])
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "gates_imagenet.csv", res["imagenet"])
    if res["random"] is not None:
        write_table(out / "gates_random.csv", res["random"])
    write_json(out / "decision.json", res["decision"])
    write_text(out / "summary.md", summary_markdown(imagenet, random, res))
    record_outputs(out)  # into a `variants run` folder: its manifest lists the decision files too
    cols = ["variant", "d_all", "d_all_lo_bonf", "A", "control", "d_control", "B", "C", "qualifies"]
    print(res["imagenet"][[c for c in cols if c in res["imagenet"]]].to_string(
        index=False, float_format=lambda v: f"{v:.4f}"))
    print(res["decision"])
    return 0
