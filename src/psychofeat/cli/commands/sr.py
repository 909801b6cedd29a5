"""`psychofeat sr train|eval|upscale|experiment`: x4 super-resolution with SRResNet (see docs/sr.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from psychofeat.cli.common import (
    batch_arg,
    count0_arg,
    count_arg,
    csv_list,
    device_arg,
    fraction_arg,
    name_list,
    nonnegative_float,
    positive_float,
    seed_arg,
    show_help,
    size_arg,
)

if TYPE_CHECKING:
    from psychofeat.sr.train import TrainConfig

#: kept in step with psychofeat.sr.evaluate.DEFAULT_PERCEPTUAL (not imported: `--help` must not load torch)
DEFAULT_PERCEPTUAL = ("squeezenet1_1", "efficientnet_lite0", "vgg16")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sr",
        help="x4 super-resolution: train, evaluate and apply SRResNet",
        description="x4 super-resolution with SRResNet: training with a pixel or selected-channel perceptual loss "
        "(torchrun-ready), evaluation on Set5/Set14/BSD100 (PSNR/SSIM on Y, 4 px shave), and upscaling files.",
    )
    sub = p.add_subparsers(dest="sr_command", metavar="SUBCOMMAND")
    p.set_defaults(func=show_help(p))
    _register_train(sub)
    _register_eval(sub)
    _register_upscale(sub)
    _register_experiment(sub)


def _register_train(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "train",
        help="train or fine-tune SRResNet x4",
        description="Train SRResNet x4 on sr_train patches. Multi-GPU / multi-node: launch with "
        "`torchrun --nproc_per_node N -m psychofeat sr train ...`; --batch is the global batch.",
    )
    g = t.add_argument_group("loss")
    g.add_argument("--loss", default="pixel", choices=["pixel", "all", "top", "bottom", "random"],
                   help="pixel = L1; all/top/bottom/random = L1 + λ·feature distance over all channels of --layers "
                   "or the PE top/bottom/random --frac of --selection (default pixel)")
    g.add_argument("--selection", default=None, help="selection.json with per-channel scores (top/bottom/random)")
    g.add_argument("--layers", type=name_list, default=None,
                   help="comma-separated backbone layers (default: the selection's, else the backbone's metric layers)")
    g.add_argument("--lambda", dest="lam", type=nonnegative_float, default=1.0,
                   help="feature-term weight λ (default 1)")
    g.add_argument("--frac", type=fraction_arg, default=0.25,
                   help="fraction of each layer's channels kept (default 0.25)")
    g.add_argument("--selection-seed", type=seed_arg, default=0, help="seed of the random-k selection (default 0)")
    g.add_argument("--feature-mode", default="normalized", choices=["normalized", "mse"],
                   help="feature distance: unit-normalised channels (default) or plain feature MSE")
    g.add_argument("--backbone", default="vgg16", help="loss network (default vgg16)")
    g.add_argument("--backbone-weights", default=None, help="loss network weights source (default: ImageNet)")
    o = t.add_argument_group("optimisation")
    o.add_argument("--steps", type=count_arg, required=True, help="total optimisation steps")
    o.add_argument("--batch", type=batch_arg, default=16, help="global batch of patch pairs (default 16)")
    o.add_argument("--patch", type=size_arg, default=96, help="HR patch size; LR is patch/4 (default 96)")
    o.add_argument("--lr", type=positive_float, default=1e-4, help="Adam learning rate (default 1e-4)")
    o.add_argument("--seed", type=seed_arg, default=0, help="seed of initial weights and patch sampling (default 0)")
    o.add_argument("--init", default=None, help="checkpoint to start from (stage-2 fine-tuning)")
    m = t.add_argument_group("model and data")
    m.add_argument("--blocks", type=count_arg, default=None, help="residual blocks (default 16)")
    m.add_argument("--channels", type=count_arg, default=None, help="feature channels (default 64)")
    m.add_argument("--no-bn", dest="bn", action="store_const", const=False, default=None,
                   help="drop BatchNorm (MSRResNet-style)")
    m.add_argument("--include-jpeg", action="store_true", help="also train on the JPEG Sun-Hays80 images")
    m.add_argument("--train-pattern", default=None, help="glob selecting training files, e.g. 'kodak24_*'")
    r = t.add_argument_group("run")
    r.add_argument("--out", required=True, help="run folder (log.csv, checkpoints/, final.pt)")
    r.add_argument("--overwrite", action="store_true", help="allow a non-empty --out for a fresh run")
    r.add_argument("--resume", action="store_true", help="continue from --out/checkpoints/last.pt if present")
    r.add_argument("--ckpt-every", type=count_arg, default=500, help="checkpoint interval in steps (default 500)")
    r.add_argument("--log-every", type=count_arg, default=10, help="log interval in steps (default 10)")
    r.add_argument("--device", default="cpu", type=device_arg,
                   help="cpu or cuda (under torchrun each rank uses cuda:LOCAL_RANK)")
    r.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"],
                   help="mixed precision: auto = bf16 on CUDA, off on CPU")
    r.add_argument("--deterministic", action="store_true",
                   help="deterministic kernels on CUDA (slower; CPU runs are deterministic anyway)")
    r.add_argument("--test-kill-after", type=int, default=None, help=argparse.SUPPRESS)
    t.set_defaults(func=_train)


def _register_eval(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="PSNR/SSIM (Y, 4 px shave) on Set5/Set14/BSD100 vs bicubic",
                       description="Evaluate an SRResNet checkpoint against the bicubic baseline.")
    e.add_argument("--checkpoint", required=True, help="final.pt or checkpoints/last.pt of a run")
    e.add_argument("--sets", type=csv_list, default=["set5", "set14", "bsd100"],
                   help="comma-separated sets (default set5,set14,bsd100)")
    e.add_argument("--out", required=True, help="output folder (results.csv, summary.csv, report.html)")
    e.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out")
    e.add_argument("--label", default="srresnet", help="method name in the tables (default srresnet)")
    e.add_argument("--device", default="cpu", type=device_arg, help="torch device (default cpu)")
    e.add_argument("--limit", type=count_arg, default=None, help="only the first N images of each set (smoke tests)")
    e.add_argument("--examples", type=count0_arg, default=1,
                   help="images per set shown as crops in the report (default 1)")
    add_perceptual_arg(e)
    e.set_defaults(func=_eval)


def add_perceptual_arg(p: argparse.ArgumentParser, preset: bool = False) -> None:
    """`--perceptual`: networks whose all-channel distance joins PSNR/SSIM (shared by `sr eval` and `sr experiment`).

    With `preset=True` the default is None, so an experiment preset's own list applies unless the option is given.
    """
    p.add_argument("--perceptual", type=_perceptual_list, default=None if preset else list(DEFAULT_PERCEPTUAL),
                   help="comma-separated networks whose all-channel normalized distance is reported (lower is "
                   f"better; default {','.join(DEFAULT_PERCEPTUAL)}; 'none' for PSNR/SSIM only). A network that "
                   "is unavailable (e.g. EfficientNet-Lite0 without its optional package) is skipped with a "
                   "warning; the loss network of a compared model is marked '(training net)'")


def _perceptual_list(text: str) -> list[str]:
    return [] if text.strip().lower() in ("", "none") else csv_list(text) or []


def _register_upscale(sub: argparse._SubParsersAction) -> None:
    u = sub.add_parser("upscale", help="upscale an image (or a folder of images) with a checkpoint",
                       description="Upscale IN (a file, or a folder of images) into OUT (a file, or a folder: "
                       "one PNG per input image, same name). Non-image files in a folder are skipped and listed.")
    u.add_argument("input", metavar="IN", help="image file or folder")
    u.add_argument("output", metavar="OUT", help="output file (PNG recommended) or folder")
    u.add_argument("--checkpoint", required=True, help="a checkpoint written by `psychofeat sr train`")
    u.add_argument("--device", default="cpu", type=device_arg, help="torch device (default cpu)")
    u.add_argument("--scale", type=count_arg, default=4, help="the checkpoint's scale must be this (default 4)")
    u.add_argument("--overwrite", action="store_true", help="replace existing output files")
    u.set_defaults(func=_upscale)


def _register_experiment(sub: argparse._SubParsersAction) -> None:
    x = sub.add_parser(
        "experiment",
        help="the paper's SR experiment: pixel, then all/top/bottom/random-k feature losses, evaluated together",
        description="Stage 1: SRResNet x4 with L1. Stage 2: four fine-tunings from it with L1 + λ·d over all, PE "
        "top-k, bottom-k and random-k channels of the loss network (same λ, steps, seed, layers). Then all five "
        "models and bicubic on Set5/Set14/BSD100: PSNR/SSIM and perceptual distances of networks not in the loss. "
        "Defaults are the ≤ 10 min single-GPU run (--device cuda); --preset cpu is a budgeted CPU run, --tiny a "
        "smoke run. Every option below "
        "overrides the preset. See docs/sr.md.",
    )
    x.add_argument("--selection", required=True, help="selection.json of `psychofeat analyze` for the loss network")
    x.add_argument("--out", required=True, help="output folder (runs/, results.csv, summary.csv, paired.csv, "
                   "report.html)")
    x.add_argument("--preset", default=None, choices=["gpu", "cpu", "tiny"],
                   help="gpu (default): the ≤ 10 min single-GPU run; cpu: a budgeted run of about 1-1.5 h on a "
                   "2-core CPU (8-block SRResNet, 64 px patches, 2500 + 4 × 400 steps, first 30 images per set); "
                   "tiny: smoke run")
    x.add_argument("--tiny", action="store_true", help="same as --preset tiny (few small patches, Set5 only)")
    x.add_argument("--resume", action="store_true", help="continue an interrupted experiment in --out")
    x.add_argument("--overwrite", action="store_true", help="start afresh in a non-empty --out")
    o = x.add_argument_group("overrides (default: the preset's value)")
    o.add_argument("--stage1-steps", type=count_arg, default=None, help="pixel-loss steps (GPU preset 5000)")
    o.add_argument("--stage2-steps", type=count_arg, default=None, help="steps of each fine-tuning (GPU preset 2500)")
    o.add_argument("--batch", type=batch_arg, default=None, help="global batch (GPU preset 16)")
    o.add_argument("--patch", type=size_arg, default=None, help="HR patch size (GPU preset 96)")
    o.add_argument("--stage1-lr", type=positive_float, default=None, help="stage-1 Adam learning rate (2e-4)")
    o.add_argument("--stage2-lr", type=positive_float, default=None, help="stage-2 Adam learning rate (1e-4)")
    o.add_argument("--lambda", dest="lam", type=nonnegative_float, default=None, help="feature-term weight λ (0.1)")
    o.add_argument("--layers", type=name_list, default=None, help="loss layers (relu2_2,relu3_3,relu4_3)")
    o.add_argument("--feature-mode", default=None, choices=["normalized", "mse"], help="distance mode (normalized)")
    o.add_argument("--frac", type=fraction_arg, default=None, help="fraction of each layer's channels kept (0.25)")
    o.add_argument("--selection-seed", type=seed_arg, default=None, help="seed of the random-k selection (0)")
    o.add_argument("--seed", type=seed_arg, default=None, help="seed of weights and patch sampling (0)")
    o.add_argument("--blocks", dest="n_blocks", type=count_arg, default=None, help="SRResNet residual blocks (16)")
    o.add_argument("--channels", type=count_arg, default=None, help="SRResNet channels (64)")
    o.add_argument("--train-pattern", default=None, help="glob selecting training files (all lossless images)")
    o.add_argument("--sets", type=csv_list, default=None, help="benchmark sets (set5,set14,bsd100; --tiny: set5)")
    o.add_argument("--limit", type=count_arg, default=None, help="first N images of each set (all)")
    o.add_argument("--examples", type=count0_arg, default=None, help="images per set shown as crops in the report (1)")
    o.add_argument("--log-every", type=count_arg, default=None, help="log interval in steps (50)")
    o.add_argument("--ckpt-every", type=count_arg, default=None, help="checkpoint interval in steps (500)")
    add_perceptual_arg(x, preset=True)
    x.add_argument("--device", default=None, type=device_arg,
                   help="torch device for training and evaluation (default cpu)")
    x.add_argument("--amp", default=None, choices=["auto", "bf16", "fp16", "off"], help="mixed precision (auto)")
    x.set_defaults(func=_experiment)


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig that `sr train` options describe."""
    from psychofeat.sr.train import TrainConfig

    return TrainConfig(
        loss=args.loss, steps=args.steps, batch=args.batch, patch=args.patch, learning_rate=args.lr, seed=args.seed,
        selection=args.selection, layers=args.layers, lam=args.lam, frac=args.frac,
        selection_seed=args.selection_seed, feature_mode=args.feature_mode, backbone=args.backbone,
        backbone_weights=args.backbone_weights, n_blocks=args.blocks, channels=args.channels, bn=args.bn,
        init=args.init, include_jpeg=args.include_jpeg, train_pattern=args.train_pattern,
        ckpt_every=args.ckpt_every, log_every=args.log_every, device=args.device, amp=args.amp,
        deterministic=args.deterministic,
    )


