"""`psychofeat hvs ...`: human-vision checks. Sub-verbs share this parser so siblings (network-csf, detect)
can be added next to `csf-check` without touching the top-level CLI."""

from __future__ import annotations

import argparse
from typing import Any

from psychofeat.cli.commands.hvs_battery import register as register_battery
from psychofeat.cli.common import (
    add_model_args,
    add_out_args,
    batch_arg,
    count_arg,
    csv_list,
    device_arg,
    float_in,
    fraction_arg,
    name_list,
    nonnegative_float,
    positive_float,
    ppd_arg,
    show_help,
    size_arg,
)


def register(subparsers: Any) -> None:
    """Add the `hvs` verb and its sub-verbs. A new sub-verb (network-csf, detect) gets its own
    `_register_<name>(hvs_sub)` below and one call here."""
    parser = subparsers.add_parser(
        "hvs",
        help="human vision: CSF models checked against psychophysical threshold data",
        description="Human-vision reference checks built on castleCSF's contrast-sensitivity measurements.",
    )
    hvs_sub = parser.add_subparsers(dest="hvs_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=show_help(parser))
    _register_csf_check(hvs_sub)
    _register_network_csf(hvs_sub)
    _register_detect(hvs_sub)
    register_battery(hvs_sub)


def _register_csf_check(hvs_sub: Any) -> None:
    p = hvs_sub.add_parser(
        "csf-check",
        help="compare the CSF models with achromatic foveal static human thresholds",
        description="Score each CSF model (psychofeat.csf) on castleCSF's achromatic, foveal, static Gabor/grating "
        "thresholds: RMSE of log10 sensitivity with one free vertical shift per dataset. Writes csf_check.csv, "
        "csf_check_rows.csv, manifest.json and report.html.",
    )
    p.add_argument(
        "--datasets",
        choices=["modelfest", "all"],
        default="all",
        help="'modelfest': ModelFest's 14 rows only; 'all': every achromatic foveal static dataset, ModelFest "
        "included and listed first (default all)",
    )
    p.add_argument("--models", default=None, help="comma-separated CSF models (default: all; see psychofeat.csf)")
    p.add_argument(
        "--achromatic-max-angle",
        type=float_in(0.0, 90.0),
        default=5.0,
        metavar="DEG",
        help="a row is achromatic when its cone-contrast vector is within DEG of (1,1,1) (default 5; docs/csf.md)",
    )
    add_out_args(p, default="out/hvs/csf_check")
    p.set_defaults(func=_csf_check)


def _csf_check(args: argparse.Namespace) -> int:
    from psychofeat.hvs.csf_check import run_csf_check

    table = run_csf_check(
        args.out,
        datasets=args.datasets,
        model_names=csv_list(args.models),
        overwrite=args.overwrite,
        max_angle_deg=args.achromatic_max_angle,
    )
    shown = table[["dataset", "model", "n", "shift", "rmse"]].round({"shift": 3, "rmse": 3})
    print(shown.to_string(index=False))
    print(f"wrote {args.out}/csf_check.csv, manifest.json, report.html")
    return 0


def _add_display_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ppd", type=ppd_arg, default=60.0, help="pixels per visual degree (default 60, as the analysis)")
    p.add_argument("--size", type=size_arg, default=224, help="image size in pixels (default 224, as the analysis)")


def _register_network_csf(hvs_sub: Any) -> None:
    p = hvs_sub.add_parser(
        "network-csf",
        help="each layer's own contrast sensitivity function, compared with the human CSF",
        description="For every layer and frequency, the lowest Michelson contrast at which the layer's feature map "
        "differs from its response to the uniform field by a relative criterion (bisection on log contrast, phases "
        "combined by RMS); sensitivity = 1/threshold. Compares each curve's shape with the human CSF (peak, "
        "half-maximum bandwidth, correlation of log sensitivities). Writes network_csf.csv, network_csf_curves.csv, "
        "manifest.json and report.html. See docs/network_csf.md.",
    )
    add_model_args(p)
    p.add_argument("--control", default="random",
                   help="a second weights source measured the same way for comparison (default 'random', the "
                   "seeded random initialisation; 'none' to skip)")
    p.add_argument("--layers", type=name_list, default=None,
                   help="comma-separated layers (default: the model's analysis layers, for vgg16 the 13 ReLU layers)")
    _add_display_args(p)
    p.add_argument("--n-freq", type=count_arg, default=24,
                   help="frequencies, log-spaced 0.5 cpd to 0.45·ppd (default 24)")
    p.add_argument("--n-phase", type=count_arg, default=4,
                   help="equally spaced phases combined by RMS (default 4; at least 3)")
    p.add_argument("--freq-stimulus", choices=["radial", "linear"], default="radial",
                   help="radial gratings (default, as the analysis) or linear gratings over all orientations")
    p.add_argument("--criterion", type=positive_float, default=0.01,
                   help="relative response change at threshold, ||a(grating) - a(gray)|| / ||a(gray)|| (default 0.01)")
    p.add_argument("--response", choices=["map", "means"], default="map",
                   help="compare whole feature maps (default) or channel means")
    p.add_argument("--csf", default="castle", help="human CSF to compare with (default castle)")
    p.add_argument("--luminance", type=positive_float, default=100.0, help="display luminance in cd/m² (default 100)")
    p.add_argument("--contrast-min", type=float_in(0.0, 1.0, lo_open=True, hi_open=True), default=1e-5,
                   help="lower end of the contrast search (default 1e-5)")
    p.add_argument("--steps", type=count_arg, default=8, help="bisection steps (default 8; log10 bracket 5/2^steps)")
    p.add_argument("--batch-size", type=batch_arg, default=16, help="images per forward pass (default 16)")
    p.add_argument("--device", default="cpu", type=device_arg, help="torch device, e.g. cpu, cuda (default cpu)")
    add_out_args(p, default="out/hvs/network_csf")
    p.set_defaults(func=_network_csf)


def _network_csf(args: argparse.Namespace) -> int:
    from psychofeat.hvs.network_csf import NetworkCSFConfig
    from psychofeat.hvs.network_csf_report import run_network_csf
    from psychofeat.stimuli import ProbeProtocol

    protocol = ProbeProtocol(ppd=args.ppd, size=args.size, n_freq=args.n_freq, n_phase=args.n_phase,
                             n_orient_freq=min(12, args.n_freq - 1), freq_stimulus=args.freq_stimulus)
    protocol.check_holds_lowest_frequency()  # refused as by `psychofeat analyze`, before anything is loaded or written
    config = NetworkCSFConfig(protocol=protocol, luminance=args.luminance, human_csf=args.csf,
                              criterion=args.criterion, response=args.response,
                              contrast_range=(args.contrast_min, 1.0), n_steps=args.steps, batch_size=args.batch_size)
    weights = [args.weights] + ([] if args.control in (None, "", "none") else [args.control])
    table = run_network_csf(args.out, args.model, weights, csv_list(args.layers), config, args.overwrite,
                            args.device)
    cols = ["weights", "layer", "n_detected", "peak_cpd", "bandwidth_oct", "bandwidth_open", "pearson_r",
            "rmse_shifted"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {args.out}/network_csf.csv, network_csf_curves.csv, manifest.json, report.html")
    return 0


def _register_detect(hvs_sub: Any) -> None:
    p = hvs_sub.add_parser(
        "detect",
        help="threshold benchmark: do metrics give the same distance to every human threshold stimulus?",
        description="Render castleCSF's achromatic foveal static Gabor/grating rows at their human threshold contrast "
        "and score each metric: s.d. of log10 distance(stimulus, blank) per dataset (0 is perfect), and its own "
        "predicted thresholds (bisection to a criterion fitted once per metric and dataset) vs the human ones: RMSE "
        "of log10 threshold and Spearman correlation. Writes detection_scores.csv, detection_rows.csv, "
        "detection_random.csv, stimuli.csv, stimuli_skipped.csv, manifest.json and report.html. See docs/detection.md.",
    )
    p.add_argument("--metrics", default="all",
                   help="comma-separated: MODEL (all channels, normalized), MODEL:mse, MODEL:layers, MODEL:random, pe "
                   "(top/bottom/random-k from --selection), pe-soft (its soft weightings soft-pe/-rank/-mu1/-mu2), "
                   "zoo (other loadable models), psnr, ssim; 'all' (default) = "
                   "vgg16, vgg16:mse, vgg16:layers, vgg16:random, zoo, psnr, ssim, and pe when --selection is given")
    p.add_argument("--selection", default=None, help="selection.json written by `psychofeat analyze` (for 'pe')")
    p.add_argument("--seeds", type=count_arg, default=20, help="random-k selections (seeds 0..N-1, default 20)")
    p.add_argument("--fraction", type=fraction_arg, default=None,
                   help="fraction k of each layer (default: the selection's)")
    p.add_argument("--datasets", default="all", help="'all' (default), 'modelfest', or one dataset id")
    _add_display_args(p)
    p.add_argument("--min-luminance", type=nonnegative_float, default=10.0,
                   help="skip rows whose background is darker than this (cd/m², default 10: photopic)")
    p.add_argument("--width", type=positive_float, default=2.5,
                   help="search bracket: human threshold ÷/× 10^WIDTH (default 2.5)")
    p.add_argument("--steps", type=count_arg, default=6, help="bisection steps (default 6, then log-log interpolation)")
    p.add_argument("--batch-size", type=batch_arg, default=8, help="images per forward pass (default 8)")
    p.add_argument("--device", default="cpu", type=device_arg, help="torch device, e.g. cpu, cuda (default cpu)")
    add_out_args(p, default="out/hvs/detect")
    p.set_defaults(func=_detect)


def _detect(args: argparse.Namespace) -> int:
    from psychofeat.hvs.detection import DetectionConfig
    from psychofeat.hvs.detection_report import run_detect
    from psychofeat.hvs.detection_scores import summary_table
    from psychofeat.hvs.threshold_stimuli import Display

    result = run_detect(
        args.out, csv_list(args.metrics) or ["all"], args.selection, args.datasets,
        Display(ppd=args.ppd, size=args.size), args.min_luminance, args.seeds, args.fraction,
        DetectionConfig(width_decades=args.width, n_steps=args.steps, batch_size=args.batch_size),
        args.overwrite, args.device,
    )
    print(summary_table(result.scores, result.random).to_string(index=False))
    print(f"wrote {args.out}/detection_scores.csv, detection_rows.csv, report.html, manifest.json")
    return 0
