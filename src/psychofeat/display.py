"""Display model: absolute luminance (cd/m²) or linear RGB → the [0, 1] image a network is shown.

Human psychophysical data are in absolute units (a 2 cpd Gabor of contrast 0.01 on 32 cd/m²); networks see
display-encoded images. A `DisplayModel` is the standard sRGB display of IEC 61966-2-1 (Rec. 709 primaries,
D65 white) with a peak luminance and a black level, the model used by the supra-threshold battery
(Cai et al., CVPR 2025, whose generators show stimuli on a 400 cd/m² display, sRGB-encoded) and by the colour
probes:

    linear value  v = (L − L_black) / (L_peak − L_black)          per channel, v ∈ [0, 1]
    image value   x = sRGB_OETF(v)                                (``encoding="srgb"``; ``"linear"``: x = v)

so that a uniform field of luminance L is the grey image x = OETF((L − L_black)/(L_peak − L_black)) in all three
channels, and a pixel's luminance is ``L_black + (L_peak − L_black) · (0.2126 R + 0.7152 G + 0.0722 B)`` of its
linear values (the Y row of `SRGB_TO_XYZ`). Values outside what the display can show are refused, not clipped:
a clipped stimulus would silently have a different contrast than the one it is scored at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeAlias

import numpy as np

from psychofeat.errors import InputError

Encoding = Literal["srgb", "linear"]
ENCODINGS: tuple[str, ...] = ("srgb", "linear")

#: linear sRGB (Rec. 709 primaries, D65) → CIE 1931 XYZ, Y normalised to 1 for white (IEC 61966-2-1)
SRGB_TO_XYZ = np.array(
    [
        [0.4124, 0.3576, 0.1805],
        [0.2126, 0.7152, 0.0722],
        [0.0193, 0.1192, 0.9505],
    ]
)
#: the luminance weights of linear R, G, B (the Y row of `SRGB_TO_XYZ`)
LUMINANCE_WEIGHTS = SRGB_TO_XYZ[1]

_SRGB_KNEE_LINEAR = 0.0031308
_SRGB_KNEE_ENCODED = 0.04045

#: a numpy array (or scalar) or a torch tensor: every function here works on both and returns the same kind
A: TypeAlias = Any


def _xp(v: Any) -> Any:
    """numpy for arrays and scalars, torch for tensors (imported only when a tensor comes in)."""
    if type(v).__module__.startswith("torch"):
        import torch

        return torch
    return np


def srgb_encode(linear: A) -> A:
    """The sRGB opto-electronic transfer function (IEC 61966-2-1): linear [0, 1] → encoded [0, 1]."""
    xp = _xp(linear)
    v = xp.asarray(linear) if xp is np else linear
    low = 12.92 * v
    high = 1.055 * xp.clip(v, _SRGB_KNEE_LINEAR, None) ** (1 / 2.4) - 0.055
    return xp.where(v <= _SRGB_KNEE_LINEAR, low, high)


def srgb_decode(encoded: A) -> A:
    """Inverse of `srgb_encode`: encoded [0, 1] → linear [0, 1]."""
    xp = _xp(encoded)
    x = xp.asarray(encoded) if xp is np else encoded
    low = x / 12.92
    high = ((xp.clip(x, _SRGB_KNEE_ENCODED, None) + 0.055) / 1.055) ** 2.4
    return xp.where(x <= _SRGB_KNEE_ENCODED, low, high)


@dataclass(frozen=True)
class DisplayModel:
    """An sRGB display of a given peak luminance and black level (cd/m²). Defaults: the battery's 400 cd/m²."""

    peak_luminance: float = 400.0
    black_level: float = 0.0
    encoding: Encoding = "srgb"

    def __post_init__(self) -> None:
        for name in ("peak_luminance", "black_level"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise InputError(f"display {name} must be a finite number of cd/m², got {v!r}.")
        if self.black_level < 0 or self.peak_luminance <= self.black_level:
            raise InputError(
                f"the display needs 0 ≤ black level < peak luminance, got black {self.black_level:g} and peak "
                f"{self.peak_luminance:g} cd/m²; pass a peak above the black level."
            )
        if self.encoding not in ENCODINGS:
            raise InputError(f"display encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}.")

    @property
    def range(self) -> float:
        """Luminance span the display can show, L_peak − L_black (cd/m²)."""
        return self.peak_luminance - self.black_level

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def linear_from_luminance(self, luminance: A, what: str = "stimulus") -> A:
        """Relative linear drive v ∈ [0, 1] that makes a pixel (or channel) emit `luminance` cd/m²."""
        xp = _xp(luminance)
        lum = xp.asarray(luminance, dtype=np.float64) if xp is np else luminance
        v = (lum - self.black_level) / self.range
        lo, hi = float(v.min()), float(v.max())
        tol = 1e-9
        if lo < -tol or hi > 1 + tol:
            lmin, lmax = float(lum.min()), float(lum.max())
            raise InputError(
                f"the {what} spans {lmin:.4g}–{lmax:.4g} cd/m², outside what the display shows "
                f"({self.black_level:g}–{self.peak_luminance:g} cd/m²); raise the peak luminance or lower the "
                "contrast or background."
            )
        return xp.clip(v, 0.0, 1.0)

    def encode_linear(self, linear: A) -> A:
        """Linear drive [0, 1] → image values [0, 1] through the display's encoding."""
        return srgb_encode(linear) if self.encoding == "srgb" else linear

    def decode_linear(self, image: A) -> A:
        """Image values [0, 1] → linear drive [0, 1]."""
        return srgb_decode(image) if self.encoding == "srgb" else image

    def image_from_luminance(self, luminance: A, what: str = "stimulus") -> A:
        """Achromatic: a luminance map (cd/m², any shape) → image values, the same in R, G and B."""
        return self.encode_linear(self.linear_from_luminance(luminance, what))

    def luminance_from_image(self, image: A) -> A:
        """Inverse of `image_from_luminance` for an achromatic image (any channel; all three are equal)."""
        return self.black_level + self.range * self.decode_linear(image)

    def luminance_of_rgb(self, image_rgb: A, channel_axis: int = -3) -> A:
        """Luminance (cd/m²) of an encoded RGB image: L_black + range · (Y weights · linear RGB)."""
        xp = _xp(image_rgb)
        lin = self.decode_linear(image_rgb)
        w_shape = [1] * lin.ndim
        w_shape[channel_axis] = 3
        if xp is np:
            w = LUMINANCE_WEIGHTS.reshape(w_shape)
        else:
            w = xp.as_tensor(LUMINANCE_WEIGHTS, dtype=lin.dtype, device=lin.device).reshape(w_shape)
        y = (lin * w).sum(channel_axis)
        return self.black_level + self.range * y
