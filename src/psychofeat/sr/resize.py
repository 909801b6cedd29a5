"""MATLAB-style bicubic resizing: the degradation that made the benchmark's LR files, reproduced exactly.

The x4 LR images of Set5/Set14/BSD100 (SelfExSR) are MATLAB `imresize(hr, 0.25)` of the modcropped HR image. That
recipe, verified to reproduce every LR_x4 file with zero pixel difference (tests/test_sr_resize.py), is:

* Keys' cubic kernel with a = −0.5 (MATLAB's `cubic`), support 4 px;
* **antialiasing** when shrinking: the kernel is stretched by 1/scale (support 16 input px for x4) and scaled by scale;
* output pixel x (1-based) samples input position u = x/scale + (1 − 1/scale)/2, weights normalised to sum to 1;
* **edge pixels replicated** beyond the border (index clamping, as older MATLAB releases did; today's MATLAB and the
  usual Python ports mirror the image, which changes the 3 outermost LR pixels);
* separable, **dimension 1 (image rows, i.e. the height) first, then the width**;
* for uint8 input, each pass is **rounded to uint8** (half away from zero) and saturated before the next pass.

Training LR patches must be made the same way, or a model learns a slightly different degradation than the one it is
tested on. `imresize` also upsamples (scale > 1, no antialiasing): that is the bicubic baseline, `imresize(lr, 4)`.
For scale > 1 the border rule only touches the 2 outermost output pixels, which the x4 evaluation shaves anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, overload

import numpy as np
import torch

from psychofeat.errors import InputError

Border = Literal["replicate", "symmetric"]

#: support of Keys' cubic kernel in input pixels (before antialias stretching)
_KERNEL_WIDTH = 4.0


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = −0.5 (MATLAB's `cubic`)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


def contributions(
    in_len: int, out_len: int, scale: float, antialias: bool = True, border: Border = "replicate"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-pixel input indices (0-based, P columns) and weights, as MATLAB's `contributions()`.

    Returns (indices, weights), both out_len × P. Columns that are zero for every output are kept: they add
    exact zeros, so the result is unchanged.
    """
    kernel: Callable[[np.ndarray], np.ndarray] = cubic
    width = _KERNEL_WIDTH
    if antialias and scale < 1:
        width = _KERNEL_WIDTH / scale

        def stretched(t: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * t)

        kernel = stretched
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    p = int(math.ceil(width)) + 2
    ind = left[:, None] + np.arange(p, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - ind)
    weights = weights / weights.sum(axis=1, keepdims=True)
    ind0 = ind.astype(np.int64) - 1  # to 0-based
    if border == "replicate":
        ind0 = np.clip(ind0, 0, in_len - 1)
    elif border == "symmetric":
        period = 2 * in_len
        m = np.mod(ind0, period)
        ind0 = np.where(m < in_len, m, period - 1 - m)
    else:
        raise InputError(f"border must be 'replicate' or 'symmetric', got {border!r}.")
    return ind0, weights


def _resize_axis(
    x: torch.Tensor, axis: int, out_len: int, scale: float, antialias: bool, border: Border, round_uint8: bool
) -> torch.Tensor:
    """One separable pass along `axis` of a float tensor, accumulating taps in order (as MATLAB's loop does)."""
    ind, w = contributions(x.shape[axis], out_len, scale, antialias, border)
    idx_t = torch.from_numpy(ind).to(x.device)
    w_t = torch.from_numpy(w).to(device=x.device, dtype=x.dtype)
    shape = [1] * x.ndim
    shape[axis] = out_len
    acc = torch.zeros((*x.shape[:axis], out_len, *x.shape[axis + 1 :]), dtype=x.dtype, device=x.device)
    for j in range(ind.shape[1]):
        acc += x.index_select(axis, idx_t[:, j]) * w_t[:, j].view(shape)
    if round_uint8:
        acc = torch.floor(acc + 0.5).clamp_(0.0, 255.0)  # MATLAB's uint8(): round half away from zero, saturate
    return acc


def _resize_axis_np(
    x: np.ndarray, axis: int, out_len: int, scale: float, antialias: bool, border: Border, round_uint8: bool
) -> np.ndarray:
    """numpy twin of `_resize_axis` (same operation order, so identical float64 results). numpy arrays take this
    path because it is single-threaded: torch's thread pool makes these many small ops far slower on a busy CPU."""
    ind, w = contributions(x.shape[axis], out_len, scale, antialias, border)
    x = np.moveaxis(x, axis, 0)
    bshape = (out_len,) + (1,) * (x.ndim - 1)
    acc = np.zeros((out_len, *x.shape[1:]), dtype=np.float64)
    for j in range(ind.shape[1]):
        acc += x[ind[:, j]] * w[:, j].reshape(bshape)
    if round_uint8:
        acc = np.clip(np.floor(acc + 0.5), 0.0, 255.0)
    return np.moveaxis(acc, 0, axis)


