"""Chromatic gratings: achromatic, red–green and yellow–violet modulations in a cone-contrast (DKL-like) space.

The channel analysis shows only grey gratings. These stimuli modulate the same radial (or linear) gratings along
three colour directions, defined by castleCSF's post-receptoral mechanisms and shown through the display model of
`psychofeat.display` (docs/colour.md, issue 22):

* **Cone space.** LMS = ``SRGB_TO_LMS`` · linear RGB, with ``SRGB_TO_LMS = XYZ_TO_LMS2006 · SRGB_TO_XYZ``:
  `psychofeat.display.SRGB_TO_XYZ` (Rec. 709 primaries, D65) followed by castleCSF's own XYZ → CIE 2006 LMS matrix
  (``utils/xyz2lms2006.m`` of gfxdisp/castleCSF v0.2.4, which its authors derived for the spectra of an LED LCD;
  CIE 1931 XYZ and CIE 2006 LMS rest on different colour-matching functions, so any such matrix depends on the
  display's spectra). castleCSF's mechanisms are A = L + M, RG = L − 2.3112 M and YV = 50.9875 S − L − M
  (`psychofeat.csf.castle.LMS_TO_ACC`).
* **Luminance** is the display model's: Y = `psychofeat.display.LUMINANCE_WEIGHTS` · linear RGB. (castleCSF's own
  luminance L + M differs from it by a few per cent on this display; isoluminance is the display's.)
* **Directions** (unit vectors in linear RGB, `direction_vectors`):
  ``ach`` ∝ (1, 1, 1): all three cones at the same contrast, castleCSF's "D65 luminance modulation";
  ``rg``: ΔY = 0 and castleCSF's YV mechanism silent — the L−M axis, + = more L;
  ``yv``: ΔY = 0 and castleCSF's RG mechanism silent — the S axis, + = more S.
  Each is scaled to **unit RMS cone contrast** at the background, castleCSF's contrast measure
  sqrt(mean over L, M, S of (ΔLMS / LMS_bkg)²), so that a grating of contrast c has RMS cone contrast c in every
  direction (for ``ach``, c is the Michelson luminance contrast in linear light).
* **Gratings**: linear RGB = b·(1, 1, 1) + c · d̂ · carrier, carrier = sin(2π (f/ppd) r + φ) (radial) or the linear
  grating's, from `psychofeat.stimuli` (so the geometry is the analysis' own), then encoded by the display
  (sRGB OETF) and returned as float32 N×3×S×S in [0, 1], not quantised. b is the linear drive of the background
  image value (default 0.5: the analysis' uniform field).
* **Isoluminance.** Y(image) = Y(b) + carrier · c · Y(d̂) with Y(d̂) = 0 by construction (to rounding, ~1e-17):
  the display luminance of an rg or yv grating equals the background's everywhere (tests/test_colour.py checks
  it to 1e-6 relative on the float32 images, 1e-12 in float64).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from psychofeat.csf.castle import LMS_TO_ACC
from psychofeat.display import LUMINANCE_WEIGHTS, SRGB_TO_XYZ, DisplayModel, srgb_decode
from psychofeat.errors import InputError
from psychofeat.stimuli import ArrayLike, ProbeProtocol, linear_grating, radial_grating

#: castleCSF's ``xyz2lms2006.m``: CIE 1931 XYZ → CIE 2006 LMS cone responses (derived for LED-LCD spectra)
XYZ_TO_LMS2006 = np.array(
    [
        [0.187596268556126, 0.585168649077728, -0.026384263306304],
        [-0.133397430663221, 0.405505777260049, 0.034502127690364],
        [0.000244379021663, -0.000542995890619, 0.019406849066323],
    ]
)
#: linear sRGB → CIE 2006 LMS: the display's primaries (SRGB_TO_XYZ) then castleCSF's XYZ → LMS matrix
SRGB_TO_LMS = XYZ_TO_LMS2006 @ SRGB_TO_XYZ
#: the colour directions, in the order of castleCSF's mechanisms
DIRECTIONS: tuple[str, ...] = ("ach", "rg", "yv")
#: default RMS cone contrast of every direction: just inside the display's rg gamut around mid grey (0.088)
DEFAULT_CONE_CONTRAST = 0.08


def _null_direction(rows: np.ndarray) -> np.ndarray:
    """The unit vector orthogonal to the two rows of `rows` (2×3): the direction they both leave at zero."""
    v = np.cross(rows[0], rows[1])
    return np.asarray(v / np.linalg.norm(v))


def rms_cone_contrast(delta_rgb: np.ndarray, background_rgb: np.ndarray) -> np.ndarray:
    """castleCSF's contrast measure of a linear-RGB change at a background: sqrt(mean_LMS (ΔLMS / LMS_bkg)²)."""
    d = np.asarray(delta_rgb, dtype=np.float64) @ SRGB_TO_LMS.T
    b = np.asarray(background_rgb, dtype=np.float64) @ SRGB_TO_LMS.T
    return np.asarray(np.sqrt(np.mean((d / b) ** 2, axis=-1)))


