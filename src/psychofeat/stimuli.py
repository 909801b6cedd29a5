"""Psychophysical stimuli in display-referred [0, 1]: gratings and Gabors parametrised in visual degrees.

Geometry. A `ViewingGeometry` fixes pixels per degree (ppd); a frequency f in cycles per degree is f/ppd
cycles per pixel and must stay below Nyquist (f < ppd/2). Pixel coordinates are measured from the image
centre ((S-1)/2), x to the right and y *up*, so orientation θ is counter-clockwise on screen: θ = 0° gives
vertical bars (luminance varies along x), θ = 90° horizontal bars.

Luminance. `mean·(1 + c·sin(2π·(f/ppd)·d + φ))` with Michelson contrast c ∈ [0, 1] and mean 0.5 by default,
so values stay in [0, 1]. Images are float32 N×3×S×S tensors (grey, channel-replicated), not quantised.

Phase averaging. Responses are averaged over phases {0, π/2, π, 3π/2}; the average of those four stimuli is
exactly the uniform field, so any purely linear channel responds exactly as to the uniform field: what the
analysis measures is the part of a channel's response that survives rectification, as for complex cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from psychofeat.errors import InputError

ArrayLike = float | Sequence[float] | np.ndarray


@dataclass(frozen=True)
class ViewingGeometry:
    """Display model: pixels per visual degree (ppd) and mean luminance of the display in cd/m²."""

    ppd: float = 60.0
    luminance: float = 100.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.ppd) and self.ppd > 0):
            raise InputError(f"ppd must be a positive number of pixels per degree, got {self.ppd!r}.")
        if not (np.isfinite(self.luminance) and self.luminance > 0):
            raise InputError(f"luminance must be positive (cd/m²), got {self.luminance!r}.")

    @property
    def nyquist_cpd(self) -> float:
        """Highest representable frequency (cycles per degree): half a cycle per pixel."""
        return self.ppd / 2.0

    def cycles_per_pixel(self, freq_cpd: ArrayLike) -> np.ndarray:
        f = np.asarray(freq_cpd, dtype=np.float64)
        self.check_frequency(f)
        return f / self.ppd

    def check_frequency(self, freq_cpd: ArrayLike) -> None:
        f = np.asarray(freq_cpd, dtype=np.float64)
        if not np.all(np.isfinite(f)):
            raise InputError("spatial frequency must be finite.")
        if np.any(f < 0):
            raise InputError(f"spatial frequency must be ≥ 0 cpd, got {float(f.min())}.")
        if np.any(f >= self.nyquist_cpd):
            raise InputError(
                f"spatial frequency {float(f.max()):.4g} cpd is at or above Nyquist ({self.nyquist_cpd:.4g} cpd at "
                f"{self.ppd:g} pixels per degree). Lower the frequency or raise ppd."
            )

    def degrees(self, pixels: float) -> float:
        return pixels / self.ppd

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_size(size: int) -> int:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size <= 0:
        shown = size.item() if isinstance(size, np.generic) else size
        raise InputError(f"stimulus size must be a positive integer number of pixels, got {shown!r}.")
    return int(size)


def _check_levels(mean: float, contrast: np.ndarray) -> None:
    """Contrasts in [0, 1] and a mean level in (0, 1) that leaves room for them below 1."""
    if not np.all(np.isfinite(contrast)) or np.any(contrast < 0) or np.any(contrast > 1):
        raise InputError(f"Michelson contrast must be in [0, 1], got values in [{contrast.min()}, {contrast.max()}].")
    if not (0 < mean < 1):
        raise InputError(f"mean luminance level must be in (0, 1), got {mean}.")
    if np.any(mean * (1 + contrast) > 1 + 1e-12):
        raise InputError(f"mean {mean} with contrast up to {contrast.max()} exceeds 1; lower the mean or the contrast.")


def _coords(size: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """x (right) and y (up) of every pixel relative to the image centre, in pixels."""
    c = (size - 1) / 2.0
    idx = torch.arange(size, dtype=dtype)
    x = (idx - c).view(1, size).expand(size, size)
    y = (c - idx).view(size, 1).expand(size, size)
    return x, y


def _broadcast(*arrays: ArrayLike) -> list[np.ndarray]:
    arrs = [np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in arrays]
    try:
        out = np.broadcast_arrays(*arrs)
    except ValueError as exc:
        raise InputError(f"stimulus parameters have incompatible lengths: {[a.shape for a in arrs]}") from exc
    return [np.ascontiguousarray(a.ravel()) for a in out]


def _to_images(lum: torch.Tensor) -> torch.Tensor:
    """N×S×S float64 luminance -> N×3×S×S float32 (channel-replicated grey)."""
    return lum.to(torch.float32).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def _col(a: np.ndarray) -> torch.Tensor:
    """A per-stimulus parameter vector as an N×1×1 tensor that broadcasts over the image."""
    return torch.from_numpy(np.asarray(a, dtype=np.float64)).view(-1, 1, 1)


def _linear_carrier(
    geometry: ViewingGeometry, f: np.ndarray, th: np.ndarray, ph: np.ndarray, size: int
) -> torch.Tensor:
    """sin(2π·(f/ppd)·(x cosθ + y sinθ) + φ) for each stimulus: N×S×S float64."""
    x, y = _coords(size)
    theta = np.deg2rad(th)
    d = x.unsqueeze(0) * _col(np.cos(theta)) + y.unsqueeze(0) * _col(np.sin(theta))
    return torch.sin(2 * math.pi * _col(geometry.cycles_per_pixel(f)) * d + _col(ph))


def linear_grating(
    geometry: ViewingGeometry,
    freq_cpd: ArrayLike,
    orientation_deg: ArrayLike = 0.0,
    phase: ArrayLike = 0.0,
    contrast: ArrayLike = 0.5,
    size: int = 224,
    mean: float = 0.5,
) -> torch.Tensor:
    """Linear sinusoidal gratings `mean·(1 + c·sin(2π·(f/ppd)·(x cosθ + y sinθ) + φ))`, batched by broadcasting."""
    size = _check_size(size)
    f, th, ph, c = _broadcast(freq_cpd, orientation_deg, phase, contrast)
    _check_levels(mean, c)
    lum = mean * (1 + _col(c) * _linear_carrier(geometry, f, th, ph, size))
    return _to_images(lum)


def radial_grating(
    geometry: ViewingGeometry,
    freq_cpd: ArrayLike,
    phase: ArrayLike = 0.0,
    contrast: ArrayLike = 0.5,
    size: int = 224,
    mean: float = 0.5,
) -> torch.Tensor:
    """Concentric (radial) gratings `mean·(1 + c·sin(2π·(f/ppd)·r + φ))`: every orientation at once."""
    size = _check_size(size)
    f, ph, c = _broadcast(freq_cpd, phase, contrast)
    _check_levels(mean, c)
    x, y = _coords(size)
    r = torch.sqrt(x**2 + y**2).unsqueeze(0)
    arg = 2 * math.pi * _col(geometry.cycles_per_pixel(f)) * r + _col(ph)
    lum = mean * (1 + _col(c) * torch.sin(arg))
    return _to_images(lum)


def gabor(
    geometry: ViewingGeometry,
    freq_cpd: ArrayLike,
    orientation_deg: ArrayLike = 0.0,
    phase: ArrayLike = 0.0,
    contrast: ArrayLike = 0.5,
    sigma_deg: ArrayLike = 0.5,
    size: int = 224,
    mean: float = 0.5,
) -> torch.Tensor:
    """Gabor patches: a linear grating under a circular Gaussian envelope of s.d. `sigma_deg`, centred.

    `contrast` is the peak Michelson contrast (at the envelope's centre).
    """
    size = _check_size(size)
    f, th, ph, c, sd = _broadcast(freq_cpd, orientation_deg, phase, contrast, sigma_deg)
    _check_levels(mean, c)
    if np.any(sd <= 0) or not np.all(np.isfinite(sd)):
        raise InputError(f"Gabor envelope sigma must be positive (degrees), got {sd.min()}.")
    carrier = _linear_carrier(geometry, f, th, ph, size)
    x, y = _coords(size)
    sigma_px = _col(sd * geometry.ppd)
    env = torch.exp(-(x**2 + y**2).unsqueeze(0) / (2 * sigma_px**2))
    lum = mean * (1 + _col(c) * env * carrier)
    return _to_images(lum)


def uniform_field(size: int = 224, mean: float = 0.5, n: int = 1) -> torch.Tensor:
    size = _check_size(size)
    if not (0 <= mean <= 1):
        raise InputError(f"mean level must be in [0, 1], got {mean}.")
    return torch.full((n, 3, size, size), float(mean), dtype=torch.float32)


# ---------------------------------------------------------------------------------------------------------
# The analysis protocol: a frequency sweep of radial gratings and orientation sweeps of linear gratings
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeProtocol:
    """Every stimulus parameter of the channel analysis (defaults from SCIENCE.md)."""

    ppd: float = 60.0
    size: int = 224
    contrast: float = 0.5
    mean: float = 0.5
    n_freq: int = 24
    f_min: float = 0.5
    f_max_fraction: float = 0.45  # highest frequency = f_max_fraction · ppd (< Nyquist = 0.5 · ppd)
    n_orient: int = 16
    n_phase: int = 4
    n_orient_freq: int = 12  # orientation-sweep grid: this many of the mid frequencies g_i, evenly spaced in log
    freq_stimulus: str = "radial"  # "radial" or "linear" (linear gratings averaged over the n_orient orientations)
    n_phase_orient: int | None = None  # phases of the orientation sweeps (None: n_phase, as SCIENCE.md)

    def __post_init__(self) -> None:
        _check_size(self.size)
        if not (np.isfinite(self.ppd) and self.ppd > 0):
            raise InputError(
                f"ppd (pixels per visual degree) must be a positive number (default 60), got {self.ppd!r}."
            )
        if not 0 < self.f_max_fraction < 0.5:
            raise InputError(f"f_max_fraction must be in (0, 0.5) (Nyquist is 0.5·ppd), got {self.f_max_fraction}.")
        if self.f_min <= 0:
            raise InputError(f"f_min must be a positive frequency in cycles per degree, got {self.f_min}.")
        if self.f_min >= self.f_max_fraction * self.ppd:
            raise InputError(
                f"at {self.ppd:g} pixels per degree the highest frequency ({self.f_max_fraction:g}·ppd = "
                f"{self.f_max_fraction * self.ppd:.3g} cpd) is not above the lowest ({self.f_min:g} cpd); raise ppd "
                f"above {self.f_min / self.f_max_fraction:.3g}."
            )
        if self.n_freq < 3 or self.n_orient < 4 or self.n_phase < 1 or (self.n_phase_orient or 1) < 1:
            raise InputError("need n_freq ≥ 3, n_orient ≥ 4, n_phase ≥ 1 and n_phase_orient ≥ 1.")
        if not 1 <= self.n_orient_freq <= self.n_freq - 1:
            raise InputError(f"n_orient_freq must be in [1, n_freq − 1 = {self.n_freq - 1}], got {self.n_orient_freq}.")
        if self.freq_stimulus not in ("radial", "linear"):
            raise InputError(f"freq_stimulus must be 'radial' or 'linear', got {self.freq_stimulus!r}.")
        _check_levels(self.mean, np.array([self.contrast]))

    @property
    def geometry(self) -> ViewingGeometry:
        return ViewingGeometry(self.ppd)

    @property
    def lowest_frequency_cycles(self) -> float:
        """Cycles of the lowest sweep frequency across the stimulus width: size · f_min / ppd."""
        return self.size * self.f_min / self.ppd

    def check_holds_lowest_frequency(self) -> None:
        """Refuse a stimulus narrower than one cycle of the lowest frequency: its response would be a ramp's."""
        if self.lowest_frequency_cycles < 1:
            need = int(np.ceil(self.ppd / self.f_min))
            raise InputError(
                f"the {self.size}-px stimulus at {self.ppd:g} pixels per degree spans {self.size / self.ppd:.3g}°, "
                f"less than one cycle of the lowest frequency ({self.f_min:g} cpd needs {need} px); use a size of at "
                f"least {need} px, or a lower ppd (at most {self.size * self.f_min:g} for this size)."
            )

    @property
    def frequencies(self) -> np.ndarray:
        """The frequency sweep f_i: log-spaced from f_min to f_max_fraction·ppd (cycles per degree)."""
        return np.geomspace(self.f_min, self.f_max_fraction * self.ppd, self.n_freq)

    @property
    def mid_frequencies(self) -> np.ndarray:
        """g_i = sqrt(f_i·f_{i+1}): where the finite-difference sensitivities D_i live."""
        f = self.frequencies
        return np.sqrt(f[:-1] * f[1:])

    @property
    def orientation_grid_indices(self) -> np.ndarray:
        """Indices i of the g_i at which orientation sweeps are run (evenly spread, both ends included)."""
        n = self.n_freq - 1
        return np.unique(np.round(np.linspace(0, n - 1, self.n_orient_freq)).astype(int))

    @property
    def orientation_grid(self) -> np.ndarray:
        """Frequencies (cpd) of the orientation sweeps; each channel's f* is snapped to the nearest (in log)."""
        return self.mid_frequencies[self.orientation_grid_indices]

    def snap_to_orientation_grid(self, mid_index: np.ndarray) -> np.ndarray:
        """Position in `orientation_grid` nearest (in log frequency) to g_{mid_index}."""
        grid = np.log(self.orientation_grid)
        g = np.log(self.mid_frequencies[np.asarray(mid_index)])
        return np.argmin(np.abs(g[..., None] - grid), axis=-1)

    @property
    def orientations(self) -> np.ndarray:
        """θ_j = −90° + j·180°/N_θ (degrees)."""
        return -90.0 + np.arange(self.n_orient) * 180.0 / self.n_orient

    @property
    def phases(self) -> np.ndarray:
        return np.arange(self.n_phase) * 2 * np.pi / self.n_phase

    @property
    def n_phase_orientation(self) -> int:
        """Phases averaged in the orientation sweeps."""
        return self.n_phase if self.n_phase_orient is None else self.n_phase_orient

    @property
    def orientation_phases(self) -> np.ndarray:
        n = self.n_phase_orientation
        return np.arange(n) * 2 * np.pi / n

    @property
    def area_deg2(self) -> float:
        """Stimulus area (S/ppd)² in deg², used by size-dependent CSF models."""
        return (self.size / self.ppd) ** 2

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeProtocol:
        """Rebuild from `to_dict()` output (derived entries such as frequencies_cpd are ignored)."""
        from dataclasses import fields

        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.n_phase_orient is None:  # the SCIENCE.md protocol's record stays as it always was
            del d["n_phase_orient"]
        d.update(
            frequencies_cpd=self.frequencies.tolist(),
            mid_frequencies_cpd=self.mid_frequencies.tolist(),
            orientation_grid_cpd=self.orientation_grid.tolist(),
            orientations_deg=self.orientations.tolist(),
            phases_rad=self.phases.tolist(),
            area_deg2=self.area_deg2,
        )
        return d


#: `psychofeat analyze --fast`: the orientation sweeps (768 of the 865 reference stimuli) with the counterphase pair
#: {0, π} instead of 4 phases: 481 stimuli. The reduction that agreed best with the reference of all those measured
#: (docs/benchmarks.md, "Fast analysis"; scripts/analyze_tradeoff.py): PE Spearman ≥ 0.99 in relu1_1–relu4_1 and
#: ≥ 0.96 in every layer of VGG-16, top-25 % overlap ≥ 96.9 %. Fewer orientation frequencies, orientations or
#: frequency-sweep phases cost far more agreement.
FAST_OVERRIDES: dict[str, Any] = {"n_phase_orient": 2}


def fast_protocol(**overrides: Any) -> ProbeProtocol:
    """The `--fast` protocol (`FAST_OVERRIDES` on the SCIENCE.md defaults), with any explicit `overrides`."""
    return ProbeProtocol(**{**FAST_OVERRIDES, **overrides})


def preset_name(protocol: ProbeProtocol) -> str:
    """'reference' (the SCIENCE.md defaults), 'fast' (`fast_protocol()`) or 'custom': recorded in manifests."""
    if protocol == ProbeProtocol():
        return "reference"
    return "fast" if protocol == fast_protocol() else "custom"


@dataclass
class StimulusSet:
    """A list of stimuli described by parameters; images are rendered batch by batch on demand."""

    kind: np.ndarray  # per stimulus: "gray", "radial" or "linear"
    freq: np.ndarray
    orient: np.ndarray
    phase: np.ndarray
    protocol: ProbeProtocol
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.kind)

    def render(self, start: int, stop: int) -> torch.Tensor:
        p = self.protocol
        geo = p.geometry
        out = torch.empty((stop - start, 3, p.size, p.size), dtype=torch.float32)
        kinds = self.kind[start:stop]
        for kind in ("gray", "radial", "linear"):
            sel = np.nonzero(kinds == kind)[0]
            if sel.size == 0:
                continue
            i = sel + start
            if kind == "gray":
                imgs = uniform_field(p.size, p.mean, n=sel.size)
            elif kind == "radial":
                imgs = radial_grating(geo, self.freq[i], self.phase[i], p.contrast, p.size, p.mean)
            else:
                imgs = linear_grating(geo, self.freq[i], self.orient[i], self.phase[i], p.contrast, p.size, p.mean)
            out[torch.from_numpy(sel)] = imgs
        return out


