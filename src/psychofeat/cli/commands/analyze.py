"""`psychofeat analyze`: probe every channel, score mu1/mu2/PE, select channels, write the report."""

from __future__ import annotations

import argparse
from typing import Any

from psychofeat.cli.common import (
    add_device_args,
    add_model_args,
    add_out_args,
    add_threads_arg,
    batch_arg,
    contrast_arg,
    count_arg,
    csv_list,
    fraction_arg,
    name_list,
    positive_float,
    ppd_arg,
    seed_arg,
    set_threads,
    size_arg,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "analyze",
        help="probe every channel of a network with gratings; score mu1, mu2 and PE; write report.html",
        description="Probe every channel of the chosen layers with sinusoidal gratings, score CSF-weighted frequency "
        "sensitivity (mu1), orientation selectivity (mu2) and Perceptual Efficacy (PE), and select channels.",
    )
    add_model_args(p)
    p.add_argument("--layers", type=name_list, default=None,
                   help="comma-separated layers (default: the model's analysis layers, for vgg16 the 13 ReLU layers)")
    p.add_argument("--fast", action="store_true",
                   help="the fast protocol: orientation sweeps with 2 counterphase phases instead of 4 (481 stimuli "
                   "instead of 865) and dtype auto (bf16 only where native). Measured on VGG-16: PE Spearman with "
                   "the reference >= 0.99 in relu1_1-relu4_1, >= 0.96 in every layer, top-25%% sets overlap >= 96%%; "
                   "the reference stays the default (docs/benchmarks.md, 'Fast analysis'). Explicit protocol "
                   "options and --dtype still win")
    p.add_argument("--colour", "--color", action="store_true",
                   help="also probe isoluminant red-green and yellow-violet gratings and a grey one at the same cone "
                   "contrast (289 more stimuli, about +33%%): adds mu1 per direction, colour_index, pe_colour and "
                   "more to scores.csv and a colour section to the report; the selection still ranks by PE "
                   "(docs/colour.md)")
    p.add_argument("--ppd", type=ppd_arg, default=60.0, help="pixels per visual degree (default 60)")
    p.add_argument("--size", type=size_arg, default=224, help="stimulus size in pixels (default 224)")
    p.add_argument("--contrast", type=contrast_arg, default=0.5,
                   help="Michelson contrast of the gratings (default 0.5)")
    p.add_argument("--n-freq", type=count_arg, default=24, help="frequencies in the sweep (default 24)")
    p.add_argument("--n-orient", type=count_arg, default=16, help="orientations (default 16)")
    p.add_argument("--n-phase", type=count_arg, default=None, help="phases averaged (default 4)")
    p.add_argument("--n-phase-orient", type=count_arg, default=None,
                   help="phases averaged in the orientation sweeps (default: --n-phase; --fast: 2)")
    p.add_argument("--n-orient-freq", type=count_arg, default=None,
                   help="frequencies of the orientation-sweep grid f* is snapped to "
                   "(default 12; n-freq − 1 = no snapping)")
    p.add_argument("--freq-stimulus", choices=["radial", "linear"], default="radial",
                   help="frequency stimuli: radial gratings (default) or linear gratings averaged over orientations")
    p.add_argument("--csf", default="barten", help="CSF model weighting mu1: barten (default), castle, mannos_sakrison")
    p.add_argument("--luminance", type=positive_float, default=100.0,
                   help="adaptation luminance in cd/m² (default 100)")
    p.add_argument("--pe", default="product", choices=["product", "rank_product", "rank_geomean"],
                   help="how mu1 and mu2 combine into PE (default product)")
    p.add_argument("--fraction", type=fraction_arg, default=0.25,
                   help="fraction of each layer's channels selected (default 0.25)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the random-k control selection")
    p.add_argument("--batch-size", type=batch_arg, default=16,
                   help="stimuli per forward pass (default 16); lower it to use less memory, results are the same")
    add_threads_arg(p, note="; 1 when the cores are shared")
    add_device_args(p)
    p.set_defaults(dtype=None)  # float32, or auto with --fast
    add_out_args(p, "out/analyze")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from psychofeat.analysis import AnalysisConfig, analyze
    from psychofeat.analysis_report import layer_summary, write_analysis
    from psychofeat.backbones import load_backbone
    from psychofeat.csf import get_csf
    from psychofeat.io import run_folder
    from psychofeat.resources import check_memory, forward_bytes
    from psychofeat.stimuli import ProbeProtocol, fast_protocol

    given = {"ppd": args.ppd, "size": args.size, "contrast": args.contrast, "n_freq": args.n_freq,
             "n_orient": args.n_orient, "n_phase": args.n_phase, "n_orient_freq": args.n_orient_freq,
             "freq_stimulus": args.freq_stimulus, "n_phase_orient": args.n_phase_orient}
    given = {k: v for k, v in given.items() if v is not None}
    protocol = fast_protocol(**given) if args.fast else ProbeProtocol(**given)
    dtype = args.dtype or ("auto" if args.fast else "float32")
    protocol.check_holds_lowest_frequency()
    config = AnalysisConfig(protocol=protocol, csf=args.csf, luminance=args.luminance, combination=args.pe,
                            fraction=args.fraction, seed=args.seed, batch_size=args.batch_size, colour=args.colour)
    backbone = load_backbone(args.model, args.weights, device=args.device, preprocessing=args.preprocessing)
    layers = csv_list(args.layers)
    for layer in layers or []:
        backbone.resolve_layer(layer)  # unknown names fail before anything is written
    get_csf(args.csf)
    set_threads(args.threads)
    check_memory(forward_bytes(backbone, layers or backbone.default_layers, protocol.size, config.batch_size),
                 f"analyze at --size {protocol.size} with --batch-size {config.batch_size}",
                 "lower --size or --batch-size.")  # before anything is allocated or written
    with run_folder(args.out, args.overwrite) as run:  # built beside --out, swapped in whole at the end
        result = analyze(backbone, layers, config, device=args.device, dtype=dtype)
        check_responsive(result, args.contrast)
        write_analysis(result, run.path, report=not args.no_report, net=backbone.net)
    out = run.target
    summary = layer_summary(result.scores)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\n{len(result.scores)} channels scored in {result.info['timing_s']['total']:.1f} s; wrote {out}/")
    return 0


def check_responsive(result: Any, contrast: float) -> None:
    """Refuse an analysis in which some layer has no responsive channel: nothing of it can be selected
    (unresponsive channels never enter top-k), so its selection would be empty or meaningless."""
    from psychofeat.errors import DataError

    empty = result.selection.empty_layers()
    if empty:
        raise DataError(f"no channel of layer(s) {', '.join(empty)} responds to the gratings (every channel is "
                        f"unresponsive, PE 0), so none can be selected; at --contrast {contrast:g} check the stimulus "
                        "settings, or leave those layers out with --layers.")