def _train(args: argparse.Namespace) -> int:
    from psychofeat.sr.train import train

    cfg = train_config_from_args(args)
    res = train(cfg, args.out, resume=args.resume, overwrite=args.overwrite, _kill_after=args.test_kill_after)
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 reports
        print(f"trained {res.steps} steps in {res.elapsed_s:.1f} s, final loss {res.final_loss:.5g}: "
              f"{res.out / 'final.pt'}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from psychofeat.sr.evaluate import evaluate_checkpoint

    res = evaluate_checkpoint(args.checkpoint, args.out, args.sets, label=args.label, overwrite=args.overwrite,
                              perceptual=args.perceptual, device=args.device, limit=args.limit,
                              examples_per_set=args.examples)
    print(res.summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {Path(args.out) / 'report.html'}")
    return 0


_EXPERIMENT_OPTIONS = ("stage1_steps", "stage2_steps", "batch", "patch", "stage1_lr", "stage2_lr", "lam", "layers",
                       "feature_mode", "frac", "selection_seed", "seed", "n_blocks", "channels", "train_pattern",
                       "sets", "limit", "examples", "log_every", "ckpt_every", "perceptual", "device", "amp")


def _experiment(args: argparse.Namespace) -> int:
    from psychofeat.sr.experiment import format_summary, make_config, run_experiment

    cfg = make_config(args.selection, tiny=args.tiny, preset=args.preset,
                      **{k: getattr(args, k) for k in _EXPERIMENT_OPTIONS})
    res = run_experiment(cfg, args.out, resume=args.resume, overwrite=args.overwrite)
    print(format_summary(res.evaluation.summary))
    print(f"wall time {res.timing_s['total']:.1f} s; wrote {res.out / 'report.html'}")
    return 0


def _upscale(args: argparse.Namespace) -> int:
    from psychofeat.sr.upscale import load_upscaler, plan_upscale, upscale_files

    plan = plan_upscale(args.input, args.output, overwrite=args.overwrite)
    model = load_upscaler(args.checkpoint, scale=args.scale)
    for name in plan.skipped:
        print(f"skipped {name}", file=sys.stderr)
    for path in upscale_files(model, plan, device=args.device):
        print(path)
    return 0
