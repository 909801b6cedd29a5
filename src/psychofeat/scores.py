"""Per-channel scores: CSF-weighted frequency sensitivity (mu1), orientation selectivity (mu2) and PE.

Formulation (SCIENCE.md), vectorised over the channels of a layer:

- R_m(s) = a_m(s) − a_m(gray): phase-averaged mean activation relative to the uniform field.
- unresponsive: peak_i |R_m(f_i)| below `UNRESPONSIVE_FRACTION` × the layer's median peak (or exactly 0);
  such channels get mu1 = mu2 = PE = 0.
- D_i = |R(f_{i+1}) − R(f_i)| / (log2 f_{i+1} − log2 f_i) at g_i = sqrt(f_i f_{i+1});
  σ_m = RMS_i R_m(f_i) + ε; w_i = CSF(g_i) / Σ_j CSF(g_j); mu1_m = Σ_i w_i D_i / σ_m.
- f*_m = g_{argmax_i w_i D_i}: the frequency of greatest CSF-weighted sensitivity, where mu2 is measured.
  (SCIENCE.md calls it the preferred frequency; as it sits on a flank of the tuning curve, psychofeat reports
  it as `sens_freq_cpd` and gives the classic preferred frequency — the peak of |R| — as `pref_freq_cpd`.)
- mu2 = |Σ_j r⁺_j e^{2iθ_j}| / Σ_j r⁺_j with r⁺ = r − min r (1 − circular variance, Ringach et al. 2002);
  θ* = ½ arg Σ_j r⁺_j e^{2iθ_j}; modulation depth = (max r − min r)/(|max r| + |min r| + ε).
- PE = (mu1 / max_layer mu1) · mu2 ("product", default), or rank-based alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from psychofeat.errors import InputError

UNRESPONSIVE_FRACTION = 1e-3
EPS = 1e-12
PE_COMBINATIONS = ("product", "rank_product", "rank_geomean")


@dataclass
class FrequencyScores:
    """Frequency-sweep results for the C channels of one layer."""

    mu1: np.ndarray  # (C,)
    sens_index: np.ndarray  # (C,) index i of g_i = f*
    pref_index: np.ndarray  # (C,) index of the peak |R| on the f grid
    peak: np.ndarray  # (C,) max |R|
    unresponsive: np.ndarray  # (C,) bool
    contributions: np.ndarray  # (N_f − 1, C) w_i·D_i / σ


@dataclass
class OrientationScores:
    mu2: np.ndarray  # (C,)
    pref_orient_deg: np.ndarray  # (C,) in (−90, 90]
    modulation: np.ndarray  # (C,)


def unresponsive_mask(peak: np.ndarray, fraction: float = UNRESPONSIVE_FRACTION) -> np.ndarray:
    """Channels whose peak response is below `fraction` × the layer's median peak (or 0 / not finite)."""
    finite = np.isfinite(peak)
    median = float(np.median(peak[finite])) if finite.any() else 0.0
    return ~finite | (peak <= 0) | (peak < fraction * median)


