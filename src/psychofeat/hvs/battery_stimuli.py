"""Stimuli and human data of the low-level vision battery (``psychofeat hvs battery``; docs/battery.md).

Protocol of Cai, Yin, Hammou & Mantiuk (CVPR 2025; public code caiyancheng/VFM_HVS_CVPR2025, read for its
parameters): 224 × 224 px at 60 pixels per degree, absolute luminance (cd/m²) shown on an sRGB display of
400 cd/m² peak (`psychofeat.display.DisplayModel`), achromatic.

* **phase-coherent masking** (Foley 1994): a 2 cpd Gabor test (σ 0.5°, vertical bars, cosine phase at the
  centre) on a full-field 2 cpd grating mask of the same phase; background 32 cd/m²; Michelson contrasts.
* **phase-incoherent masking**: a 1.2 cpd Gabor test (σ 0.8°) on white Gaussian noise low-passed at 12 cpd
  (RMS contrast c_m = std(L)/L_b: the noise has zero mean and unit s.d.); background 37 cd/m²; one fixed noise
  sample (seed 8, numpy's default generator).
* **contrast matching** (Georgeson & Sullivan 1975): full-field sine gratings (sine phase at the centre) of
  0.25–25 cpd on 10 cd/m², each compared with the uniform field; reference frequency 5 cpd.

A stimulus is ``L = L_b · (1 + c_m·M + c_t·T)`` with unit-contrast patterns M (mask) and T (test), computed once
in float64 with `psychofeat.stimuli` (so cpd and orientation follow the channel analysis's conventions).
Luminance below the display's black (the strongest noise masks: a few pixels at |noise| > 1/c_m) is set to the
black level, as the CVPR generators clip at 1e-4 cd/m²; the clipped fraction is reported, nothing else is.
Contrast detection reuses `psychofeat.hvs.threshold_stimuli` (castleCSF rows at human threshold), shown through the
same display model by `DisplayedThresholdStimuli`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from psychofeat.display import DisplayModel
from psychofeat.errors import InputError
from psychofeat.hvs.data import hvs_file
from psychofeat.hvs.threshold_stimuli import COSINE_PHASE, Display, ThresholdStimuli, threshold_stimuli
from psychofeat.stimuli import ViewingGeometry, gabor, linear_grating

BATTERY_DIR = "battery"
FOLEY_FILE = "foley_contrast_masking_data_gabor.json"
NOISE_FILE = "contrast_masking_data_gabor_on_noise.json"
MATCHING_FILE = "contrast_constancy_sin_5_cpd.json"
#: the CVPR 2025 tests keep human masking points with 0.005 < mask contrast < 0.25
MASK_RANGE = (0.005, 0.25)
#: detection tests: which castleCSF dataset varies which factor (docs/battery.md)
DETECTION_TESTS = {"detection_frequency": "modelfest", "detection_luminance": "hdrvdp_csf",
                   "detection_area": "rovamo1993"}
MASKING_TESTS = ("masking_coherent", "masking_incoherent")
MATCHING_TEST = "matching"


@dataclass(frozen=True)
class Viewing:
    """The battery's display: a `DisplayModel` (sRGB, peak luminance) plus pixels per degree and image size."""

    display: DisplayModel = field(default_factory=DisplayModel)
    ppd: float = 60.0
    size: int = 224

    def __post_init__(self) -> None:
        ViewingGeometry(self.ppd)
        if not isinstance(self.size, int | np.integer) or self.size < 32:
            raise InputError(f"image size must be an integer ≥ 32 px, got {self.size!r}.")

    @property
    def geometry(self) -> ViewingGeometry:
        return ViewingGeometry(self.ppd)

    def to_dict(self) -> dict[str, Any]:
        return {"display": self.display.to_dict(), "ppd": self.ppd, "size": int(self.size)}

    def images(self, luminance: np.ndarray) -> torch.Tensor:
        """Luminance maps N×S×S (cd/m², float64) → display images N×3×S×S float32 in [0, 1]."""
        img = self.display.image_from_luminance(np.asarray(luminance, dtype=np.float64))
        return torch.from_numpy(img.astype(np.float32)).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def _unit(img: torch.Tensor) -> np.ndarray:
    """`psychofeat.stimuli` image of mean 0.5 and contrast 1 → its unit-contrast pattern (S×S float64)."""
    return img[0, 0].double().numpy() * 2.0 - 1.0


def gabor_pattern(view: Viewing, freq_cpd: float, sigma_deg: float, phase: float = COSINE_PHASE) -> np.ndarray:
    """Unit-contrast Gabor, vertical bars (luminance varies along x), centred."""
    return _unit(gabor(view.geometry, freq_cpd, 0.0, phase, 1.0, sigma_deg, view.size, 0.5))


