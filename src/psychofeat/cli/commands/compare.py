"""`psychofeat compare`: PE layer by layer for several networks, pretrained vs random and shuffled controls."""

from __future__ import annotations

import argparse

from psychofeat.cli.common import (
    add_out_args,
    batch_arg,
    csv_list,
    device_arg,
    ppd_arg,
    seed_arg,
    size_arg,
)
from psychofeat.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "compare",
        help="compare PE across networks and against random/shuffled controls; writes comparison.csv, report.html",
        description="Analyse each network with its pretrained weights and with seeded controls (random: default "
        "initialisation; shuffled: pretrained values permuted within each tensor), using the same stimuli, and "
        "summarise PE per layer against depth. Writes comparison.csv, pretrained_vs_controls.csv, scores.csv, "
        "manifest.json and report.html.",
    )
    p.add_argument("--models", default="vgg16,squeezenet1_1,efficientnet_lite0",
                   help="comma-separated networks (default vgg16,squeezenet1_1,efficientnet_lite0)")
    p.add_argument("--controls", default="random,shuffled",
                   help="comma-separated controls: random, shuffled (default both)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the controls (default 0: random:0, shuffled:0)")
    p.add_argument("--layers-per-model", default=None, metavar="SPEC",
                   help="layers per network, e.g. 'vgg16=relu1_2,relu3_3;squeezenet1_1=fire2,fire9' "
                   "(default: each network's default analysis layers)")
    p.add_argument("--size", type=size_arg, default=224,
                   help="stimulus size in pixels (default 224; 128 runs ~3x faster, see docs/zoo.md)")
    p.add_argument("--ppd", type=ppd_arg, default=60.0, help="pixels per visual degree (default 60)")
    p.add_argument("--csf", default="barten", help="CSF model weighting mu1 (default barten)")
    p.add_argument("--batch-size", type=batch_arg, default=16,
                   help="stimuli per forward pass (default 16); lower it to use less memory")
    p.add_argument("--device", default="cpu", type=device_arg, help="torch device (default cpu)")
    add_out_args(p, "out/compare")
    p.set_defaults(func=run)


def parse_layers_per_model(spec: str | None) -> dict[str, list[str]]:
    """'a=x,y;b=z' -> {'a': ['x', 'y'], 'b': ['z']}."""
    out: dict[str, list[str]] = {}
    for part in (spec or "").split(";"):
        if not part.strip():
            continue
        model, sep, layers = part.partition("=")
        names = csv_list(layers) or []
        if not sep or not model.strip() or not names:
            raise InputError(f"bad --layers-per-model entry {part!r}: expected MODEL=layer1,layer2.")
        out[model.strip()] = names
    return out


def run(args: argparse.Namespace) -> int:
    import sys

    from psychofeat.analysis import AnalysisConfig
    from psychofeat.experiments.compare import CompareConfig, headline, run_compare, write_outputs
    from psychofeat.io import provenance, run_folder
    from psychofeat.resources import check_memory, stimulus_batch_bytes
    from psychofeat.stimuli import ProbeProtocol

    config = CompareConfig(
        models=tuple(csv_list(args.models) or ()),
        controls=tuple(csv_list(args.controls) or ()),
        seed=args.seed,
        layers=parse_layers_per_model(args.layers_per_model),
        analysis=AnalysisConfig(protocol=ProbeProtocol(ppd=args.ppd, size=args.size), csf=args.csf,
                                batch_size=args.batch_size),
    )
    config.analysis.protocol.check_holds_lowest_frequency()  # refused as by `psychofeat analyze`, before writing
    check_memory(stimulus_batch_bytes(args.size, args.batch_size), f"compare at --size {args.size} with "
                 f"--batch-size {args.batch_size}", "lower --size or --batch-size.")
    with run_folder(args.out, args.overwrite) as run:  # built beside --out, swapped in whole at the end
        result = run_compare(config, device=args.device, log=lambda s: print(s, file=sys.stderr))
        write_outputs(result, run.path, provenance())
    out = run.target
    print(headline(result.tests).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\ntotal {result.info['timing_s']['total']:.0f} s; wrote {out}/comparison.csv, report.html")
    return 0