def frequency_scores(
    freqs: np.ndarray,
    responses: np.ndarray,
    csf_at_mid: np.ndarray,
    unresponsive_fraction: float = UNRESPONSIVE_FRACTION,
) -> FrequencyScores:
    """mu1 and related quantities from R (N_f × C, relative to gray) and the CSF at the mid frequencies g_i."""
    freqs = np.asarray(freqs, dtype=np.float64)
    R = np.asarray(responses, dtype=np.float64)
    w = np.asarray(csf_at_mid, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != freqs.size:
        raise InputError(f"responses must be N_f×C with N_f={freqs.size}, got {R.shape}.")
    if w.shape != (freqs.size - 1,):
        raise InputError(f"CSF weights must have N_f−1={freqs.size - 1} values, got {w.shape}.")
    if np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise InputError("CSF values must be finite, non-negative and not all zero.")
    if np.any(np.diff(freqs) <= 0):
        raise InputError("frequencies must be strictly increasing.")
    w = w / w.sum()
    du = np.diff(np.log2(freqs))[:, None]
    D = np.abs(np.diff(R, axis=0)) / du
    sigma = np.sqrt(np.mean(R**2, axis=0)) + EPS
    contrib = w[:, None] * D / sigma
    mu1 = contrib.sum(axis=0)
    peak = np.max(np.abs(R), axis=0)
    dead = unresponsive_mask(peak, unresponsive_fraction)
    mu1 = np.where(dead, 0.0, mu1)
    return FrequencyScores(
        mu1=mu1,
        sens_index=np.argmax(w[:, None] * D, axis=0),
        pref_index=np.argmax(np.abs(R), axis=0),
        peak=peak,
        unresponsive=dead,
        contributions=np.where(dead[None, :], 0.0, contrib),
    )


def orientation_scores(orientations_deg: np.ndarray, responses: np.ndarray) -> OrientationScores:
    """mu2 (1 − circular variance on the doubled angle) from r (C × N_θ, relative to gray)."""
    theta = np.deg2rad(np.asarray(orientations_deg, dtype=np.float64))
    r = np.asarray(responses, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != theta.size:
        raise InputError(f"orientation responses must be C×N_θ with N_θ={theta.size}, got {r.shape}.")
    rmin, rmax = r.min(axis=1, keepdims=True), r.max(axis=1, keepdims=True)
    rp = r - rmin
    vec = rp @ np.exp(2j * theta)
    total = rp.sum(axis=1)
    mu2 = np.where(total > 0, np.abs(vec) / np.where(total > 0, total, 1.0), 0.0)
    pref = np.rad2deg(0.5 * np.angle(vec))
    pref = np.where(pref <= -90.0, pref + 180.0, pref)
    modulation = ((rmax - rmin) / (np.abs(rmax) + np.abs(rmin) + EPS)).ravel()
    return OrientationScores(mu2=np.clip(mu2, 0.0, 1.0), pref_orient_deg=pref, modulation=modulation)


def _rank01(x: np.ndarray) -> np.ndarray:
    """Ranks scaled to (0, 1]; ties share their average rank."""
    from scipy.stats import rankdata

    return rankdata(x, method="average") / len(x)


def perceptual_efficacy(
    mu1: np.ndarray, mu2: np.ndarray, unresponsive: np.ndarray, combination: str = "product"
) -> np.ndarray:
    """PE in [0, 1] within a layer; unresponsive channels get 0."""
    mu1 = np.asarray(mu1, dtype=np.float64)
    mu2 = np.asarray(mu2, dtype=np.float64)
    if combination == "product":
        top = mu1.max() if mu1.size and mu1.max() > 0 else 1.0
        pe = (mu1 / top) * mu2
    elif combination == "rank_product":
        pe = _rank01(mu1) * _rank01(mu2)
    elif combination == "rank_geomean":
        pe = np.sqrt(_rank01(mu1) * _rank01(mu2))
    else:
        raise InputError(f"unknown PE combination {combination!r}; choose one of {', '.join(PE_COMBINATIONS)}.")
    return np.where(unresponsive, 0.0, pe)


def score_layer(
    layer: str,
    freqs: np.ndarray,
    freq_responses: np.ndarray,
    csf_at_mid: np.ndarray,
    orientations_deg: np.ndarray,
    orient_responses: np.ndarray,
    combination: str = "product",
    unresponsive_fraction: float = UNRESPONSIVE_FRACTION,
    fscores: FrequencyScores | None = None,
) -> pd.DataFrame:
    """One row per channel: mu1, mu2, PE and the tuning summary.

    `orient_responses` (C × N_θ) must be measured at each channel's f* (`frequency_scores(...).sens_index`);
    pass that `fscores` when it is at hand, so it is not computed again.
    """
    fs = fscores if fscores is not None else frequency_scores(freqs, freq_responses, csf_at_mid, unresponsive_fraction)
    os_ = orientation_scores(orientations_deg, orient_responses)
    mid = np.sqrt(freqs[:-1] * freqs[1:])
    mu2 = np.where(fs.unresponsive, 0.0, os_.mu2)
    pe = perceptual_efficacy(fs.mu1, mu2, fs.unresponsive, combination)
    C = fs.mu1.size
    return pd.DataFrame(
        {
            "layer": layer,
            "channel": np.arange(C),
            "mu1": fs.mu1,
            "mu2": mu2,
            "pe": pe,
            "pref_freq_cpd": np.asarray(freqs)[fs.pref_index],
            "sens_freq_cpd": mid[fs.sens_index],
            "pref_orient_deg": os_.pref_orient_deg,
            "modulation": os_.modulation,
            "peak_response": fs.peak,
            "unresponsive": fs.unresponsive,
        }
    )
