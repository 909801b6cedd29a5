"""Classic full-reference baselines: PSNR and SSIM, and the SR literature's way of computing them.

Everything works on float tensors N×C×H×W (any C: RGB for IQA baselines, 1 for luma) and returns one value
per image, so a batch of pairs is scored in one call. Both metrics are differentiable.

Conventions (chosen to match the reference implementations the SR and IQA literature reports against):

* **PSNR** = 10·log10(R² / MSE) with the MSE taken over all channels and pixels of an image, R = `data_range`.
  Identical images give +inf (as scikit-image does), never a division error.
* **SSIM** follows Wang et al. (2004) exactly as scikit-image's `structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False)` and BasicSR's `calculate_ssim`: an 11×11 Gaussian window (σ = 1.5,
  truncated at 3.5σ), K1 = 0.01, K2 = 0.03, population (not sample) covariances, the SSIM map computed only where the
  window fits inside the image ("valid" region, no padding), averaged over channels and positions. There is no
  automatic downsampling (the original MATLAB `ssim_index` script downsamples large images; the SR literature
  does not).
* **Y channel** (`rgb_to_y`): ITU-R BT.601 luma with studio swing, as MATLAB's `rgb2ycbcr`:
  Y = 16 + 65.481·R + 128.553·G + 24.966·B for R, G, B in [0, 1], returned divided by 255, so Y ∈ [16, 235] / 255.
  Y is *not* rounded to integers (BasicSR's `to_y_channel` convention); MATLAB's `rgb2ycbcr` on uint8 input rounds,
  which moves PSNR by about 0.01 dB (`sr_psnr_ssim(..., round_y=True)` reproduces that convention).
* **SR evaluation** (`sr_psnr_ssim`): both images quantised to 8 bits (what a saved SR image is), Y channel,
  `shave` pixels (the scale factor, 4 for x4) removed from every border, then PSNR and SSIM with data range 1.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from psychofeat.errors import InputError
from psychofeat.images import check_pair, dequantize, quantize, reduce_batch

Reduction = Literal["none", "mean", "sum"]

#: SSIM constants of Wang et al. (2004)
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_SIGMA = 1.5
#: window = 2·round(3.5σ) + 1 = 11, as scipy/scikit-image truncate a Gaussian at 3.5σ for SSIM
SSIM_WIN = 11

#: ITU-R BT.601 studio-swing luma coefficients applied to [0, 1] RGB (MATLAB rgb2ycbcr)
_Y_OFFSET = 16.0
_Y_COEFFS = (65.481, 128.553, 24.966)


def _check_pair(x: torch.Tensor, y: torch.Tensor, data_range: float, min_size: int) -> None:
    """The metric's and the loss's validator (`psychofeat.images.check_pair`) with any channel count and no [0, 1]
    requirement (values may span [0, data_range], so 0-255 data works), plus the data range itself."""
    check_pair(x, y, min_size, channels=None, in_range=False, data_range=data_range)
    if not (data_range > 0 and math.isfinite(data_range)):
        raise InputError(
            f"data_range must be a positive number (1.0 for [0, 1] images, 255 for 0-255), got {data_range}."
        )


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    """Half-precision inputs are promoted: PSNR/SSIM need more than 8 mantissa bits to be meaningful."""
    return t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32


def _mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    dt = _compute_dtype(x)
    d = x.to(dt) - y.to(dt)
    return d.square().flatten(1).mean(1)


def mse(x: torch.Tensor, y: torch.Tensor, reduction: Reduction = "none") -> torch.Tensor:
    """Mean squared error per image (over channels and pixels)."""
    _check_pair(x, y, 1.0, 1)
    return reduce_batch(_mse(x, y), reduction)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: Reduction = "none") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: 10·log10(data_range² / MSE); +inf for identical images."""
    _check_pair(x, y, data_range, 1)
    return reduce_batch(10.0 * torch.log10(data_range**2 / _mse(x, y)), reduction)