def output_size(in_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """MATLAB's output size for a scale factor: ceil(size · scale)."""
    return (int(math.ceil(in_hw[0] * scale)), int(math.ceil(in_hw[1] * scale)))


def _resize_hw(
    x: torch.Tensor, scale: float, antialias: bool, border: Border, round_uint8: bool
) -> torch.Tensor:
    """Resize the last two dims (H, W) of a float tensor: height pass first, then width (MATLAB's order)."""
    if not (scale > 0 and math.isfinite(scale)):
        raise InputError(f"scale must be a positive number, got {scale}.")
    oh, ow = output_size((x.shape[-2], x.shape[-1]), scale)
    x = _resize_axis(x, x.ndim - 2, oh, scale, antialias, border, round_uint8)
    return _resize_axis(x, x.ndim - 1, ow, scale, antialias, border, round_uint8)


@overload
def imresize(
    img: np.ndarray, scale: float, *, antialias: bool = True, border: Border = "replicate"
) -> np.ndarray: ...
@overload
def imresize(
    img: torch.Tensor, scale: float, *, antialias: bool = True, border: Border = "replicate"
) -> torch.Tensor: ...


def imresize(
    img: np.ndarray | torch.Tensor, scale: float, *, antialias: bool = True, border: Border = "replicate"
) -> np.ndarray | torch.Tensor:
    """MATLAB `imresize(img, scale)` with the bicubic kernel (see the module docstring for the exact recipe).

    * numpy uint8, H×W or H×W×C → uint8, rounded after each pass (MATLAB's behaviour on uint8 images);
    * numpy float → float64, no rounding;
    * torch float tensor (..., H, W), e.g. N×C×H×W → same dtype and device, no rounding (float32/64 arithmetic;
      half precision is computed in float32). Differentiable.
    """
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise InputError(f"imresize expects an H×W or H×W×C array, got shape {img.shape}.")
        is_uint8 = img.dtype == np.uint8
        if not is_uint8 and not np.issubdtype(img.dtype, np.floating):
            raise InputError(f"imresize supports uint8 or float arrays, got {img.dtype}.")
        if not (scale > 0 and math.isfinite(scale)):
            raise InputError(f"scale must be a positive number, got {scale}.")
        oh, ow = output_size(img.shape[:2], scale)
        arr = _resize_axis_np(img.astype(np.float64), 0, oh, scale, antialias, border, is_uint8)
        arr = _resize_axis_np(arr, 1, ow, scale, antialias, border, is_uint8)
        return arr.astype(np.uint8) if is_uint8 else arr
    if isinstance(img, torch.Tensor):
        if not img.is_floating_point() or img.ndim < 2:
            raise InputError(f"imresize expects a float tensor (..., H, W), got {img.dtype} {tuple(img.shape)}.")
        dt = img.dtype if img.dtype in (torch.float32, torch.float64) else torch.float32
        return _resize_hw(img.to(dt), scale, antialias, border, round_uint8=False).to(img.dtype)
    raise InputError(f"imresize expects a numpy array or a torch tensor, got {type(img).__name__}.")


def modcrop(img: np.ndarray, factor: int) -> np.ndarray:
    """Keep the top-left H−H%f × W−W%f region (SelfExSR's crop before downscaling)."""
    h, w = img.shape[:2]
    return img[: h - h % factor, : w - w % factor]


def matlab_downscale(hr: np.ndarray, factor: int = 4) -> np.ndarray:
    """The benchmark degradation: modcrop to a multiple of `factor`, then `imresize(hr, 1/factor)` on uint8."""
    if hr.dtype != np.uint8:
        raise InputError(f"matlab_downscale expects a uint8 image (the recipe rounds per pass), got {hr.dtype}.")
    return imresize(modcrop(hr, factor), 1.0 / factor)


@overload
def bicubic_upscale(lr: np.ndarray, factor: int = 4) -> np.ndarray: ...
@overload
def bicubic_upscale(lr: torch.Tensor, factor: int = 4) -> torch.Tensor: ...
def bicubic_upscale(lr: np.ndarray | torch.Tensor, factor: int = 4) -> np.ndarray | torch.Tensor:
    """The bicubic baseline, MATLAB `imresize(lr, factor)`: uint8 in → uint8 out (per-pass rounding, as MATLAB),
    float tensor N×C×h×w → float (unclamped; cubic overshoot may leave [0, 1] slightly)."""
    return imresize(lr, float(factor))


__all__ = ["bicubic_upscale", "contributions", "cubic", "imresize", "matlab_downscale", "modcrop", "output_size"]