def direction_vectors(background_linear: float) -> dict[str, np.ndarray]:
    """{direction: linear-RGB change of unit RMS cone contrast} at a grey background of linear drive `b`.

    rg and yv lie in the null space of the display luminance Y and of castleCSF's YV (resp. RG) mechanism; the
    signs are fixed so that rg increases L and yv increases S.
    """
    b = float(background_linear)
    if not 0 < b < 1:
        raise InputError(f"the background's linear drive must lie in (0, 1), got {b!r}.")
    bkg = np.full(3, b)
    mech = LMS_TO_ACC @ SRGB_TO_LMS  # rows: castleCSF's A, RG, YV responses of linear RGB
    raw = {
        "ach": np.ones(3),
        "rg": _null_direction(np.stack([LUMINANCE_WEIGHTS, mech[2]])),
        "yv": _null_direction(np.stack([LUMINANCE_WEIGHTS, mech[1]])),
    }
    signs = {"ach": 1.0, "rg": float(np.sign((SRGB_TO_LMS @ raw["rg"])[0])),
             "yv": float(np.sign((SRGB_TO_LMS @ raw["yv"])[2]))}
    return {k: signs[k] * v / float(rms_cone_contrast(v, bkg)) for k, v in raw.items()}


@dataclass(frozen=True)
class ColourProtocol:
    """The chromatic stimuli: the analysis' geometry (`protocol`) plus the colour settings (docs/colour.md)."""

    protocol: ProbeProtocol = field(default_factory=ProbeProtocol)
    cone_contrast: float = DEFAULT_CONE_CONTRAST  # RMS cone contrast of every direction
    background: float = 0.5  # image value of the grey background (the analysis' uniform field)
    luminance: float = 100.0  # luminance of the background, cd/m² (sets the display's peak)
    directions: tuple[str, ...] = DIRECTIONS

    def __post_init__(self) -> None:
        if not 0 < self.background < 1:
            raise InputError(f"the background image value must lie in (0, 1), got {self.background!r}.")
        if not (np.isfinite(self.luminance) and self.luminance > 0):
            raise InputError(f"the background luminance must be positive (cd/m²), got {self.luminance!r}.")
        bad = [d for d in self.directions if d not in DIRECTIONS]
        if bad or not self.directions:
            shown = bad[0] if bad else None
            raise InputError(f"unknown colour direction {shown!r}; choose from {', '.join(DIRECTIONS)}.")
        if not (np.isfinite(self.cone_contrast) and self.cone_contrast > 0):
            raise InputError(f"the RMS cone contrast must be positive, got {self.cone_contrast!r}.")
        b = self.background_linear
        for name in self.directions:
            peak = float(np.abs(self.cone_contrast * self.vectors[name]).max())
            if peak > min(b, 1.0 - b) + 1e-12:
                most = min(b, 1.0 - b) / float(np.abs(self.vectors[name]).max())
                raise InputError(
                    f"RMS cone contrast {self.cone_contrast:g} along {name} leaves the display's gamut around this "
                    f"background (at most {most:.3g}); lower the cone contrast."
                )

    @property
    def background_linear(self) -> float:
        """Linear drive b of the background (sRGB-decoded image value)."""
        return float(srgb_decode(np.float64(self.background)))

    @property
    def display(self) -> DisplayModel:
        """An sRGB display whose background shows `luminance` cd/m² (black level 0)."""
        return DisplayModel(peak_luminance=self.luminance / self.background_linear)

    @property
    def vectors(self) -> dict[str, np.ndarray]:
        return direction_vectors(self.background_linear)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["protocol"] = self.protocol.to_dict()
        d["directions"] = list(self.directions)
        d["display"] = self.display.to_dict()
        d["background_linear"] = self.background_linear
        d["direction_rgb"] = {k: v.tolist() for k, v in self.vectors.items() if k in self.directions}
        d["srgb_to_lms"] = SRGB_TO_LMS.tolist()
        return d


