"""`psychofeat invert`: reconstruct images from the features of PE top-k, bottom-k, random-k and all channels."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from psychofeat.cli.common import (
    add_device_args,
    add_model_args,
    add_out_args,
    add_threads_arg,
    count0_arg,
    count_arg,
    csv_list,
    fraction_arg,
    name_list,
    nonnegative_float,
    positive_float,
    seed_arg,
    set_threads,
    size_arg,
)

if TYPE_CHECKING:
    from psychofeat.experiments.invert_experiment import InvertConfig


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "invert",
        help="feature inversion: what top/bottom/random/all channels keep of an image (the loss claim on a CPU)",
        description="Reconstruct each image from the features of a channel selection by optimising its pixels "
        "from one shared seeded start, with the same budget for every selection; score the reconstructions "
        "against the originals (PSNR, SSIM, held-out networks' distances) and compare top-k with all, random-k "
        "and bottom-k per image. Writes results.csv, summary.csv, paired.csv, curves.csv, recon/*.png, "
        "manifest.json and report.html (docs/invert.md).",
    )
    p.add_argument("--selection", default="out/analyze/selection.json",
                   help="selection.json of `psychofeat analyze` for the same --model/--weights "
                   "(default out/analyze/selection.json)")
    add_model_args(p)
    p.add_argument("--layers", type=name_list, default=None,
                   help="comma-separated layers, each inverted alone (default relu1_2,relu2_2,relu3_3,relu4_3)")
    p.add_argument("--no-combined", action="store_true", help="skip the run over all --layers together")
    p.add_argument("--fraction", type=fraction_arg, default=None,
                   help="k as a fraction of each layer's channels (0.25)")
    p.add_argument("--seeds", type=count0_arg, default=None, help="random-k seeds 0..N-1 (default 2)")
    p.add_argument("--mode", choices=["mse", "normalized"], default=None,
                   help="distance optimised: mse (feature matching, default) or normalized")
    p.add_argument("--steps", type=count_arg, default=None, help="Adam steps per inversion (default 100)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="Adam learning rate, cosine-decayed to 0 (default 0.1)")
    p.add_argument("--param", choices=["clamp", "sigmoid"], default=None,
                   help="how pixels stay in [0, 1]: projection after each step (clamp, default) or x = sigmoid(z)")
    p.add_argument("--tv", type=nonnegative_float, default=None,
                   help="weight of a total-variation prior (default 0: none)")
    p.add_argument("--noise", type=nonnegative_float, default=None,
                   help="s.d. of the start's noise around grey (default 0.02)")
    p.add_argument("--init-seed", type=seed_arg, default=None, help="seed of the start's noise (default 0)")
    p.add_argument("--images", default=None, help="folder of images (default: Kodak24 from the shared data)")
    p.add_argument("--n-images", type=count_arg, default=None, help="images used (default 8)")
    p.add_argument("--size", type=size_arg, default=None, help="side of the centre square, resized, in px (default 96)")
    p.add_argument("--perceptual", default=None,
                   help="networks whose all-channel distance scores the results "
                   "(default squeezenet1_1,efficientnet_lite0,vgg16)")
    p.add_argument("--n-boot", type=count0_arg, default=None,
                   help="bootstrap resamples of the paired CIs (default 2000)")
    p.add_argument("--report-images", type=count0_arg, default=None, help="images shown per layer in report.html (4)")
    p.add_argument("--quick", action="store_true", help="2 images, relu2_2, 10 steps, 64 px: a smoke run")
    p.add_argument("--resume", action="store_true",
                   help="reuse the finished inversions of an interrupted run in --out (same settings)")
    add_threads_arg(p, note="; use 1 on a shared CPU")
    add_device_args(p)
    p.set_defaults(dtype=None)  # the experiment's own default: auto (bf16 where native, else fp32; docs/invert.md)
    add_out_args(p, "out/invert")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> InvertConfig:
    """--quick's presets, then every option given explicitly (an option left out keeps the preset or default)."""
    from psychofeat.experiments.invert_experiment import InvertConfig, make_config

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(InvertConfig) if hasattr(args, f.name)}
    layers, perceptual = csv_list(args.layers), csv_list(args.perceptual)
    given["layers"] = tuple(layers) if layers else None
    given["perceptual"] = tuple(perceptual) if perceptual is not None else None  # "" means no held-out network
    if args.no_combined:
        given["combined"] = False
    return make_config(quick=args.quick, **given)


def run(args: argparse.Namespace) -> int:
    import sys

    from psychofeat.experiments.invert_experiment import run_invert_study
    from psychofeat.experiments.invert_report import write_outputs

    set_threads(args.threads)
    cfg = config_from_args(args)
    result = run_invert_study(cfg, args.out, resume=args.resume, overwrite=args.overwrite,
                        log=lambda s: print(s, file=sys.stderr))
    write_outputs(result)
    p = result.paired
    cols = ["layers", "score", "method", "reference", "mean_diff", "ci_low", "ci_high", "wins"]
    show = p[p["score"].isin(["psnr", "ssim"]) | p["score"].str.startswith(("squeezenet", "efficientnet"))]
    print(show[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\n{len(result.info['runs'])} inversions in {result.info['timing_s']['total']:.0f} s; wrote {result.out}/")
    return 0