def concat(sets: Sequence[StimulusSet]) -> StimulusSet:
    return StimulusSet(
        kind=np.concatenate([s.kind for s in sets]),
        freq=np.concatenate([s.freq for s in sets]),
        orient=np.concatenate([s.orient for s in sets]),
        phase=np.concatenate([s.phase for s in sets]),
        protocol=sets[0].protocol,
    )


def gray_set(protocol: ProbeProtocol) -> StimulusSet:
    return StimulusSet(np.array(["gray"]), np.zeros(1), np.zeros(1), np.zeros(1), protocol)


def frequency_sweep(protocol: ProbeProtocol) -> StimulusSet:
    """Frequency stimuli, frequency-major then (orientation) then phase: radial, or linear over all orientations."""
    f, ph = protocol.frequencies, protocol.phases
    if protocol.freq_stimulus == "radial":
        ff, pp = np.meshgrid(f, ph, indexing="ij")
        n = ff.size
        return StimulusSet(np.full(n, "radial"), ff.ravel(), np.zeros(n), pp.ravel(), protocol)
    ff, tt, pp = np.meshgrid(f, protocol.orientations, ph, indexing="ij")
    n = ff.size
    return StimulusSet(np.full(n, "linear"), ff.ravel(), tt.ravel(), pp.ravel(), protocol)


def orientation_sweep(protocol: ProbeProtocol, freqs_cpd: Sequence[float] | np.ndarray) -> StimulusSet:
    """Linear gratings at each of `freqs_cpd` × every orientation × every phase (frequency-major)."""
    freqs = np.asarray(freqs_cpd, dtype=np.float64)
    ff, tt, pp = np.meshgrid(freqs, protocol.orientations, protocol.orientation_phases, indexing="ij")
    n = ff.size
    return StimulusSet(np.full(n, "linear"), ff.ravel(), tt.ravel(), pp.ravel(), protocol)
