"""Argument helpers shared by several verbs, so options mean the same everywhere.

This is the door for command-line inputs: numbers are parsed by the types below (finite, in range; sizes and
thread counts bounded), devices are checked to exist, and a bad value is a one-line usage error (exit status 2)
before any work starts. Library calls validate the same things again where the values are used.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

#: `--dtype` values (psychofeat.precision.DTYPE_NAMES, kept here so `--help` does not import torch)
DTYPE_CHOICES = ("float32", "bfloat16", "float16", "auto")
#: the largest image or stimulus side accepted at the door (px); the memory check refuses smaller ones that do not fit
MAX_SIDE = 1 << 20
#: the largest batch accepted at the door; the memory check refuses smaller ones that do not fit
MAX_BATCH = 1 << 16


def max_threads() -> int:
    """The largest `--threads`: four per core, at least 64 (more only multiplies thread stacks and contention)."""
    return max(64, 4 * (os.cpu_count() or 1))


def _number(text: str, kind: type) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, got {text!r}") \
            from None


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool, noun: str) -> str:
    article = "an" if noun[0] in "aeiou" else "a"
    if hi is None and lo == 0:
        return f"a positive {noun}" if lo_open else f"{article} {noun} ≥ 0"
    if hi is None and lo is not None:
        return f"{article} {noun} {'>' if lo_open else '≥'} {_g(lo, '')}"
    return (f"{article} {noun} in {'(' if lo_open else '['}{_g(lo, '-inf')}, {_g(hi, 'inf')}"
            f"{')' if hi_open else ']'}")


def float_in(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
             hi_open: bool = False, name: str = "") -> Callable[[str], float]:
    """An argparse type: a finite float in [lo, hi] (`lo_open`/`hi_open`: the end is excluded)."""
    want = _range_text(lo, hi, lo_open, hi_open, "number")

    def parse(text: str) -> float:
        v = _number(text, float)
        below = lo is not None and (v < lo or (lo_open and v == lo))
        if not math.isfinite(v) or below or (hi is not None and (v > hi or (hi_open and v == hi))):
            raise argparse.ArgumentTypeError(f"{name} must be {want}, got {text}".lstrip())
        return v

    parse.__name__ = "number"
    return parse


def int_in(lo: int | None = None, hi: int | None = None, name: str = "", want: str = "") -> Callable[[str], int]:
    """An argparse type: an integer in [lo, hi] (`want`: how the range reads in the message, e.g. "a positive
    integer" where the upper bound only guards against nonsense)."""
    text_want = want or _range_text(lo, hi, False, False, "integer")

    def parse(text: str) -> int:
        v = int(_number(text, int))
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            bound = f" (at most {hi})" if want and hi is not None and v > hi else ""
            raise argparse.ArgumentTypeError(f"{name} must be {text_want}{bound}, got {text}".lstrip())
        return v

    parse.__name__ = "integer"
    return parse


def _g(v: float | None, none: str) -> str:
    if v is None:
        return none
    return str(v) if isinstance(v, int) else f"{v:g}"


#: finite numbers > 0 (luminance, learning rates, ...)
positive_float = float_in(0.0, lo_open=True)
#: pixels per visual degree
ppd_arg = float_in(0.0, lo_open=True, name="ppd (pixels per visual degree)")
#: finite numbers ≥ 0 (loss weights, ...)
nonnegative_float = float_in(0.0)
#: a fraction of channels: (0, 1]
fraction_arg = float_in(0.0, 1.0, lo_open=True)
#: a Michelson contrast: [0, 1]
contrast_arg = float_in(0.0, 1.0)
#: an image or stimulus side in pixels
size_arg = int_in(1, MAX_SIDE, want="a positive number of pixels")
#: images per batch
batch_arg = int_in(1, MAX_BATCH, want="a positive integer")
#: a count of at least one (steps, seeds, frequencies, ...)
count_arg = int_in(1, 1 << 31, want="a positive integer")
#: a count that may be 0 (bootstrap resamples, ...)
count0_arg = int_in(0, 1 << 31, want="an integer ≥ 0")
#: a seed (numpy generators take non-negative seeds)
seed_arg = int_in(0, (1 << 63) - 1, want="an integer ≥ 0")


def threads_arg(text: str) -> int:
    """An argparse type: a thread count in [1, `max_threads()`]."""
    return int_in(1, max_threads())(text)


def device_arg(text: str) -> str:
    """An argparse type: a torch device that exists on this machine (`psychofeat.precision.check_device`)."""
    if text == "cpu":
        return text  # the default: no torch import for --help
    from psychofeat.errors import InputError
    from psychofeat.precision import check_device

    try:
        check_device(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


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
    p.add_argument("--device", default="cpu", type=device_arg,
                   help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    p.add_argument("--dtype", default="float32", choices=list(DTYPE_CHOICES),
                   help="compute dtype (default float32; auto = bfloat16 only where the device computes it natively)")


def add_out_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--out", default=default, help=f"output directory (default {default})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the previous run in a non-empty output directory (a psychofeat output folder only)")


def add_threads_arg(p: argparse.ArgumentParser, default: int | None = None, note: str = "") -> None:
    """`--threads`: torch's intra-op CPU threads (1 is the safe choice when the cores are shared; docs/iqa.md)."""
    shown = "torch's, = the cores" if default is None else str(default)
    p.add_argument("--threads", type=threads_arg, default=default, metavar="N",
                   help=f"CPU threads, 1 to {max_threads()} (default: {shown}){note}")


def set_threads(n: int | None) -> None:
    """Apply `--threads` to this process (None: leave torch's setting)."""
    if n is None:
        return
    if not 1 <= n <= max_threads():
        from psychofeat.errors import InputError

        raise InputError(f"--threads must be in [1, {max_threads()}], got {n}.")
    import torch

    torch.set_num_threads(n)


def csv_list(text: str | list[str] | None) -> list[str] | None:
    """'a,b, c' -> ['a', 'b', 'c']; None stays None; a list (already parsed by `name_list`) is returned as is."""
    if text is None or isinstance(text, list):
        return text
    return [t.strip() for t in text.split(",") if t.strip()]


def name_list(text: str) -> list[str]:
    """argparse type of options naming layers: 'a,b, c' -> ['a', 'b', 'c']. An empty list is refused: `--layers ""`
    must not silently mean "the default layers"."""
    names = csv_list(text) or []
    if not names:
        raise argparse.ArgumentTypeError("give at least one name, comma-separated (leave the option out for the "
                                         "default)")
    return names


def show_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A verb with sub-verbs, given none, lists them (as `psychofeat` alone lists the verbs)."""

    def show(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    return show
