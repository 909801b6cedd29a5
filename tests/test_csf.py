"""CSF models: castleCSF against the MATLAB reference (Octave), Mannos–Sakrison and Barten against published
behaviour and closed forms, and the shared input policy (errors, clamps, broadcasting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from psychofeat.csf import CSFModel, available_csfs, get_csf
from psychofeat.csf.barten import BartenCSF, pupil_diameter_mm
from psychofeat.csf.castle import CastleCSF
from psychofeat.errors import InputError, UnknownNameError

#: numerically sensitive: CI reruns these under other CPUs' kernels (docs/developing.md, "Every CPU")
pytestmark = pytest.mark.numerics

REFERENCE_CSV = Path(__file__).parent / "data" / "castlecsf_reference.csv"
ALL = ["barten", "castle", "mannos_sakrison"]


# --- registry -------------------------------------------------------------------------------------------------


def test_available_csfs_is_the_documented_list() -> None:
    assert available_csfs() == ALL


@pytest.mark.parametrize("name", ALL)
def test_get_csf_returns_a_named_model(name: str) -> None:
    csf = get_csf(name)
    assert isinstance(csf, CSFModel)
    assert csf.name == name


def test_unknown_csf_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="barten"):
        get_csf("barton")


def test_scales_are_declared() -> None:
    assert get_csf("castle").absolute and get_csf("barten").absolute
    assert not get_csf("mannos_sakrison").absolute


# --- castleCSF vs the MATLAB code ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def castle_reference() -> pd.DataFrame:
    ref = pd.read_csv(REFERENCE_CSV)
    assert len(ref) == 11 * 8 * 5  # the grid of scripts/castlecsf_reference.m
    return ref


def test_castle_matches_matlab_reference(castle_reference: pd.DataFrame) -> None:
    ref = castle_reference
    s = get_csf("castle").sensitivity(ref["s_frequency"], ref["luminance"], ref["area"])
    np.testing.assert_allclose(s, ref["S_castle"], rtol=1e-6, atol=0)


def test_castle_achromatic_mechanism_matches_matlab_reference(castle_reference: pd.DataFrame) -> None:
    ref = castle_reference
    s = CastleCSF(achromatic_only=True).sensitivity(ref["s_frequency"], ref["luminance"], ref["area"])
    np.testing.assert_allclose(s, ref["S_ach"], rtol=1e-6, atol=0)


def test_castle_broadcasts_like_elementwise_evaluation(castle_reference: pd.DataFrame) -> None:
    ref = castle_reference
    f = np.sort(ref["s_frequency"].unique())
    lum = np.sort(ref["luminance"].unique())
    area = np.sort(ref["area"].unique())
    grid = get_csf("castle").sensitivity(f[:, None, None], lum[None, :, None], area[None, None, :])
    assert grid.shape == (len(f), len(lum), len(area))
    axes = ((f, "s_frequency"), (lum, "luminance"), (area, "area"))
    idx = tuple(np.searchsorted(axis, ref[col]) for axis, col in axes)
    np.testing.assert_allclose(grid[idx], ref["S_castle"], rtol=1e-6)


# --- Mannos–Sakrison -------------------------------------------------------------------------------------------


def test_mannos_sakrison_peak_is_the_analytic_maximum() -> None:
    # dA/dx = 0 for A = 2.6 (0.0192 + x) exp(-x^1.1), x = 0.114 f  <=>  1.1 x^0.1 (0.0192 + x) = 1
    x_star = brentq(lambda x: 1.1 * x**0.1 * (0.0192 + x) - 1.0, 0.1, 3.0, xtol=1e-14)
    f_star = x_star / 0.114
    csf = get_csf("mannos_sakrison")
    assert csf.peak_frequency() == pytest.approx(f_star, rel=1e-6)
    assert 3.0 <= f_star <= 8.0  # the published curve peaks at ~8 cpd
    assert float(csf.sensitivity(f_star)) == pytest.approx(0.981, abs=1e-3)  # relative scale: peak ~ 1


def test_mannos_sakrison_ignores_luminance_and_area() -> None:
    csf = get_csf("mannos_sakrison")
    s = csf.sensitivity(4.0, np.array([0.1, 100.0, 1e4]), np.array([[0.01], [100.0]]))
    assert s.shape == (2, 3)
    np.testing.assert_allclose(s, float(csf.sensitivity(4.0)), rtol=0)


# --- Barten ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("luminance", [30.0, 100.0, 1000.0])
@pytest.mark.parametrize("area", [0.785, 1.0, 10.0])
def test_barten_peaks_between_3_and_8_cpd_at_photopic_luminance(luminance: float, area: float) -> None:
    assert 3.0 <= get_csf("barten").peak_frequency(luminance, area) <= 8.0


def test_barten_peak_moves_to_lower_frequencies_for_larger_fields() -> None:
    """Published behaviour: the 1/X0² term penalises low frequencies in small fields, so the peak falls with size."""
    peaks = [get_csf("barten").peak_frequency(100.0, a) for a in (0.1, 1.0, 10.0, 100.0, 1000.0)]
    assert np.all(np.diff(peaks) < 0)


def test_barten_matches_bartens_own_closed_form_approximation() -> None:
    """Barten (2004, Proc. SPIE 5294) condensed the model into one formula for the standard observer; with the
    pupil set by a 40° field (the one the condensed form assumes) the full model agrees within 10 %."""
    u = np.geomspace(0.5, 30.0, 20)[:, None, None]
    lum = np.geomspace(0.1, 1000.0, 9)[None, :, None]
    x0 = np.array([1.0, 2.0, 5.0, 10.0, 30.0])[None, None, :]
    closed = (
        5200.0
        * np.exp(-0.0016 * u**2 * (1.0 + 100.0 / lum) ** 0.08)
        / np.sqrt((1.0 + 144.0 / x0**2 + 0.64 * u**2) * (63.0 / lum**0.83 + 1.0 / (1.0 - np.exp(-0.02 * u**2))))
    )
    full = BartenCSF(pupil_field_deg=40.0).sensitivity(u, lum, x0**2)
    np.testing.assert_allclose(full, closed, rtol=0.10)


def test_barten_rises_with_luminance() -> None:
    f = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0])[:, None, None]
    lum = np.geomspace(0.01, 1000.0, 11)[None, :, None]
    area = np.geomspace(0.1, 1000.0, 9)[None, None, :]
    s = get_csf("barten").sensitivity(f, lum, area)
    assert np.all(np.diff(s, axis=1) > 0)


@pytest.mark.parametrize("freq", [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0])
@pytest.mark.parametrize("luminance", [0.1, 10.0, 1000.0])
def test_barten_rises_with_area_until_the_integration_limits(freq: float, luminance: float) -> None:
    """Published behaviour: sensitivity grows with the field while it holds fewer than N_max = 15 cycles and is
    smaller than X_max = 12°; beyond, spatial integration saturates (and only the pupil still changes)."""
    x_limit = min(12.0, 15.0 / freq)
    x0 = np.geomspace(0.05, 0.5 * x_limit, 10)
    s = get_csf("barten").sensitivity(freq, luminance, x0**2)
    assert np.all(np.diff(s) > 0)
    small_gain = get_csf("barten").sensitivity(freq, luminance, np.array([0.25, 1.0]) * x_limit**2 / 16)
    large_gain = get_csf("barten").sensitivity(freq, luminance, np.array([1.0, 4.0]) * x_limit**2)
    assert small_gain[1] / small_gain[0] > large_gain[1] / large_gain[0]


def test_barten_goes_from_de_vries_rose_to_weber() -> None:
    """Published behaviour: S ~ sqrt(L) at low luminance (photon noise), independent of L at high luminance."""
    csf = get_csf("barten")
    s = csf.sensitivity(4.0, np.array([0.01, 0.1, 1e3, 1e4]), 100.0)
    low_slope = np.log10(s[1] / s[0])
    high_slope = np.log10(s[3] / s[2])
    assert 0.35 <= low_slope <= 0.55
    assert 0.0 <= high_slope <= 0.05


def test_barten_pupil_formula_fixed_points() -> None:
    # d = 5 - 3 tanh(0.4 log10(L X0^2 / 40^2)): 5 mm when L X0^2 = 40^2, tending to 2 and 8 mm
    assert float(pupil_diameter_mm(1.0, 40.0)) == pytest.approx(5.0, abs=1e-12)
    assert float(pupil_diameter_mm(1e30, 40.0)) == pytest.approx(2.0, abs=1e-6)
    assert float(pupil_diameter_mm(1e-30, 40.0)) == pytest.approx(8.0, abs=1e-6)
    assert float(pupil_diameter_mm(100.0, 4.0)) == pytest.approx(5.0, abs=1e-12)  # L X0² = 40²


# --- shared policy: output type, errors, clamps ----------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_output_is_positive_finite_float64_over_the_whole_domain(name: str) -> None:
    f = np.array([2.0**-4, 0.5, 8.0, 64.0])[:, None, None]
    lum = np.array([1e-3, 1.0, 1e4])[None, :, None]
    area = np.array([1e-4, 1.0, 1e4])[None, None, :]
    s = get_csf(name).sensitivity(f, lum, area)
    assert s.dtype == np.float64 and s.shape == (4, 3, 3)
    assert np.all(np.isfinite(s)) and np.all(s > 0)
    scalar = get_csf(name).sensitivity(4.0)
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar.dtype == np.float64


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("freq", [0.0, -1.0, np.nan, np.inf, 0.01, 100.0])
def test_bad_or_out_of_range_frequency_is_an_input_error(name: str, freq: float) -> None:
    with pytest.raises(InputError):
        get_csf(name).sensitivity(np.array([4.0, freq]))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "kwargs",
    [{"luminance": 0.0}, {"luminance": -5.0}, {"luminance": np.nan}, {"area_deg2": 0.0}, {"area_deg2": np.inf}],
)
def test_bad_luminance_or_area_is_an_input_error(name: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError):
        get_csf(name).sensitivity(4.0, **kwargs)


def test_non_numeric_and_non_broadcastable_inputs_are_input_errors() -> None:
    csf = get_csf("castle")
    with pytest.raises(InputError):
        csf.sensitivity("four")
    with pytest.raises(InputError):
        csf.sensitivity(np.ones(3) * 4.0, luminance=np.ones(2) * 100.0)


@pytest.mark.parametrize("name", ["barten", "castle"])
def test_luminance_outside_the_range_is_clamped(name: str) -> None:
    csf = get_csf(name)
    f = np.array([1.0, 4.0, 16.0])
    np.testing.assert_array_equal(csf.sensitivity(f, 1e6), csf.sensitivity(f, 1e4))
    np.testing.assert_array_equal(csf.sensitivity(f, 1e-6), csf.sensitivity(f, 1e-3))
    assert not np.array_equal(csf.sensitivity(f, 1e3), csf.sensitivity(f, 1e4))


def test_in_domain_marks_what_is_neither_clamped_nor_rejected() -> None:
    ok = get_csf("barten").in_domain([0.01, 1.0, 1.0, 1.0, 70.0], [100.0, 1e-4, 100.0, 2e4, 100.0])
    np.testing.assert_array_equal(ok, [False, False, True, False, False])
    np.testing.assert_array_equal(get_csf("mannos_sakrison").in_domain([1.0], [1e-6]), [True])


# --- castleCSF's chromatic part vs the MATLAB code (issue 22) -----------------------------------------------------

CHROM_REFERENCE_CSV = Path(__file__).parent / "data" / "castlecsf_chrom_reference.csv"


@pytest.fixture(scope="module")
def castle_chrom_reference() -> pd.DataFrame:
    ref = pd.read_csv(CHROM_REFERENCE_CSV)
    n = 13 * 5 * 4  # the grid of scripts/castlecsf_chrom_reference.m
    assert (ref["quantity"] == "rg").sum() == n and (ref["quantity"] == "yv").sum() == n
    assert (ref["quantity"] == "full").sum() == 6 * n
    return ref


@pytest.mark.parametrize("mechanism", ["rg", "yv"])
def test_castle_chromatic_mechanisms_match_matlab_reference(castle_chrom_reference: pd.DataFrame,
                                                            mechanism: str) -> None:
    from psychofeat.csf.castle import chromatic_mechanism_sensitivity

    ref = castle_chrom_reference[castle_chrom_reference["quantity"] == mechanism]
    s = chromatic_mechanism_sensitivity(mechanism, ref["s_frequency"].to_numpy(), ref["luminance"].to_numpy(),
                                        ref["area"].to_numpy())
    np.testing.assert_allclose(s, ref["S"], rtol=1e-6, atol=0)
    assert (ref["s_frequency"] < 0.02).any()  # the grid reaches below f_max, where the log-parabola is held at 1


def test_castle_full_model_along_colour_directions_matches_matlab_reference(
    castle_chrom_reference: pd.DataFrame,
) -> None:
    from psychofeat.csf.castle import D65_LMS_PER_CD_M2, castle_sensitivity_lms

    ref = castle_chrom_reference[castle_chrom_reference["quantity"] == "full"]
    bkg = D65_LMS_PER_CD_M2 * ref["luminance"].to_numpy()[:, None]
    delta = ref[["L_delta", "M_delta", "S_delta"]].to_numpy()
    s = castle_sensitivity_lms(ref["s_frequency"].to_numpy(), bkg, delta, ref["area"].to_numpy())
    np.testing.assert_allclose(s, ref["S"], rtol=1e-6, atol=0)


def test_castle_lms_form_reduces_to_the_d65_luminance_model() -> None:
    from psychofeat.csf.castle import D65_LMS_DELTA, D65_LMS_PER_CD_M2, castle_sensitivity_lms

    f = np.geomspace(0.5, 27.0, 9)
    lum = np.array([1.0, 100.0])[:, None]
    area = 13.9
    s = castle_sensitivity_lms(f, D65_LMS_PER_CD_M2 * lum[..., None], D65_LMS_DELTA, area)
    np.testing.assert_allclose(s, get_csf("castle").sensitivity(f, lum, area), rtol=1e-12)


def test_castle_mechanism_sensitivity_dispatches_and_refuses_unknown_mechanisms() -> None:
    from psychofeat.csf.castle import achromatic_mechanism_sensitivity, mechanism_sensitivity

    f, lum, area = np.array([1.0, 4.0]), np.array([100.0, 100.0]), np.array([13.9, 13.9])
    np.testing.assert_array_equal(mechanism_sensitivity("ach", f, lum, area),
                                  achromatic_mechanism_sensitivity(f, lum, area))
    with pytest.raises(ValueError, match="rg"):
        mechanism_sensitivity("blue", f, lum, area)