def gaussian_window(size: int = SSIM_WIN, sigma: float = SSIM_SIGMA, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian taps (the SSIM window is their outer product, applied separably)."""
    r = (size - 1) / 2.0
    t = torch.arange(size, dtype=torch.float64) - r
    g = torch.exp(-(t**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _filter_valid(img: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering without padding (each output sees a full window): N×C×(H−10)×(W−10)."""
    n, c, h, w = img.shape
    k = win.numel()
    z = img.reshape(n * c, 1, h, w)
    z = F.conv2d(z, win.view(1, 1, k, 1))
    z = F.conv2d(z, win.view(1, 1, 1, k))
    return z.view(n, c, h - k + 1, w - k + 1)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """The SSIM map on the valid region, N×C×(H−10)×(W−10); see the module docstring for the conventions."""
    _check_pair(x, y, data_range, SSIM_WIN)
    dt = _compute_dtype(x)
    x, y = x.to(dt), y.to(dt)
    win = gaussian_window(dtype=dt, device=x.device)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    # one filtering pass over the five stacked moment images; never in reduced precision (under an autocast
    # region conv2d would run in bf16/fp16, and E[x²] − E[x]² cancels catastrophically there)
    c = x.shape[1]
    with torch.autocast(device_type=x.device.type, enabled=False):
        moments = _filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), win)
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.split(c, dim=1)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return num / den


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: Reduction = "none") -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004, Gaussian window, valid region); 1 for identical images."""
    return reduce_batch(ssim_map(x, y, data_range).flatten(1).mean(1), reduction)


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 studio-swing luma of N×3×H×W RGB in [0, 1]: N×1×H×W in [16/255, 235/255] (MATLAB rgb2ycbcr)."""
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise InputError(f"rgb_to_y expects N×3×H×W RGB, got {tuple(rgb.shape)}.")
    w = torch.tensor(_Y_COEFFS, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return ((rgb * w).sum(dim=1, keepdim=True) + _Y_OFFSET) / 255.0


def shave_border(x: torch.Tensor, shave: int) -> torch.Tensor:
    """Drop `shave` pixels from every border (the SR convention: the scale factor's worth of boundary)."""
    if shave < 0:
        raise InputError(f"shave must be ≥ 0, got {shave}.")
    if shave == 0:
        return x
    if min(x.shape[-2:]) <= 2 * shave:
        raise InputError(f"image of {x.shape[-2]}×{x.shape[-1]} px is too small to shave {shave} px from each side.")
    return x[..., shave:-shave, shave:-shave]


def quantize_uint8(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the 8-bit grid, staying float (x's dtype): exactly what saving the image as PNG
    does, since both go through `psychofeat.images.quantize`."""
    return dequantize(quantize(x), x.dtype if x.is_floating_point() else torch.float32).to(x.device)


def sr_psnr_ssim(
    sr: torch.Tensor, hr: torch.Tensor, shave: int = 4, quantize: bool = True, round_y: bool = False
) -> dict[str, torch.Tensor]:
    """PSNR and SSIM as the SR literature reports them: 8-bit images, BT.601 Y, `shave` px border removed.

    `sr` and `hr` are N×3×H×W RGB in [0, 1]. Computed in float64 so the numbers do not depend on the device.
    `round_y=True` rounds Y to integer levels first, as MATLAB's `rgb2ycbcr` does on uint8 images (the convention
    of the older MATLAB evaluation scripts; bicubic x4 on Set5: 28.42 dB / 0.8101 vs 28.43 dB / 0.8111 unrounded).
    Returns {"psnr": N values in dB, "ssim": N values}.
    """
    if sr.shape != hr.shape:
        raise InputError(
            f"SR output {tuple(sr.shape)} and HR {tuple(hr.shape)} differ in shape; crop HR to a multiple of the scale."
        )
    sr64, hr64 = sr.detach().double(), hr.detach().double()
    if quantize:
        sr64, hr64 = quantize_uint8(sr64), quantize_uint8(hr64)
    y_sr, y_hr = rgb_to_y(sr64), rgb_to_y(hr64)
    if round_y:
        y_sr, y_hr = y_sr.mul(255.0).round().div(255.0), y_hr.mul(255.0).round().div(255.0)
    y_sr, y_hr = shave_border(y_sr, shave), shave_border(y_hr, shave)
    return {"psnr": psnr(y_sr, y_hr, data_range=1.0), "ssim": ssim(y_sr, y_hr, data_range=1.0)}


class PSNR(nn.Module):
    """Module twin of `psnr` (higher is better)."""

    #: metadata of the metric, as torchmetrics' `higher_is_better` (the same for every instance)
    lower_better: ClassVar[bool] = False
    min_size: ClassVar[int] = 1

    def __init__(self, data_range: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.data_range = data_range
        self.reduction: Reduction = reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return psnr(x, y, self.data_range, self.reduction)


class SSIM(nn.Module):
    """Module twin of `ssim` (higher is better)."""

    lower_better: ClassVar[bool] = False
    min_size: ClassVar[int] = SSIM_WIN

    def __init__(self, data_range: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.data_range = data_range
        self.reduction: Reduction = reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ssim(x, y, self.data_range, self.reduction)


__all__ = [
    "PSNR",
    "SSIM",
    "gaussian_window",
    "mse",
    "psnr",
    "quantize_uint8",
    "rgb_to_y",
    "shave_border",
    "sr_psnr_ssim",
    "ssim",
    "ssim_map",
]
