"""The display model: sRGB transfer functions against the standard's defining values, luminance round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psychofeat.display import SRGB_TO_XYZ, DisplayModel, srgb_decode, srgb_encode
from psychofeat.errors import InputError


def test_srgb_defining_points() -> None:
    # IEC 61966-2-1: the linear segment 12.92·v below 0.0031308, 1.055·v^(1/2.4) − 0.055 above; white and black fixed
    v = np.array([0.0, 0.001, 0.0031308, 0.18, 0.5, 1.0])
    expected = np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)
    np.testing.assert_allclose(srgb_encode(v), expected, rtol=0, atol=1e-15)
    assert srgb_encode(np.array(1.0)) == pytest.approx(1.0, abs=1e-12)
    assert srgb_encode(np.array(0.5)) == pytest.approx(0.735356983, abs=1e-8)  # the familiar mid value


def test_srgb_round_trip_numpy_and_torch() -> None:
    x = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(srgb_encode(srgb_decode(x)), x, atol=1e-12)
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(srgb_decode(srgb_encode(t)), t, atol=1e-12)
    np.testing.assert_allclose(srgb_encode(t).numpy(), srgb_encode(t.numpy()), atol=1e-15)


def test_white_point_luminance_weights() -> None:
    # the Y row sums to 1: linear white has the display's full luminance
    assert SRGB_TO_XYZ[1].sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("encoding", ["srgb", "linear"])
def test_luminance_round_trip_to_1e_6(encoding: str) -> None:
    d = DisplayModel(peak_luminance=400.0, black_level=0.5, encoding=encoding)  # type: ignore[arg-type]
    lum = 32.0 * (1 + 0.3 * np.sin(np.linspace(0, 6.28, 257)))
    img = d.image_from_luminance(lum)
    assert img.min() >= 0 and img.max() <= 1
    np.testing.assert_allclose(d.luminance_from_image(img), lum, rtol=1e-6)
    rgb = np.stack([img, img, img])
    np.testing.assert_allclose(d.luminance_of_rgb(rgb, channel_axis=0), lum, rtol=1e-6)


def test_out_of_range_is_refused_not_clipped() -> None:
    d = DisplayModel(peak_luminance=100.0)
    with pytest.raises(InputError, match="outside what the display shows"):
        d.image_from_luminance(np.array([50.0, 150.0]))


@pytest.mark.parametrize("kw", [{"peak_luminance": 0.0}, {"black_level": -1.0}, {"peak_luminance": float("nan")},
                                {"encoding": "gamma"}, {"peak_luminance": True}])
def test_bad_display_refused(kw: dict) -> None:
    with pytest.raises(InputError):
        DisplayModel(**kw)
