"""Chromatic gratings (issue 22): isoluminance in the display model, equal RMS cone contrast, castleCSF's
mechanisms silenced as defined, the geometry of psychofeat.stimuli, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psychofeat.colour import (
    DIRECTIONS,
    SRGB_TO_LMS,
    XYZ_TO_LMS2006,
    ColourProtocol,
    colour_frequency_sweep,
    colour_grating,
    direction_vectors,
    rms_cone_contrast,
)
from psychofeat.csf.castle import LMS_TO_ACC
from psychofeat.display import LUMINANCE_WEIGHTS, SRGB_TO_XYZ, srgb_decode
from psychofeat.errors import InputError
from psychofeat.stimuli import ProbeProtocol, radial_grating, uniform_field

SMALL = ProbeProtocol(size=64, ppd=16.0, n_freq=6, n_phase=4, n_orient_freq=3)
FREQS = [0.5, 1.3, 3.0, 7.1]
PHASES = [0.0, 0.7, np.pi / 2, 2.0]


def test_srgb_to_lms_is_castlecsfs_xyz_matrix_after_the_display_primaries() -> None:
    np.testing.assert_allclose(SRGB_TO_LMS, XYZ_TO_LMS2006 @ SRGB_TO_XYZ, rtol=0, atol=0)
    # castleCSF's lms2006_2xyz.m is the inverse of its xyz2lms2006.m (to the digits it prints)
    lms2xyz = np.array([[2.629129278399650, -3.780202391780134, 10.294956387893450],
                        [0.865649062438827, 1.215555811642301, -0.984175688105352],
                        [-0.008886561474676, 0.081612628990755, 51.371024830897888]])
    np.testing.assert_allclose(lms2xyz @ XYZ_TO_LMS2006, np.eye(3), atol=1e-9)


@pytest.mark.parametrize("direction", ["rg", "yv"])
@pytest.mark.parametrize("orientation", [None, 30.0])
def test_chromatic_gratings_are_isoluminant_in_the_display_model(direction: str, orientation: float | None) -> None:
    cp = ColourProtocol(protocol=SMALL)
    orient = None if orientation is None else [orientation] * len(FREQS)
    for dtype, tol in ((torch.float32, 1e-6), (torch.float64, 1e-12)):
        img = colour_grating(cp, direction, FREQS, PHASES, orient, dtype=dtype)
        assert img.dtype == dtype and img.shape == (len(FREQS), 3, 64, 64)
        lum = cp.display.luminance_of_rgb(img.to(torch.float64))
        # independent of the module: Y of the decoded image with the Y row of SRGB_TO_XYZ, times the display range
        lin = srgb_decode(img.to(torch.float64).numpy())
        lum_ref = cp.display.range * np.einsum("c,nchw->nhw", SRGB_TO_XYZ[1], lin)
        np.testing.assert_allclose(lum.numpy(), lum_ref, rtol=1e-12)
        assert np.max(np.abs(lum_ref / cp.luminance - 1.0)) < tol
        assert float((img.amax(dim=1) - img.amin(dim=1)).max()) > 0.03  # and it is not grey


def test_background_is_the_analysis_uniform_field_at_the_protocol_luminance() -> None:
    cp = ColourProtocol(protocol=SMALL)
    stim = colour_frequency_sweep(cp)
    assert torch.equal(stim.render(0, 1), uniform_field(64, 0.5))
    assert cp.display.luminance_from_image(np.float64(0.5)) == pytest.approx(100.0, rel=1e-12)


def test_every_direction_has_the_same_rms_cone_contrast_at_its_peak() -> None:
    cp = ColourProtocol(protocol=SMALL, cone_contrast=0.06)
    b = np.full(3, cp.background_linear)
    for d in DIRECTIONS:
        img = colour_grating(cp, d, [2.0], [0.0], dtype=torch.float64)
        lin = srgb_decode(img.numpy())[0].reshape(3, -1).T  # pixels × RGB
        cc = rms_cone_contrast(lin - b, b)
        assert cc.max() == pytest.approx(0.06, rel=2e-3)  # the peak of a sampled sinusoid, within a pixel
        np.testing.assert_allclose(rms_cone_contrast(cp.vectors[d], b), 1.0, rtol=1e-12)


def test_achromatic_direction_is_a_luminance_grating_of_michelson_contrast_c() -> None:
    cp = ColourProtocol(protocol=SMALL, cone_contrast=0.08)
    img = colour_grating(cp, "ach", [2.0], [0.0], dtype=torch.float64)
    assert torch.equal(img[:, 0], img[:, 1]) and torch.equal(img[:, 1], img[:, 2])
    lum = cp.display.luminance_of_rgb(img)
    mich = (lum.max() - lum.min()) / (lum.max() + lum.min())
    assert float(mich) == pytest.approx(0.08, rel=2e-3)
    # its carrier is the analysis' own radial grating, in linear light
    grey = radial_grating(SMALL.geometry, [2.0], [0.0], 1.0, 64, 0.5).to(torch.float64)[:, 0]
    expected = cp.background_linear * (1 + 0.08 * (2 * grey - 1))
    np.testing.assert_allclose(srgb_decode(img[:, 0].numpy()), expected.numpy(), rtol=1e-9)


def test_directions_silence_the_mechanisms_they_are_defined_to_silence() -> None:
    v = direction_vectors(0.2)
    mech = LMS_TO_ACC @ SRGB_TO_LMS  # castleCSF's A, RG, YV of linear RGB
    assert abs(LUMINANCE_WEIGHTS @ v["rg"]) < 1e-14 and abs(LUMINANCE_WEIGHTS @ v["yv"]) < 1e-14
    assert abs(mech[2] @ v["rg"]) < 1e-14  # rg: castleCSF's yellow-violet mechanism silent
    assert abs(mech[1] @ v["yv"]) < 1e-14  # yv: castleCSF's red-green mechanism silent
    bkg = SRGB_TO_LMS @ np.full(3, 0.2)
    cone = {d: SRGB_TO_LMS @ v[d] / bkg for d in DIRECTIONS}  # cone contrasts
    assert cone["rg"][0] > 0 > cone["rg"][1]  # + = more L, less M
    assert cone["yv"][2] > 10 * max(abs(cone["yv"][0]), abs(cone["yv"][1]))  # mostly S, + = more S
    np.testing.assert_allclose(v["ach"], np.full(3, v["ach"][0]))


def test_sweep_order_and_size() -> None:
    cp = ColourProtocol(protocol=SMALL)
    stim = colour_frequency_sweep(cp)
    n = SMALL.n_freq * SMALL.n_phase
    assert len(stim) == 1 + 3 * n
    assert list(stim.direction[1 : 1 + n : SMALL.n_phase]) == ["ach"] * SMALL.n_freq
    np.testing.assert_array_equal(stim.freq[1 : 1 + n : SMALL.n_phase], SMALL.frequencies)
    np.testing.assert_array_equal(stim.phase[1 : 1 + SMALL.n_phase], SMALL.phases)
    assert list(dict.fromkeys(stim.direction[1:])) == ["ach", "rg", "yv"]
    j = 1 + n + 5  # an rg stimulus, rendered in a batch that starts elsewhere
    one = colour_grating(cp, "rg", [stim.freq[j]], [stim.phase[j]])
    assert torch.equal(stim.render(j - 2, j + 1)[2], one[0])


def test_default_protocol_fits_the_display_and_records_itself() -> None:
    cp = ColourProtocol()
    assert cp.cone_contrast == 0.08 and cp.protocol == ProbeProtocol()
    d = cp.to_dict()
    assert d["display"]["peak_luminance"] == pytest.approx(100.0 / float(srgb_decode(np.float64(0.5))))
    assert set(d["direction_rgb"]) == set(DIRECTIONS)


def test_out_of_gamut_contrast_and_bad_settings_are_refused() -> None:
    with pytest.raises(InputError, match="along rg leaves the display.s gamut"):
        ColourProtocol(protocol=SMALL, cone_contrast=0.09)
    with pytest.raises(InputError, match="direction"):
        ColourProtocol(protocol=SMALL, directions=("ach", "blue"))
    with pytest.raises(InputError, match="background"):
        ColourProtocol(protocol=SMALL, background=1.0)
    with pytest.raises(InputError, match="direction"):
        colour_grating(ColourProtocol(protocol=SMALL), "lum", [1.0])
    with pytest.raises(InputError, match="Nyquist"):
        colour_grating(ColourProtocol(protocol=SMALL), "rg", [8.0])
