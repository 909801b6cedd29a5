"""castleCSF (Ashraf, Mantiuk, Chapiro & Wuerger 2024) for static, foveal, achromatic stimuli.

M. Ashraf, R. K. Mantiuk, A. Chapiro, S. Wuerger, "castleCSF — A contrast sensitivity function of color,
area, spatiotemporal frequency, luminance and eccentricity", Journal of Vision 24(4):5, 2024.
doi:10.1167/jov.24.4.5. Port of the MATLAB reference code, gfxdisp/castleCSF v0.2.4 (commit f4b0b722),
files CSF_castleCSF.m, CSF_stelaCSF_lum_peak.m, CSF_castleCSF_chrom.m and CSF_base.m (MIT licence,
© 2023 Graphics and Displays group, University of Cambridge), restricted to t_frequency = 0 Hz and
eccentricity = 0°, with the stimulus given by its luminance (so the code's own D65 defaults are used).

What ``CSF_castleCSF().sensitivity(struct('s_frequency', f, 'luminance', L, 'area', A))`` computes:

1. Background and modulation in CIE 2006 LMS: ``lms_bkg = [0.6991 0.3009 0.0198]·L`` (D65) and
   ``lms_delta = [0.6855 0.2951 0.0194]`` (the default "D65 luminance modulation").
2. Three post-receptoral mechanism contrasts ``C_A, C_R, C_Y = |M·lms_delta| / (M·lms_bkg)[A]`` with
   ``M = [[1, 1, 0], [1, −2.3112, 0], [−1, −1, 50.9875]]`` (achromatic, red-green, yellow-violet; all
   normalised by the achromatic response of the background).
3. Each mechanism's sensitivity S_A, S_R, S_Y (below); detection when
   ``sqrt((C_A·S_A)² + (C_R·S_R)² + (C_Y·S_Y)²) = 1/k``, i.e. ``k = 1/sqrt(Σ (C·S)²)``.
4. Sensitivity = 1 / RMS cone contrast at threshold = ``1 / (sqrt(Σ_cones (k·Δ/bkg)²) / sqrt(3))``.

Because D65's LMS are not exactly nulled by the colour-opponent rows of M, a luminance modulation evokes
small red-green / yellow-violet responses (C_R ≈ 0.004·C_A, C_Y ≈ 0.010·C_A). At L ≥ 1 cd/m² they raise
sensitivity by less than 0.3 %; only where the achromatic sensitivity itself is below ~0.01 (threshold
contrast > 100, i.e. invisible: L ≤ 0.01 cd/m² and f ≳ 10 cpd) do they dominate. The port keeps them, to
match MATLAB; `achromatic_mechanism_sensitivity` is the achromatic mechanism alone
(``castleCSF_ach.sensitivity`` in MATLAB).

The achromatic mechanism (stelaCSF with a luminance-dependent transient peak), for f [cpd], L [cd/m²],
A [deg²]:

    S_A = R_sust·S_sust + R_trans·S_trans
    S_x = S_max,x(L) · LP_x(f) · sqrt(A_c / (1 + A_c/A)) · f,   A_c = A_0 / (1 + (f/f_0)²)
    LP_x(f) = 10^(−(log10 f − log10 f_max,x(L))² / 2^bw),  floored at 1 − a below the peak
    S_max,sust(L) = p1 (1 + p2/L)^(−p3) · (1 − (1 + p4/L)^(−p5)),  f_max,sust(L) = q1 (1 + q2/L)^(−q3)
    S_max,trans(L) = p2 · L^p1,  f_max,trans constant
    R_sust = exp(−0^β/σ_sust) = 1 at 0 Hz,  R_trans = exp(−|0^β − ω0^β|² / σ_trans),
    ω0 = 2.41482·log10 L + 4.7036 [Hz], β = 0.1898

(|ω0^β| is |ω0|^β: MATLAB takes the complex power when ω0 < 0, i.e. below ~0.011 cd/m², and the
absolute value makes it real again). The chromatic mechanisms have the same form with a single
sustained channel, a constant f_max and LP = 1 below f_max.

Scale: **absolute**, 1 / threshold contrast (for an achromatic modulation the RMS cone contrast equals
the Michelson luminance contrast up to the 0.1 % mismatch between the two default D65 vectors).
The parameters below are the fitted values of ``CSF_castleCSF.get_default_par()`` (v0.2.4), also listed
in ``<data root>/hvs/castleCSF_default_par.json``; they are embedded so that the package works without the
shared data. tests/test_csf.py checks this port against values computed by the MATLAB code in GNU Octave
(scripts/castlecsf_reference.m) to 1e-6 relative.

The chromatic part (issue 22) is public too: `chromatic_mechanism_sensitivity` (the red-green and yellow-violet
mechanisms alone, MATLAB ``castleCSF_rg`` / ``castleCSF_yv``), `mechanism_sensitivity` (any of the three) and
`castle_sensitivity_lms` (the full model for any background and modulation direction in LMS, e.g. isoluminant
gratings). They are checked the same way against scripts/castlecsf_chrom_reference.m
(tests/data/castlecsf_chrom_reference.csv, 0.002–32 cpd, 0.1–1000 cd/m², 0.05–100 deg², six colour directions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import numpy as np

from psychofeat.csf.base import CSFModel, FloatArray

# --- parameters: CSF_castleCSF.get_default_par(), gfxdisp/castleCSF v0.2.4 (commit f4b0b722) -----------------


class _Channel(NamedTuple):
    """One sustained or transient channel of a mechanism (fields as in the MATLAB `par` structs)."""

    s_max: tuple[float, ...]  # luminance dependence of the peak sensitivity (CSF_base.get_lum_dep)
    f_max: tuple[float, ...]  # luminance dependence of the peak frequency [cpd]
    bw: float  # log-parabola bandwidth
    a: float  # low-frequency truncation: LP >= 1 - a below the peak (achromatic only)
    a_0: float  # Rovamo et al. (1993) critical area at f -> 0 [deg^2]
    f_0: float  # frequency scale of the critical area [cpd]


#: p.ach.ach_sust
ACH_SUST = _Channel(
    s_max=(56.4947, 7.54726, 0.144532, 5.58341e-07, 9.66862e09),
    f_max=(1.78119, 91.5718, 0.256682),
    bw=0.000213047,
    a=0.100207,
    a_0=157.103,
    f_0=0.702338,
)
#: p.ach.ach_trans
ACH_TRANS = _Channel(
    s_max=(0.193434, 2748.09),
    f_max=(0.000316696,),
    bw=2.6761,
    a=0.000241177,
    a_0=3.81611,
    f_0=3.01389,
)
#: p.ach.sigma_trans, p.ach.omega_trans_sl, p.ach.omega_trans_c; beta_trans is a literal in get_sust_trans_resp
ACH_SIGMA_TRANS = 0.0844836
ACH_OMEGA_TRANS_SL = 2.41482
ACH_OMEGA_TRANS_C = 4.7036
ACH_BETA_TRANS = 0.1898
#: p.rg.* and p.yv.* (sigma_sust/beta_sust only matter for flicker; at 0 Hz R_sust = 1)
RG = _Channel(s_max=(681.434, 38.0038, 0.480386), f_max=(0.0178364,), bw=2.42104, a=0.0, a_0=2816.44, f_0=0.0711058)
YV = _Channel(
    s_max=(166.683, 62.8974, 0.41193), f_max=(0.00425753,), bw=2.68197, a=0.0, a_0=2.82789e07, f_0=0.000635093
)
#: class constants of CSF_castleCSF: colmat fills the non-unit cells of the mechanism matrix
COLMAT = (2.3112, 0.0, 0.0, 50.9875)
CHROM_CH_BETA = 2.0
#: defaults of CSF_base.test_complete_params: D65 background per cd/m^2 and D65 luminance modulation (CIE 2006 LMS)
D65_LMS_PER_CD_M2 = np.array([0.6991, 0.3009, 0.0198])
D65_LMS_DELTA = np.array([0.6855, 0.2951, 0.0194])


def _mechanism_matrix() -> np.ndarray:
    """CSF_castleCSF.get_lms2acc: ones, colmat in the cells where Mones == 0 (column-major), then signs."""
    m = np.ones((3, 3))
    mones = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 0]])
    cells = np.flatnonzero(mones.ravel(order="F") == 0)  # MATLAB linear (column-major) indices
    rows, cols = np.unravel_index(cells, (3, 3), order="F")
    m[rows, cols] = COLMAT
    signs = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])
    return np.asarray(m * signs)


LMS_TO_ACC = _mechanism_matrix()


def lum_dep(pars: Sequence[float], lum: FloatArray) -> FloatArray:
    """CSF_base.get_lum_dep: the family of luminance dependences selected by the number of parameters."""
    if len(pars) == 1:
        return np.full_like(lum, pars[0])
    if len(pars) == 2:
        return pars[1] * lum ** pars[0]
    if len(pars) == 3:
        return pars[0] * (1.0 + pars[1] / lum) ** (-pars[2])
    if len(pars) == 5:
        return pars[0] * (1.0 + pars[1] / lum) ** (-pars[2]) * (1.0 - (1.0 + pars[3] / lum) ** (-pars[4]))
    raise ValueError(f"no luminance dependence with {len(pars)} parameters")


def _size_term(f: FloatArray, area: FloatArray, a_0: float, f_0: float) -> FloatArray:
    """Rovamo, Luntinen & Näsänen (1993) spatial integration: sqrt(Ac / (1 + Ac/A)) · f."""
    a_c = a_0 / (1.0 + (f / f_0) ** 2)
    return np.sqrt(a_c / (1.0 + a_c / area)) * f


def _achromatic_channel(f: FloatArray, area: FloatArray, lum: FloatArray, ch: _Channel) -> FloatArray:
    """CSF_stelaCSF_lum_peak.csf_achrom: truncated log-parabola times the size term."""
    s_max = lum_dep(ch.s_max, lum)
    f_max = lum_dep(ch.f_max, lum)
    lp = 10.0 ** (-((np.log10(f) - np.log10(f_max)) ** 2) / 2.0**ch.bw)
    lp = np.where((f < f_max) & (lp < 1.0 - ch.a), 1.0 - ch.a, lp)
    return s_max * lp * _size_term(f, area, ch.a_0, ch.f_0)


def _chromatic_channel(f: FloatArray, area: FloatArray, lum: FloatArray, ch: _Channel) -> FloatArray:
    """CSF_castleCSF_chrom.csf_chrom: log-parabola held at 1 below the peak, times the size term."""
    s_max = lum_dep(ch.s_max, lum)
    f_max = lum_dep(ch.f_max, lum)
    lp = np.where(f < f_max, 1.0, 10.0 ** (-(np.abs(np.log10(f) - np.log10(f_max)) ** 2) / 2.0**ch.bw))
    return s_max * lp * _size_term(f, area, ch.a_0, ch.f_0)


def transient_response_static(lum: FloatArray) -> FloatArray:
    """R_trans at 0 Hz (get_sust_trans_resp): exp(−|ω0|^(2β) / σ_trans), ω0 = 2.41482 log10 L + 4.7036."""
    omega_0 = np.log10(lum) * ACH_OMEGA_TRANS_SL + ACH_OMEGA_TRANS_C
    return np.exp(-((np.abs(omega_0) ** ACH_BETA_TRANS) ** 2) / ACH_SIGMA_TRANS)


def achromatic_mechanism_sensitivity(f: FloatArray, lum: FloatArray, area: FloatArray) -> FloatArray:
    """The achromatic mechanism alone (MATLAB ``castleCSF_ach.sensitivity``), static and foveal.

    Arguments as in `CSFModel.sensitivity` but unchecked: float64 arrays, f [cpd], lum [cd/m²], area [deg²].
    """
    s_sust = _achromatic_channel(f, area, lum, ACH_SUST)  # R_sust = exp(-0) = 1 at 0 Hz
    s_trans = _achromatic_channel(f, area, lum, ACH_TRANS)
    return s_sust + transient_response_static(lum) * s_trans


def castle_sensitivity(f: FloatArray, lum: FloatArray, area: FloatArray) -> FloatArray:
    """Full castleCSF sensitivity to a D65 luminance modulation on a D65 background (MATLAB ``sensitivity``)."""
    lms_bkg = D65_LMS_PER_CD_M2 * lum[..., None]  # [..., 3]
    acc_bkg = np.abs(lms_bkg @ LMS_TO_ACC.T)
    acc_delta = np.abs(D65_LMS_DELTA @ LMS_TO_ACC.T)  # [3]
    c_a, c_r, c_y = (acc_delta[i] / acc_bkg[..., 0] for i in range(3))  # all normalised by the achromatic bkg
    beta = CHROM_CH_BETA
    c = (
        (c_a * achromatic_mechanism_sensitivity(f, lum, area)) ** beta
        + (c_r * _chromatic_channel(f, area, lum, RG)) ** beta
        + (c_y * _chromatic_channel(f, area, lum, YV)) ** beta
    ) ** (1.0 / beta)
    k_thr = 1.0 / c
    cone_contrast = k_thr[..., None] * D65_LMS_DELTA / lms_bkg
    rms_cone_contrast = np.sqrt(np.sum(cone_contrast**2, axis=-1)) / np.sqrt(3.0)
    return np.asarray(1.0 / rms_cone_contrast, dtype=np.float64)


# --- the chromatic part: mechanisms alone and the full model along any colour direction ------------------------

#: castleCSF's three post-receptoral mechanisms, in the order of the rows of `LMS_TO_ACC`
MECHANISMS: tuple[str, ...] = ("ach", "rg", "yv")
_CHROMATIC = {"rg": RG, "yv": YV}


def chromatic_mechanism_sensitivity(mechanism: str, f: FloatArray, lum: FloatArray, area: FloatArray) -> FloatArray:
    """The red-green (``"rg"``) or yellow-violet (``"yv"``) mechanism alone, static and foveal (MATLAB
    ``castleCSF_rg.sensitivity`` / ``castleCSF_yv.sensitivity``, i.e. ``CSF_castleCSF_chrom``).

    ``S = S_max(L) · LP(f) · sqrt(A_c / (1 + A_c/A)) · f`` with LP = 1 below the constant f_max and the
    log-parabola above; at 0 Hz the sustained response is 1 and at 0° eccentricity there is no drop. Sensitivity
    to the mechanism's own contrast (castleCSF's C_R, C_Y: the mechanism response normalised by the achromatic
    response of the background). Arguments unchecked: float64 arrays, f [cpd], lum [cd/m²], area [deg²].
    """
    if mechanism not in _CHROMATIC:
        raise ValueError(f"chromatic mechanism must be 'rg' or 'yv', got {mechanism!r}")
    f, lum, area = (np.asarray(v, dtype=np.float64) for v in (f, lum, area))
    return np.asarray(_chromatic_channel(f, area, lum, _CHROMATIC[mechanism]), dtype=np.float64)


def mechanism_sensitivity(mechanism: str, f: FloatArray, lum: FloatArray, area: FloatArray) -> FloatArray:
    """One castleCSF mechanism alone: ``"ach"`` (`achromatic_mechanism_sensitivity`), ``"rg"`` or ``"yv"``."""
    if mechanism == "ach":
        f, lum, area = (np.asarray(v, dtype=np.float64) for v in (f, lum, area))
        return achromatic_mechanism_sensitivity(f, lum, area)
    return chromatic_mechanism_sensitivity(mechanism, f, lum, area)


def castle_sensitivity_lms(f: FloatArray, lms_bkg: FloatArray, lms_delta: FloatArray, area: FloatArray) -> FloatArray:
    """Full castleCSF for a modulation along `lms_delta` on a background `lms_bkg` (MATLAB ``sensitivity`` given
    ``lms_bkg`` and ``lms_delta``): 1 / RMS cone contrast at threshold, static and foveal.

    `lms_bkg` and `lms_delta` are CIE 2006 LMS with the colour in the last axis (size 3), broadcast against `f`
    and `area` (given without that axis). The adaptation luminance is castleCSF's, L + M of the background.
    Mechanism contrasts C = |M·Δ| / (M·bkg)[A] combine as ``k = 1/sqrt(Σ (C·S)²)`` (`castle_sensitivity` is
    the D65 luminance case).
    """
    f, area = np.asarray(f, dtype=np.float64), np.asarray(area, dtype=np.float64)
    bkg, delta = np.asarray(lms_bkg, dtype=np.float64), np.asarray(lms_delta, dtype=np.float64)
    if bkg.shape[-1] != 3 or delta.shape[-1] != 3:
        raise ValueError("lms_bkg and lms_delta need the L, M, S components in their last axis")
    lum = bkg[..., 0] + bkg[..., 1]
    acc_bkg = np.abs(bkg @ LMS_TO_ACC.T)
    acc_delta = np.abs(delta @ LMS_TO_ACC.T)
    beta = CHROM_CH_BETA
    total = 0.0
    for i, mech in enumerate(MECHANISMS):
        c = acc_delta[..., i] / acc_bkg[..., 0]  # every mechanism normalised by the background's achromatic response
        total = total + (c * mechanism_sensitivity(mech, f, lum, area)) ** beta
    k_thr = 1.0 / total ** (1.0 / beta)
    cone_contrast = np.asarray(k_thr)[..., None] * delta / bkg
    rms_cone_contrast = np.sqrt(np.sum(cone_contrast**2, axis=-1)) / np.sqrt(3.0)
    return np.asarray(1.0 / rms_cone_contrast, dtype=np.float64)


class CastleCSF(CSFModel):
    """castleCSF (2024) for static, foveal, achromatic (D65) stimuli; absolute sensitivity.

    ``achromatic_only=True`` returns the achromatic mechanism alone, without the (photopically < 0.3 %)
    contribution of the colour mechanisms (see the module docstring); the default is the full model as
    MATLAB computes it.
    """

    name: ClassVar[str] = "castle"
    reference: ClassVar[str] = "Ashraf, Mantiuk, Chapiro & Wuerger (2024), J. Vision 24(4):5 (castleCSF v0.2.4)"
    absolute: ClassVar[bool] = True

    def __init__(self, achromatic_only: bool = False) -> None:
        self.achromatic_only = bool(achromatic_only)

    def _sensitivity(self, f: FloatArray, lum: FloatArray, area: FloatArray) -> FloatArray:
        if self.achromatic_only:
            return achromatic_mechanism_sensitivity(f, lum, area)
        return castle_sensitivity(f, lum, area)
