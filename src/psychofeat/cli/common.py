"""Argument helpers shared by several verbs, so options mean the same everywhere."""

from __future__ import annotations

import argparse
from collections.abc import Callable

#: `--dtype` values (psychofeat.precision.DTYPE_NAMES, kept here so `--help` does not import torch)
DTYPE_CHOICES = ("float32", "bfloat16", "float16", "auto")


def add_model_args(p: argparse.ArgumentParser, default_model: str = "vgg16") -> None:
    p.add_argument(
        "--model", default=default_model, help=f"backbone name (default {default_model}); see `psychofeat layers`"
    )
    p.add_argument(
        "--weights",
        default=None,
        help="weights source: 'imagenet' (default: the original ImageNet weights of the model), 'torchvision', "
        "'random[:SEED]', 'shuffled[:SEED]', or a path to a .pth state dict",
    )
    p.add_argument(
        "--preprocessing",
        default=None,
        help="override the preprocessing the weights expect (torchvision, caffe-vgg, caffe-squeezenet, "
        "tf-efficientnet-lite, identity); needed for a bare .pth trained with something other than torchvision's",
    )


def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    p.add_argument("--dtype", default="float32", choices=list(DTYPE_CHOICES),
                   help="compute dtype (default float32; auto = bfloat16 only where the device computes it natively)")


def add_out_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--out", default=default, help=f"output directory (default {default})")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty output directory")


def add_threads_arg(p: argparse.ArgumentParser, default: int | None = None, note: str = "") -> None:
    """`--threads`: torch's intra-op CPU threads (1 is the safe choice when the cores are shared; docs/iqa.md)."""
    shown = "torch's, = the cores" if default is None else str(default)
    p.add_argument("--threads", type=int, default=default, help=f"CPU threads (default: {shown}){note}")


def set_threads(n: int | None) -> None:
    """Apply `--threads` to this process (None: leave torch's setting)."""
    if n is None:
        return
    if n < 1:
        from psychofeat.errors import InputError

        raise InputError(f"--threads must be at least 1, got {n}.")
    import torch

    torch.set_num_threads(n)


def csv_list(text: str | None) -> list[str] | None:
    """'a,b, c' -> ['a', 'b', 'c']; None stays None."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def show_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A verb with sub-verbs, given none, lists them (as `psychofeat` alone lists the verbs)."""

    def show(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    return show
