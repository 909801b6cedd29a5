"""`psychofeat hvs battery`: the low-level vision battery (docs/battery.md).

Hooked into `psychofeat hvs` by `cli/commands/hvs.py` with one call: ``hvs_battery.register(hvs_sub)``.
"""

from __future__ import annotations

import argparse
from typing import Any

from psychofeat.cli.common import (
    add_out_args,
    add_threads_arg,
    batch_arg,
    count0_arg,
    count_arg,
    device_arg,
    fraction_arg,
    name_list,
    positive_float,
    ppd_arg,
    size_arg,
)


def register(hvs_sub: Any) -> None:
    """Add the `battery` sub-verb to the `hvs` sub-parsers."""
    p = hvs_sub.add_parser(
        "battery",
        help="low-level vision battery: detection, masking and matching vs human data, per network, selection "
        "and channel",
        description="Contrast detection (vs frequency, luminance, area), phase-coherent and phase-incoherent masking, "
        "and contrast matching, on the CVPR 2025 protocol (Cai et al.; sRGB display, 400 cd/m², 60 ppd, 224 px), "
        "for networks, their random-weight controls, PE top/bottom/random/all selections, single channels, PSNR "
        "and SSIM. Writes results.csv, per_channel.csv, pe_correlation.csv, selections.csv, curves.csv, "
        "detection_rows.csv, manifest.json and report.html. See docs/battery.md.",
    )
    p.add_argument("--models", type=name_list, default="vgg16", help="comma-separated backbones (default vgg16)")
    p.add_argument("--controls", "--weights", dest="controls", type=name_list, default="random",
                   help="weights controls measured next to each model's own weights, comma-separated (default "
                   "'random': seeded random initialisation; 'none' for none)")
    p.add_argument("--metrics", type=name_list, default="pe,psnr,ssim",
                   help="further metric tokens of `hvs detect` (pe: top/bottom/random/all of --selection; psnr, ssim; "
                   "default pe,psnr,ssim)")
    p.add_argument("--selection", default="pe",
                   help="'pe' (default: the bundled selection of the first model; PE only) or a selection.json of "
                   "`psychofeat analyze` (carries mu1 and mu2 too)")
    p.add_argument("--tests", type=name_list, default="all",
                   help="comma-separated: detection_frequency, detection_luminance, detection_area, masking_coherent, "
                   "masking_incoherent, matching (default all)")
    p.add_argument("--seeds", type=count_arg, default=None, help="random-k selections (default 20; --quick 2)")
    p.add_argument("--fraction", type=fraction_arg, default=None, help="k as a fraction of each layer "
                   "(default: the selection's)")
    p.add_argument("--peak-luminance", type=positive_float, default=400.0,
                   help="display peak luminance in cd/m² (sRGB encoding; default 400, as the CVPR 2025 tests)")
    p.add_argument("--ppd", type=ppd_arg, default=60.0, help="pixels per degree (default 60)")
    p.add_argument("--size", type=size_arg, default=224, help="image size in pixels (default 224)")
    p.add_argument("--permutations", type=count0_arg, default=None,
                   help="permutations of the per-channel tests (default 2000; --quick 200)")
    p.add_argument("--batch-size", type=batch_arg, default=8, help="images per forward pass (default 8)")
    p.add_argument("--device", default="cpu", type=device_arg, help="torch device (default cpu)")
    add_threads_arg(p, note="; 1 is faster when other jobs share the cores")
    p.add_argument("--quick", action="store_true",
                   help="a smoke test (< 1 min with --models none --metrics psnr): few conditions, 2 seeds")
    add_out_args(p, default="out/hvs/battery")
    p.set_defaults(func=_battery)


def _battery(args: argparse.Namespace) -> int:
    from psychofeat.cli.common import set_threads
    from psychofeat.display import DisplayModel
    from psychofeat.hvs.battery import TESTS, BatteryConfig, quick_config, run_battery
    from psychofeat.hvs.battery_report import summary_table, write_report
    from psychofeat.hvs.battery_stimuli import Viewing

    set_threads(args.threads)
    over: dict[str, Any] = {"batch_size": args.batch_size}
    if args.seeds is not None:
        over["seeds"] = args.seeds
    if args.fraction is not None:
        over["fraction"] = args.fraction
    if args.permutations is not None:
        over["n_permutations"] = max(1, args.permutations)
    config = quick_config(**over) if args.quick else BatteryConfig(**over)
    models = [m for m in args.models if m != "none"]
    controls = [c for c in args.controls if c != "none"]
    tests = TESTS if args.tests == ["all"] else tuple(args.tests)
    view = Viewing(DisplayModel(peak_luminance=args.peak_luminance), args.ppd, args.size)
    result = run_battery(args.out, models, controls, list(args.metrics), args.selection, view, config,
                         tests, args.overwrite, args.device, extra_writer=write_report)
    with_scores = summary_table(result.results)
    print(with_scores.to_string(index=False))
    print(f"wrote {args.out}/results.csv, per_channel.csv, pe_correlation.csv, report.html, manifest.json")
    return 0
