"""Barten (1999): the physical CSF model of the eye, static, foveal, binocular.

P. G. J. Barten, *Contrast Sensitivity of the Human Eye and Its Effects on Image Quality*, SPIE Press,
1999 (eq. 3.26 and its constants; the same formula and constants are summarised in Barten, "Formula for
the contrast sensitivity of the human eye", Proc. SPIE 5294:231–238, 2004):

    S(u) = (M_opt(u) / k) / sqrt( (2/T) · (1/X0² + 1/X_max² + u²/N_max²)
                                  · (1/(η·p·E) + Φ0 / (1 − exp(−(u/u0)²))) )

    M_opt(u) = exp(−2π²σ²u²),        σ = sqrt(σ0² + (C_ab·d)²)
    d = 5 − 3·tanh(0.4·log10(L·X0²/40²))              pupil diameter [mm] (Barten's field-size form)
    E = (π d²/4) · L · (1 − (d/9.7)² + (d/12.4)⁴)     retinal illuminance [Td], Stiles–Crawford corrected

u in cycles per degree, L in cd/m², X0 the angular size of the (square) field in degrees. psychofeat
gives the stimulus as an area A [deg²], so X0 = sqrt(A): the square of the same area, which is also
what castleCSF's port of Barten's model (CSF_Barten_Original.m) does.

Scale: **absolute**, 1 / threshold modulation (Michelson contrast) at the model's detection criterion
(signal-to-noise ratio k = 3), binocular viewing. Sensitivity rises with luminance (photon noise falls:
de Vries–Rose at low L, Weber at high L) and with area up to X_max = 12° or N_max = 15 cycles.

Pupil: by default the pupil is set by the luminance and the stimulus field X0, as in Barten's formula;
pass `pupil_field_deg` to set it from a fixed adapting field instead (e.g. a whole display around a
small Gabor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from psychofeat.csf.base import CSFModel, FloatArray

ARCMIN_PER_DEG = 60.0


def pupil_diameter_mm(luminance: ArrayLike, field_deg: ArrayLike) -> FloatArray:
    """Barten's (1999) pupil diameter [mm] for luminance [cd/m²] and a square field of side `field_deg` [deg].

    d = 5 − 3 tanh(0.4 log10(L X0²/40²)): Le Grand's luminance formula with Barten's field-size term, so
    that a 40° field gives Le Grand's value. The base-10 logarithm is Barten's (some ports use ln, which
    gives a much smaller pupil: 2.1 instead of 2.8 mm at 100 cd/m² and 60°).
    """
    lum = np.asarray(luminance, dtype=np.float64)
    x0 = np.asarray(field_deg, dtype=np.float64)
    return 5.0 - 3.0 * np.tanh(0.4 * np.log10(lum * x0**2 / 40.0**2))


def retinal_illuminance_td(luminance: ArrayLike, pupil_mm: ArrayLike) -> FloatArray:
    """Retinal illuminance [Td] = pupil area [mm²] × luminance, with Barten's Stiles–Crawford correction
    (1 − (d/9.7)² + (d/12.4)⁴): light through the pupil's edge is less effective for cones."""
    lum = np.asarray(luminance, dtype=np.float64)
    d = np.asarray(pupil_mm, dtype=np.float64)
    return np.pi * d**2 / 4.0 * lum * (1.0 - (d / 9.7) ** 2 + (d / 12.4) ** 4)


@dataclass(frozen=True, repr=False)
class BartenCSF(CSFModel):
    """Barten (1999) static foveal CSF with the book's constants (standard observer, 20–30 years).

    Every constant is a field so that a study can change it explicitly; the defaults are the published ones.
    """

    k: float = 3.0  # signal-to-noise ratio at threshold
    sigma0_arcmin: float = 0.5  # optical line-spread width without the pupil-dependent part [arcmin]
    c_ab_arcmin_per_mm: float = 0.08  # growth of the line-spread width with pupil diameter [arcmin/mm]
    t_s: float = 0.1  # integration time of the eye [s]
    x_max_deg: float = 12.0  # maximum angular size of the integration area [deg]
    n_max_cycles: float = 15.0  # maximum number of cycles the eye integrates over
    eta: float = 0.03  # quantum efficiency of the eye
    p_photons: float = 1.24e6  # photon conversion factor [photons / (s · deg² · Td)]
    phi0_s_deg2: float = 3e-8  # spectral density of the neural noise [s · deg²]
    u0_cpd: float = 7.0  # frequency above which lateral inhibition ceases [cpd]
    pupil_field_deg: float | None = None  # side of the adapting field for the pupil; None: the stimulus field

    name: ClassVar[str] = "barten"
    reference: ClassVar[str] = "Barten (1999), Contrast Sensitivity of the Human Eye..., SPIE Press, eq. 3.26"
    absolute: ClassVar[bool] = True

    def _sensitivity(self, f: FloatArray, lum: FloatArray, area: FloatArray) -> FloatArray:
        x0 = np.sqrt(area)
        field = x0 if self.pupil_field_deg is None else np.full_like(x0, self.pupil_field_deg)
        d = pupil_diameter_mm(lum, field)
        e_td = retinal_illuminance_td(lum, d)
        sigma_deg = np.hypot(self.sigma0_arcmin, self.c_ab_arcmin_per_mm * d) / ARCMIN_PER_DEG
        m_opt = np.exp(-2.0 * np.pi**2 * sigma_deg**2 * f**2)
        spatial = 1.0 / x0**2 + 1.0 / self.x_max_deg**2 + f**2 / self.n_max_cycles**2
        # 1 − exp(−x) via expm1 keeps the lateral-inhibition term accurate (and > 0) at low frequencies.
        lateral = -np.expm1(-((f / self.u0_cpd) ** 2))
        noise = 1.0 / (self.eta * self.p_photons * e_td) + self.phi0_s_deg2 / lateral
        return (m_opt / self.k) / np.sqrt((2.0 / self.t_s) * spatial * noise)
