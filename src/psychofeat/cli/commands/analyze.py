"""`psychofeat analyze`: probe every channel, score mu1/mu2/PE, select channels, write the report."""

from __future__ import annotations

import argparse

from psychofeat.cli.common import add_device_args, add_model_args, add_out_args, csv_list


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "analyze",
        help="probe every channel of a network with gratings; score mu1, mu2 and PE; write report.html",
        description="Probe every channel of the chosen layers with sinusoidal gratings, score CSF-weighted frequency "
        "sensitivity (mu1), orientation selectivity (mu2) and Perceptual Efficacy (PE), and select channels.",
    )
    add_model_args(p)
    p.add_argument("--layers", default=None, help="comma-separated layers (default: the model's analysis layers, "
                   "for vgg16 the 13 ReLU layers)")
    p.add_argument("--ppd", type=float, default=60.0, help="pixels per visual degree (default 60)")
    p.add_argument("--size", type=int, default=224, help="stimulus size in pixels (default 224)")
    p.add_argument("--contrast", type=float, default=0.5, help="Michelson contrast of the gratings (default 0.5)")
    p.add_argument("--n-freq", type=int, default=24, help="frequencies in the sweep (default 24)")
    p.add_argument("--n-orient", type=int, default=16, help="orientations (default 16)")
    p.add_argument("--n-phase", type=int, default=4, help="phases averaged (default 4)")
    p.add_argument("--n-orient-freq", type=int, default=12,
                   help="frequencies of the orientation-sweep grid f* is snapped to "
                   "(default 12; n-freq − 1 = no snapping)")
    p.add_argument("--freq-stimulus", choices=["radial", "linear"], default="radial",
                   help="frequency stimuli: radial gratings (default) or linear gratings averaged over orientations")
    p.add_argument("--csf", default="barten", help="CSF model weighting mu1: barten (default), castle, mannos_sakrison")
    p.add_argument("--luminance", type=float, default=100.0, help="adaptation luminance in cd/m² (default 100)")
    p.add_argument("--pe", default="product", choices=["product", "rank_product", "rank_geomean"],
                   help="how mu1 and mu2 combine into PE (default product)")
    p.add_argument("--fraction", type=float, default=0.25,
                   help="fraction of each layer's channels selected (default 0.25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-k control selection")
    p.add_argument("--batch-size", type=int, default=16)
    add_device_args(p)
    add_out_args(p, "out/analyze")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from psychofeat.backbones import load_backbone
    from psychofeat.csf import get_csf
    from psychofeat.experiments.analyze import AnalysisConfig, analyze, write_analysis
    from psychofeat.experiments.analyze_report import layer_summary
    from psychofeat.io import prepare_out_dir
    from psychofeat.stimuli import ProbeProtocol

    protocol = ProbeProtocol(
        ppd=args.ppd, size=args.size, contrast=args.contrast, n_freq=args.n_freq, n_orient=args.n_orient,
        n_phase=args.n_phase, n_orient_freq=args.n_orient_freq, freq_stimulus=args.freq_stimulus,
    )
    protocol.check_holds_lowest_frequency()
    config = AnalysisConfig(protocol=protocol, csf=args.csf, luminance=args.luminance, combination=args.pe,
                            fraction=args.fraction, seed=args.seed, batch_size=args.batch_size)
    backbone = load_backbone(args.model, args.weights, device=args.device, preprocessing=args.preprocessing)
    layers = csv_list(args.layers)
    for layer in layers or []:
        backbone.resolve_layer(layer)  # unknown names fail before anything is written
    get_csf(args.csf)
    out = prepare_out_dir(args.out, args.overwrite)
    result = analyze(backbone, layers, config, device=args.device, dtype=args.dtype)
    write_analysis(result, out, report=not args.no_report, net=backbone.net)
    summary = layer_summary(result.scores)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\n{len(result.scores)} channels scored in {result.info['timing_s']['total']:.1f} s; wrote {out}/")
    return 0
