"""Threshold stimuli: the rendered images have the data's contrast, frequency, envelope and aperture (measured
with numpy FFTs, independently of the renderer), and the row selection skips what the display cannot show."""

from __future__ import annotations

import math

import numpy as np
import pytest

from psychofeat.hvs.threshold_stimuli import Display, aperture_mask, threshold_stimuli


@pytest.fixture(scope="module")
def stimuli(data_root):
    return threshold_stimuli("all")


def _row(stimuli, **match):
    rows = stimuli.rows
    mask = np.ones(len(rows), dtype=bool)
    for k, v in match.items():
        mask &= np.isclose(rows[k].to_numpy(dtype=float), v) if isinstance(v, float) else (rows[k].to_numpy() == v)
    (idx,) = np.flatnonzero(mask)
    return int(idx), rows.iloc[idx]


def _analytic(delta: np.ndarray, axis: int) -> np.ndarray:
    """Analytic signal along `axis` (negative frequencies removed): its modulus is the local amplitude."""
    n = delta.shape[axis]
    spec = np.fft.fft(delta, axis=axis)
    h = np.zeros(n)
    h[0] = 1.0
    h[1 : (n + 1) // 2] = 2.0
    if n % 2 == 0:
        h[n // 2] = 1.0
    shape = [1, 1]
    shape[axis] = n
    return np.fft.ifft(spec * h.reshape(shape), axis=axis)


def test_modelfest_gabor_contrast_frequency_and_envelope(stimuli) -> None:
    """ModelFest #4: 4 cpd, σ = 0.5°, vertical bars, at its threshold contrast 1/127.8."""
    i, r = _row(stimuli, dataset="modelfest", stim_id=4)
    img = stimuli.render([i])[0].double().numpy()
    assert np.array_equal(img[0], img[1]) and np.array_equal(img[0], img[2])  # achromatic
    mean, ppd = float(r["mean"]), float(r["ppd"])
    delta = img[0] - mean
    # vertical bars: luminance varies along x (axis 1); the analytic envelope along x is mean·c·exp(−r²/2σ²)
    env = np.abs(_analytic(delta, axis=1))
    assert env.max() / mean == pytest.approx(r["threshold_contrast"], rel=3e-3)
    assert r["threshold_contrast"] == pytest.approx(1 / 127.786323, rel=1e-6)
    s = env.shape[0]
    x = np.arange(s) - (s - 1) / 2
    w = env**2  # exp(−r²/σ²): per-axis second moment σ²/2
    sigma_x = math.sqrt(2 * np.sum(w * x[None, :] ** 2) / w.sum()) / ppd
    sigma_y = math.sqrt(2 * np.sum(w * x[:, None] ** 2) / w.sum()) / ppd
    assert sigma_x == pytest.approx(0.5, rel=1e-2) and sigma_y == pytest.approx(0.5, rel=1e-2)
    # frequency: peak of the zero-padded spectrum of the central row
    n = 1 << 15
    spec = np.abs(np.fft.rfft(delta[s // 2], n))
    f_peak = np.argmax(spec) / n * ppd
    assert f_peak == pytest.approx(4.0, rel=5e-3)
    # orientation: the 2-D spectrum peaks on the kx axis
    k2 = np.abs(np.fft.fft2(delta))
    ky, kx = np.unravel_index(np.argmax(k2), k2.shape)
    assert ky == 0 and kx != 0


def test_rovamo_grating_square_aperture(stimuli) -> None:
    """A rovamo1993 grating (2 cpd, 3.75 deg²): contrast inside the aperture, frequency, and the square's side."""
    i, r = _row(stimuli, dataset="rovamo1993", s_frequency=2.0, area=3.747749)
    img = stimuli.render([i])[0, 0].double().numpy()
    mean, ppd = float(r["mean"]), float(r["ppd"])
    delta = img - mean
    # orientation 0 = horizontal bars: luminance varies along y (axis 0)
    amp = np.abs(_analytic(delta, axis=0))
    side_px = math.sqrt(r["area"]) * ppd
    c0 = (delta.shape[0] - 1) / 2
    inner = slice(int(c0 - side_px / 4), int(c0 + side_px / 4))
    assert np.median(amp[inner, inner]) / mean == pytest.approx(r["threshold_contrast"], rel=1e-2)
    col = delta[:, delta.shape[1] // 2]
    n = 1 << 15
    f_peak = np.argmax(np.abs(np.fft.rfft(col, n))) / n * ppd
    assert f_peak == pytest.approx(2.0, rel=3e-2)  # only ~4 cycles in the aperture: a broad peak
    # the aperture: the pattern is non-zero on exactly side_px columns (edge pixels partially covered)
    row_mask = np.abs(delta).max(axis=0) > 0
    assert row_mask.sum() == pytest.approx(side_px, abs=2.0)


def test_render_is_linear_in_contrast_and_unquantised(stimuli) -> None:
    i, _ = _row(stimuli, dataset="modelfest", stim_id=4)
    a = stimuli.render([i], 0.01)[0, 0].double().numpy()
    b = stimuli.render([i], 0.02)[0, 0].double().numpy()
    zero = stimuli.render([i], 0.0)[0, 0].numpy()
    mean = float(stimuli.rows.iloc[i]["mean"])
    assert np.all(zero == mean)
    np.testing.assert_allclose(b - mean, 2 * (a - mean), atol=1e-7)  # float32 rounding only
    assert len(np.unique(a)) > 256  # not quantised: 8 bits would give ≤ 4 levels at this contrast


def test_aperture_masks_have_the_requested_area() -> None:
    ppd, size = 60.0, 224
    sq = aperture_mask("square", 1.5, ppd, size)
    assert sq.sum() == pytest.approx(1.5 * ppd**2, rel=1e-12)  # exact pixel coverage
    disc = aperture_mask("disc", 2.0, ppd, size)
    assert disc.sum() == pytest.approx(2.0 * ppd**2, rel=2e-3)


def test_rows_used_and_skipped(stimuli) -> None:
    d = stimuli.describe().set_index("dataset")
    assert d.loc["modelfest", "used"] == 13 and d.loc["modelfest", "frequency"] == 1  # #10 is at 30 cpd
    sk = stimuli.skipped
    assert set(sk[sk["dataset"] == "modelfest"]["stim_id"]) == {10}
    assert (sk[sk["dataset"] == "wright1983"]["reason"] == "aperture").all()
    assert (sk[sk["dataset"] == "virsu1979"]["reason"] == "envelope").all()  # 5° discs in a 3.73° image
    hdr = sk[sk["dataset"] == "hdrvdp_csf"]
    assert (hdr[hdr["luminance"] < 10]["reason"] == "luminance").all()
    assert set(hdr[hdr["reason"] == "envelope"]["ge_sigma"]) == {1.5}
    used = stimuli.rows
    assert (used["s_frequency"] <= 0.45 * used["ppd"]).all() and (used["threshold_contrast"] <= 1).all()
    assert list(used["dataset"].unique())[0] == "modelfest"


def test_a_larger_display_shows_more_rows(data_root) -> None:
    big = threshold_stimuli("hdrvdp_csf", Display(ppd=60.0, size=576))
    assert (big.rows["ge_sigma"] == 1.5).any()


def test_display_validation() -> None:
    from psychofeat.errors import InputError

    with pytest.raises(InputError):
        Display(size=16)
    with pytest.raises(InputError):
        Display(max_freq_fraction=0.6)