def grating_pattern(view: Viewing, freq_cpd: float, phase: float = COSINE_PHASE) -> np.ndarray:
    """Unit-contrast full-field grating, vertical bars."""
    return _unit(linear_grating(view.geometry, freq_cpd, 0.0, phase, 1.0, view.size, 0.5))


def lowpass_noise(view: Viewing, cutoff_cpd: float = 12.0, seed: int = 8) -> np.ndarray:
    """White Gaussian noise with every component above `cutoff_cpd` removed; zero mean, unit s.d. (S×S)."""
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((view.size, view.size))
    f = np.fft.fftfreq(view.size) * view.ppd
    rho = np.hypot(f[None, :], f[:, None])
    spec = np.fft.fft2(n)
    spec[rho > cutoff_cpd] = 0.0
    spec[0, 0] = 0.0
    out = np.real(np.fft.ifft2(spec))
    return out / out.std()


# ------------------------------------------------------------------------------------------------- human data
def _battery_json(name: str) -> dict[str, Any]:
    import json

    return json.loads(hvs_file(f"{BATTERY_DIR}/{name}").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def human_masking(test: str) -> pd.DataFrame:
    """Human masking thresholds (mask_contrast, test_contrast) kept by the CVPR 2025 filter (`MASK_RANGE`)."""
    raw = _battery_json(FOLEY_FILE if test == "masking_coherent" else NOISE_FILE)
    df = pd.DataFrame({"mask_contrast": raw["mask_contrast_list"], "test_contrast": raw["test_contrast_list"]})
    keep = (df["mask_contrast"] > MASK_RANGE[0]) & (df["mask_contrast"] < MASK_RANGE[1])
    return df[keep].reset_index(drop=True)


def human_matching() -> pd.DataFrame:
    """Georgeson & Sullivan's matches: one row per (reference contrast, test frequency)."""
    raw = _battery_json(MATCHING_FILE)
    rows = []
    for i, ref in enumerate(raw["average_reference_contrast"]):
        d = raw[f"ref_contrast_index_{i}"]
        for f, c in zip(d["x_test_frequency"], d["y_test_contrast_average"], strict=True):
            rows.append({"reference_index": i, "reference_contrast": float(ref), "test_frequency": float(f),
                         "match_contrast": float(c)})
    return pd.DataFrame.from_records(rows)


# ------------------------------------------------------------------------------------------------- tests
@dataclass
class MaskingTest:
    """One masking experiment: L = L_b·(1 + c_m·M + c_t·T); the reference of a trial is the mask alone."""

    name: str
    background: float
    test_pattern: np.ndarray
    mask_pattern: np.ndarray
    mask_contrast_kind: str  # "michelson" (grating mask) or "rms" (noise mask)
    params: dict[str, Any]

    def luminance(self, mask_contrast: float, test_contrast: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Luminance maps N×S×S for the test contrasts on one mask, and the fraction of pixels clipped at black."""
        c = np.atleast_1d(np.asarray(test_contrast, dtype=np.float64))
        lum = self.background * (1.0 + mask_contrast * self.mask_pattern[None] + c[:, None, None]
                                 * self.test_pattern[None])
        low = lum < 0.0
        return np.maximum(lum, 0.0), low.mean(axis=(1, 2))


def masking_test(name: str, view: Viewing) -> MaskingTest:
    """The two masking experiments of the CVPR 2025 protocol (module docstring)."""
    if name == "masking_coherent":
        f, sigma, lb = 2.0, 0.5, 32.0
        return MaskingTest(name, lb, gabor_pattern(view, f, sigma), grating_pattern(view, f), "michelson",
                           {"test_cpd": f, "sigma_deg": sigma, "background": lb, "mask": f"{f:g} cpd grating"})
    if name == "masking_incoherent":
        f, sigma, lb, cut = 1.2, 0.8, 37.0, 12.0
        return MaskingTest(name, lb, gabor_pattern(view, f, sigma), lowpass_noise(view, cut), "rms",
                           {"test_cpd": f, "sigma_deg": sigma, "background": lb,
                            "mask": f"noise low-passed at {cut:g} cpd (seed 8)"})
    raise InputError(f"unknown masking test {name!r}; known: {', '.join(MASKING_TESTS)}.")


@dataclass(frozen=True)
class MatchingTest:
    """Full-field sine gratings on `background` cd/m², compared with the uniform field."""

    background: float = 10.0
    reference_cpd: float = 5.0

    def luminance(self, view: Viewing, freq_cpd: float, contrast: np.ndarray | float) -> np.ndarray:
        c = np.atleast_1d(np.asarray(contrast, dtype=np.float64))
        p = grating_pattern(view, freq_cpd, phase=0.0)
        return self.background * (1.0 + c[:, None, None] * p[None])

    def blank(self, view: Viewing) -> np.ndarray:
        return np.full((1, view.size, view.size), self.background)


# ------------------------------------------------------------------------------------------------- detection
@dataclass
class DisplayedThresholdStimuli(ThresholdStimuli):
    """castleCSF threshold stimuli shown on an absolute-luminance display model.

    `rows["mean"]` is the display's linear drive of the row's background (L − L_black)/(L_peak − L_black), so the
    parent's contrast limit (1 − mean)/mean is the display's; images are that linear field times (1 + c·P),
    sRGB-encoded. Everything else (rows, patterns, grouping) is `ThresholdStimuli`'s."""

    display_model: DisplayModel = field(default_factory=DisplayModel)

    def render(self, index: Sequence[int] | np.ndarray,
               contrast: float | Sequence[float] | np.ndarray | None = None) -> torch.Tensor:
        idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
        c = (self.rows["threshold_contrast"].to_numpy(dtype=np.float64)[idx] if contrast is None
             else np.broadcast_to(np.asarray(contrast, dtype=np.float64), idx.shape))
        means = self.rows["mean"].to_numpy(dtype=np.float64)[idx]
        if idx.size == 0 or np.any(self.rows["size"].to_numpy()[idx] != self.rows["size"].to_numpy()[idx[0]]):
            raise InputError("render needs stimuli of one image size.")
        if np.any(~np.isfinite(c)) or np.any(c < 0) or np.any(c > (1 - means) / means + 1e-12):
            raise InputError(f"contrast must be in [0, (1 − mean)/mean], got {c.min():.4g}–{c.max():.4g}.")
        lin = np.stack([m * (1.0 + ci * self.pattern(i)) for i, ci, m in zip(idx, c, means, strict=True)])
        img = self.display_model.encode_linear(np.clip(lin, 0.0, 1.0))
        return torch.from_numpy(img.astype(np.float32)).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()

    def blank(self, size: int, mean: float = 0.5) -> torch.Tensor:
        v = float(self.display_model.encode_linear(np.float64(mean)))
        return torch.full((1, 3, int(size), int(size)), v, dtype=torch.float32)


def detection_stimuli(view: Viewing, tests: Sequence[str] = tuple(DETECTION_TESTS),
                      max_rows: int | None = None) -> DisplayedThresholdStimuli:
    """The castleCSF rows of the detection tests (`DETECTION_TESTS`) that the display can show.

    No luminance floor: the display model shows dim backgrounds as dim images (this is the luminance test).
    `max_rows`: keep that many rows per dataset, evenly spread (for --quick)."""
    datasets = [DETECTION_TESTS[t] for t in tests]
    base = threshold_stimuli(datasets, Display(ppd=view.ppd, size=int(view.size)), min_luminance=0.0)
    rows = base.rows
    if max_rows is not None:
        keep = np.zeros(len(rows), dtype=bool)
        for _, g in rows.groupby("dataset", sort=False):
            pick = np.unique(np.linspace(0, len(g) - 1, min(max_rows, len(g))).round().astype(int))
            keep[g.index.to_numpy()[pick]] = True
        base = base.subset(keep)
        rows = base.rows
    rows = rows.copy()
    lum = rows["luminance"].to_numpy(dtype=np.float64)
    rows["mean"] = view.display.linear_from_luminance(lum, "detection background")
    test_of = {v: k for k, v in DETECTION_TESTS.items()}
    rows["test"] = rows["dataset"].map(test_of)
    return DisplayedThresholdStimuli(rows.reset_index(drop=True), base.skipped, base.displays,
                                     display_model=view.display)


def michelson(lum: np.ndarray) -> float:
    """(max − min)/(max + min) of a luminance map."""
    lo, hi = float(np.min(lum)), float(np.max(lum))
    return (hi - lo) / (hi + lo)


def log_multipliers(k: int, step: float) -> np.ndarray:
    """10^(j·step) for j = −k..k (the CVPR 2025 multipliers of the human threshold are 0.5–2)."""
    return 10.0 ** (np.arange(-k, k + 1) * step)


__all__ = [
    "DETECTION_TESTS",
    "MASKING_TESTS",
    "MATCHING_TEST",
    "DisplayedThresholdStimuli",
    "MaskingTest",
    "MatchingTest",
    "Viewing",
    "detection_stimuli",
    "gabor_pattern",
    "grating_pattern",
    "human_masking",
    "human_matching",
    "log_multipliers",
    "lowpass_noise",
    "masking_test",
    "michelson",
]
