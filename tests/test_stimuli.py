"""Stimuli: mean, contrast, FFT peak frequency, orientation convention and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psychofeat.errors import InputError
from psychofeat.stimuli import (
    ProbeProtocol,
    ViewingGeometry,
    frequency_sweep,
    gabor,
    linear_grating,
    orientation_sweep,
    radial_grating,
    uniform_field,
)

GEO = ViewingGeometry(ppd=32.0)


def fft_peak_cycles_per_pixel(img: np.ndarray) -> tuple[float, float]:
    """(fx, fy) of the strongest non-DC Fourier component, in cycles per pixel (fy positive = up)."""
    spec = np.abs(np.fft.fft2(img - img.mean()))
    iy, ix = np.unravel_index(np.argmax(spec), spec.shape)
    fy, fx = np.fft.fftfreq(img.shape[0])[iy], np.fft.fftfreq(img.shape[1])[ix]
    return float(fx), float(-fy)


@pytest.mark.parametrize("freq", [1.0, 4.0, 8.0])
def test_linear_grating_mean_contrast_and_frequency(freq: float) -> None:
    size = 128
    img = linear_grating(GEO, freq, 0.0, 0.3, contrast=0.4, size=size)
    assert img.shape == (1, 3, size, size) and img.dtype == torch.float32
    assert torch.equal(img[:, 0], img[:, 1]) and torch.equal(img[:, 0], img[:, 2])
    a = img[0, 0].double().numpy()
    # an integer number of cycles across the image makes mean and extremes exact
    assert a.mean() == pytest.approx(0.5, abs=0.5 * 0.4 * 1.0 / (freq / 32 * size * np.pi) + 1e-6)
    # Michelson contrast = amplitude / mean, amplitude by least squares at the known frequency (exact sampling-free)
    x = np.arange(size) - (size - 1) / 2
    basis = np.stack([np.sin(2 * np.pi * freq / 32 * x), np.cos(2 * np.pi * freq / 32 * x), np.ones(size)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, a[size // 2], rcond=None)
    assert np.hypot(coef[0], coef[1]) / coef[2] == pytest.approx(0.4, rel=1e-5)
    assert coef[2] == pytest.approx(0.5, rel=1e-6)
    fx, fy = fft_peak_cycles_per_pixel(a)
    assert abs(fx) == pytest.approx(freq / 32.0, abs=1.0 / size)
    assert fy == pytest.approx(0.0, abs=1.0 / size)


def test_orientation_convention_is_counterclockwise_with_y_up() -> None:
    # θ = 90°: luminance varies along y (horizontal bars); θ = 45°: varies along the x = y (up-right) diagonal
    img90 = linear_grating(GEO, 4.0, 90.0, size=64)[0, 0].numpy()
    assert np.allclose(img90, img90[:, :1])  # constant along each row
    img45 = linear_grating(GEO, 4.0, 45.0, size=64)[0, 0].numpy()
    # moving one pixel right and one pixel down keeps x·cos45 + y·sin45 constant (y points up)
    assert np.allclose(img45[:-1, :-1], img45[1:, 1:], atol=1e-6)


def test_radial_grating_is_orientation_free_and_has_the_frequency() -> None:
    size = 128
    img = radial_grating(GEO, 4.0, 0.0, 0.5, size)[0, 0].double().numpy()
    assert np.allclose(img, img.T, atol=1e-6)  # symmetric about the diagonal
    assert np.allclose(img, img[::-1, ::-1], atol=1e-6)  # point-symmetric about the centre
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(xx - c, yy - c)
    expected = 0.5 * (1 + 0.5 * np.sin(2 * np.pi * 4.0 / 32.0 * r))
    assert np.allclose(img, expected, atol=1e-6)


def test_phase_average_is_uniform_field() -> None:
    p = ProbeProtocol(ppd=32, size=64, n_freq=5, n_orient=4, n_phase=4, n_orient_freq=4)
    sweep = frequency_sweep(p)
    imgs = sweep.render(0, len(sweep)).view(p.n_freq, p.n_phase, 3, 64, 64).double()
    assert torch.allclose(imgs.mean(dim=1), torch.full_like(imgs[:, 0], 0.5), atol=1e-6)
    ori = orientation_sweep(p, [2.0])
    assert len(ori) == p.n_orient * p.n_phase


def test_gabor_envelope_width() -> None:
    sigma_deg = 0.5
    img = gabor(
        ViewingGeometry(64.0), 0.5, 0.0, np.pi / 2, contrast=1.0, sigma_deg=sigma_deg, size=257
    )[0, 0].double().numpy()
    # along the vertical midline (x = 0) the carrier cos(0) = 1: pure envelope
    prof = img[:, 128] - 0.5
    y = np.arange(257) - 128.0
    sd = np.sqrt(np.sum(prof * y**2) / np.sum(prof))
    assert sd == pytest.approx(sigma_deg * 64.0, rel=0.01)
    assert img.max() == pytest.approx(1.0, abs=1e-6)


def test_batching_broadcasts_parameters() -> None:
    imgs = linear_grating(GEO, [1.0, 2.0, 4.0], 0.0, [0.0, 1.0, 2.0], 0.5, 32)
    assert imgs.shape == (3, 3, 32, 32)
    with pytest.raises(InputError, match="incompatible"):
        linear_grating(GEO, [1.0, 2.0], 0.0, [0.0, 1.0, 2.0], 0.5, 32)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"freq_cpd": 16.0}, "Nyquist"),
        ({"freq_cpd": 20.0}, "Nyquist"),
        ({"freq_cpd": 2.0, "contrast": 1.5}, r"contrast must be in \[0, 1\]"),
        ({"freq_cpd": 2.0, "contrast": -0.1}, r"contrast must be in \[0, 1\]"),
        ({"freq_cpd": 2.0, "size": 0}, "positive integer"),
        ({"freq_cpd": 2.0, "size": -5}, "positive integer"),
        ({"freq_cpd": float("nan")}, "finite"),
    ],
)
def test_bad_stimulus_parameters_are_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        linear_grating(GEO, **kwargs)


def test_geometry_and_protocol_validation() -> None:
    with pytest.raises(InputError, match="ppd"):
        ViewingGeometry(ppd=0)
    with pytest.raises(InputError, match="f_max_fraction"):
        ProbeProtocol(f_max_fraction=0.5)
    p = ProbeProtocol()
    assert p.frequencies[0] == pytest.approx(0.5) and p.frequencies[-1] == pytest.approx(27.0)
    assert len(p.orientation_grid) == 12 and p.orientations[0] == -90.0
    assert uniform_field(8).unique().item() == 0.5
