"""Reading the images of a sample for a full-reference metric: checked, optionally resized, as tensors.

* Images are 1x3xHxW float32 in [0, 1] (`psychofeat.images.load_image`): greyscale files are replicated to
  three channels and an alpha channel is dropped — documented conversions, not errors.
* A distorted image and its reference must have the same size (a full-reference metric compares them
  position by position); otherwise an `InputError` names both files and both sizes.
* `short_side` (CLI `--resize SHORT_SIDE`) scales an image so its shorter side has that many pixels,
  keeping the aspect ratio (long side rounded to the nearest pixel). Filter: bicubic (Keys, a = -0.5) with
  antialiasing — when shrinking, the kernel is widened by the scale factor, as in PIL's `Image.resize` —
  via `torch.nn.functional.interpolate(mode="bicubic", antialias=True, align_corners=False)` on the float
  image, then clamped to [0, 1] (bicubic overshoots at edges). Both images of a pair get the same size,
  since they are checked to match first. No resizing is the default: native resolution.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from psychofeat.errors import InputError
from psychofeat.images import check_pair, load_image

PathLike = str | os.PathLike[str]


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(H, W) after scaling the shorter side to `short_side` (aspect ratio kept, long side rounded)."""
    if short_side < 1:
        raise InputError(f"--resize must be a positive number of pixels, got {short_side}.")
    if height <= width:
        return short_side, max(1, round(width * short_side / height))
    return max(1, round(height * short_side / width)), short_side


def resize_short_side(x: torch.Tensor, short_side: int) -> torch.Tensor:
    """Antialiased bicubic resize of an Nx3xHxW batch so that min(H, W) == short_side (see module doc)."""
    h, w = x.shape[-2:]
    size = resized_shape(int(h), int(w), short_side)
    if size == (h, w):
        return x
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp_(0.0, 1.0)


def load_for_metric(path: PathLike, short_side: int | None = None) -> torch.Tensor:
    """One image as 1x3xHxW in [0, 1], resized when `short_side` is given (e.g. a reference loaded once)."""
    x = load_image(path)
    return resize_short_side(x, short_side) if short_side is not None else x


def check_same_size(
    distorted: torch.Tensor, reference: torch.Tensor, distorted_path: PathLike, reference_path: PathLike
) -> None:
    """`InputError` naming both files when a distorted image and its reference differ in size."""
    if distorted.shape[-2:] != reference.shape[-2:]:
        dh, dw = distorted.shape[-2:]
        rh, rw = reference.shape[-2:]
        raise InputError(
            f"distorted image {distorted_path} is {dw}x{dh} px but its reference {reference_path} is {rw}x{rh} px; "
            "a full-reference metric compares them pixel by pixel. Fix the dataset (crop or resize one of them)."
        )


def load_pair(
    distorted: PathLike, reference: PathLike, short_side: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(distorted, reference) as two checked 1x3xHxW tensors of equal size, optionally resized alike."""
    d = load_image(distorted)
    r = load_image(reference)
    check_same_size(d, r, distorted, reference)
    if short_side is not None:
        d, r = resize_short_side(d, short_side), resize_short_side(r, short_side)
    check_pair(d, r, names=(str(Path(distorted)), str(Path(reference))))
    return d, r