def colour_grating(
    cp: ColourProtocol,
    direction: str,
    freq_cpd: ArrayLike,
    phase: ArrayLike = 0.0,
    orientation_deg: ArrayLike | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Gratings along `direction` at `cp`'s RMS cone contrast: radial, or linear when `orientation_deg` is given.

    N×3×S×S images in [0, 1] (sRGB-encoded by the display model), batched by broadcasting like
    `psychofeat.stimuli.radial_grating` / `linear_grating`, whose carriers they reuse.
    """
    if direction not in DIRECTIONS:
        raise InputError(f"unknown colour direction {direction!r}; choose from {', '.join(DIRECTIONS)}.")
    p = cp.protocol
    geo = p.geometry
    if orientation_deg is None:
        grey = radial_grating(geo, freq_cpd, phase, 1.0, p.size, 0.5)
    else:
        grey = linear_grating(geo, freq_cpd, orientation_deg, phase, 1.0, p.size, 0.5)
    carrier = grey[:, :1].to(torch.float64) * 2.0 - 1.0  # N×1×S×S, in [-1, 1]
    delta = torch.as_tensor(cp.cone_contrast * cp.vectors[direction], dtype=torch.float64).view(1, 3, 1, 1)
    linear = cp.background_linear + carrier * delta
    return cp.display.encode_linear(linear.clamp(0.0, 1.0)).to(dtype)  # clamp: rounding only (gamut checked)


@dataclass
class ColourStimulusSet:
    """Chromatic gratings described by parameters (a `psychofeat.probe.Renderable`); rendered batch by batch."""

    kind: np.ndarray  # per stimulus: "gray" or "radial"
    direction: np.ndarray
    freq: np.ndarray
    phase: np.ndarray
    cp: ColourProtocol

    def __len__(self) -> int:
        return len(self.kind)

    def render(self, start: int, stop: int) -> torch.Tensor:
        p = self.cp.protocol
        out = torch.empty((stop - start, 3, p.size, p.size), dtype=torch.float32)
        kinds, dirs = self.kind[start:stop], self.direction[start:stop]
        gray = np.flatnonzero(kinds == "gray")
        if gray.size:
            out[torch.from_numpy(gray)] = float(self.cp.background)
        for d in DIRECTIONS:
            sel = np.flatnonzero((kinds == "radial") & (dirs == d))
            if sel.size:
                i = sel + start
                out[torch.from_numpy(sel)] = colour_grating(self.cp, d, self.freq[i], self.phase[i])
        return out


def colour_frequency_sweep(cp: ColourProtocol, with_gray: bool = True) -> ColourStimulusSet:
    """The uniform field (optional), then for each direction radial gratings at every f_i × phase
    (direction-major, then frequency, then phase: the order `psychofeat.stimuli.frequency_sweep` uses)."""
    p = cp.protocol
    ff, pp = np.meshgrid(p.frequencies, p.phases, indexing="ij")
    n = ff.size
    kinds, dirs, freqs, phases = [], [], [], []
    if with_gray:
        kinds.append(np.array(["gray"]))
        dirs.append(np.array([""]))
        freqs.append(np.zeros(1))
        phases.append(np.zeros(1))
    for d in cp.directions:
        kinds.append(np.full(n, "radial"))
        dirs.append(np.full(n, d))
        freqs.append(ff.ravel())
        phases.append(pp.ravel())
    return ColourStimulusSet(np.concatenate(kinds), np.concatenate(dirs).astype(str), np.concatenate(freqs),
                             np.concatenate(phases), cp)
