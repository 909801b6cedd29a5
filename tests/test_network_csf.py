"""Network CSF: thresholds of a synthetic linear network with a known gain per frequency, the bisection, and the
shape measures, all against closed-form truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from psychofeat.backbones.base import IDENTITY, from_module
from psychofeat.errors import InputError
from psychofeat.hvs.network_csf import (
    STATUS_BELOW,
    STATUS_OK,
    STATUS_UNDETECTED,
    NetworkCSFConfig,
    bisect_log_contrast,
    compare_shapes,
    csf_shape,
    network_thresholds,
)
from psychofeat.hvs.network_csf_report import run_network_csf
from psychofeat.stimuli import ProbeProtocol

H1 = [0.05, -0.2, 0.1, 0.9, 0.1, -0.2, 0.05]  # horizontal FIR taps of layer g1 (band-pass-ish)
H2 = [-0.25, 0.5, 1.0, 0.5, -0.25]  # of layer g2, applied to g1's output
B1, B2 = 1.5, -0.4  # biases: the response to the uniform field


class LinearNet(nn.Module):
    """Two linear layers: horizontal FIR filters (valid convolution, no padding) on the grey channel.

    For a vertical-bar grating mean·(1 + c·sin(2π f x + φ)) the valid output of g1 is exactly
    b1 + mean·c·|H1(f)|·sin(...), so its gain at frequency f is |H1(f)| (|H1·H2| at g2)."""

    def __init__(self) -> None:
        super().__init__()
        self.g1 = nn.Conv2d(1, 1, (1, len(H1)), bias=True)
        self.g2 = nn.Conv2d(1, 1, (1, len(H2)), bias=True)
        with torch.no_grad():
            self.g1.weight.copy_(torch.tensor(H1[::-1]).view(1, 1, 1, -1))  # conv2d correlates: flip for convolution
            self.g1.bias.fill_(B1)
            self.g2.weight.copy_(torch.tensor(H2[::-1]).view(1, 1, 1, -1))
            self.g2.bias.fill_(B2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g2(self.g1(x[:, :1] - 0.5))


def _gain(taps: list[float], f_cycles_per_px: np.ndarray) -> np.ndarray:
    n = np.arange(len(taps))
    return np.abs(np.exp(-2j * np.pi * np.outer(f_cycles_per_px, n)) @ np.asarray(taps))


@pytest.fixture(scope="module")
def linear_backbone():
    return from_module(LinearNet().eval(), ["g1", "g2"], IDENTITY, name="linear")


def _config(criterion: float = 0.01, steps: int = 8) -> NetworkCSFConfig:
    protocol = ProbeProtocol(ppd=16.0, size=64, n_freq=6, n_phase=4, n_orient_freq=3, freq_stimulus="linear")
    return NetworkCSFConfig(protocol=protocol, criterion=criterion, n_steps=steps, orientations_deg=(0.0,),
                            contrast_range=(1e-5, 1.0))


def test_linear_network_thresholds_are_the_inverse_gain(linear_backbone) -> None:
    """D(c) = mean·c·|H(f)| / (sqrt 2 · |gray level|) for this network (4 equally spaced phases make the
    squared response phase-free), so threshold = δ·sqrt2·|gray| / (mean·|H(f)|): the gain's inverse."""
    cfg = _config()
    df = network_thresholds(linear_backbone, ["g2", "g1"], cfg, progress=False)
    assert list(df["layer"].unique()) == ["g1", "g2"]  # depth order
    f_px = cfg.protocol.frequencies / cfg.protocol.ppd
    g1, g2 = _gain(H1, f_px), _gain(H2, f_px)
    mean = cfg.protocol.mean
    truth = {
        "g1": cfg.criterion * math.sqrt(2) * abs(B1) / (mean * g1),
        "g2": cfg.criterion * math.sqrt(2) * abs(B1 * sum(H2) + B2) / (mean * g1 * g2),
    }
    for layer, expected in truth.items():
        got = df[df["layer"] == layer]
        assert (got["status"] == STATUS_OK).all()
        np.testing.assert_allclose(got["threshold"].to_numpy(), expected, rtol=2e-4)
        np.testing.assert_allclose(got["slope"].to_numpy(), 1.0, atol=1e-3)  # linear in contrast
        # sensitivity × 1/gain is one constant per layer: the network CSF *is* the gain, up to the criterion
        prod = got["sensitivity"].to_numpy() / (g1 if layer == "g1" else g1 * g2)
        assert np.ptp(np.log10(prod)) < 1e-3


def test_criterion_only_scales_thresholds(linear_backbone) -> None:
    a = network_thresholds(linear_backbone, ["g1"], _config(0.01, steps=3), progress=False)
    b = network_thresholds(linear_backbone, ["g1"], _config(0.04, steps=3), progress=False)
    np.testing.assert_allclose(b["threshold"].to_numpy() / a["threshold"].to_numpy(), 4.0, rtol=1e-3)


def test_shared_forward_passes_are_reused(linear_backbone) -> None:
    """Both layers start from the same bracket: their first steps share gratings, so fewer images are run
    than two separate searches would need."""
    cfg = _config(steps=4)
    both = network_thresholds(linear_backbone, ["g1", "g2"], cfg, progress=False)["n_images"].iloc[0]
    one = network_thresholds(linear_backbone, ["g1"], cfg, progress=False)["n_images"].iloc[0]
    assert both < 2 * one


def test_bisection_statuses_and_power_law_recovery() -> None:
    """D = (c / t)^p per search: thresholds t are recovered for any exponent; out-of-range ones are flagged."""
    t = np.array([1e-3, 0.2, 3e-2, 5.0, 1e-7])
    p = np.array([1.0, 2.0, 0.5, 1.0, 1.0])

    def evaluate(s: np.ndarray, logc: np.ndarray) -> np.ndarray:
        return (10.0**logc / t[s]) ** p[s]

    res = bisect_log_contrast(evaluate, np.ones(5), (-5.0, 0.0), n_steps=6)
    assert list(res.status) == [STATUS_OK, STATUS_OK, STATUS_OK, STATUS_UNDETECTED, STATUS_BELOW]
    np.testing.assert_allclose(10 ** res.log10_threshold[:3], t[:3], rtol=1e-9)
    np.testing.assert_allclose(res.slope[:3], p[:3], rtol=1e-9)
    assert np.isnan(res.log10_threshold[3]) and res.log10_threshold[4] == -5.0


def test_bisection_without_interpolation_shortcut_converges() -> None:
    """A step-shaped D (no power law) still converges to within the final bracket width."""
    thr = np.array([-2.3456, -0.71])

    def evaluate(s: np.ndarray, logc: np.ndarray) -> np.ndarray:
        return np.where(logc >= thr[s], 2.0, 0.5)

    res = bisect_log_contrast(evaluate, np.ones(2), (-5.0, 0.0), n_steps=12)
    assert np.all(np.abs(res.log10_threshold - thr) <= 5.0 / 2**12)


def test_csf_shape_of_a_log_parabola() -> None:
    """S = S0·10^(−k (log2 f − log2 fp)²): peak fp, half maximum at ± sqrt(log10 2 / k) octaves."""
    f = np.geomspace(0.25, 64, 41)
    fp, k = 3.0, 0.08
    s = 200 * 10 ** (-k * (np.log2(f) - np.log2(fp)) ** 2)
    shape = csf_shape(f, s)
    half = math.sqrt(math.log10(2) / k)
    assert shape.peak_cpd == pytest.approx(fp, rel=1e-6)
    assert shape.half_low_cpd == pytest.approx(fp * 2**-half, rel=2e-3)
    assert shape.half_high_cpd == pytest.approx(fp * 2**half, rel=2e-3)
    assert shape.bandwidth_oct == pytest.approx(2 * half, rel=2e-3)
    assert not shape.open_low and not shape.open_high


def test_csf_shape_open_and_undetected_sides() -> None:
    f = np.geomspace(0.5, 27, 12)
    lowpass = 100 / (1 + (f / 8.0) ** 4)  # flat at low frequencies: open on the low side
    shape = csf_shape(f, lowpass)
    assert shape.open_low and not shape.open_high and math.isnan(shape.half_low_cpd)
    assert shape.bandwidth_oct == pytest.approx(math.log2(shape.half_high_cpd / 0.5), rel=1e-9)
    s = lowpass.copy()
    s[-3:] = 0.0  # undetected at the top: counts as below half maximum
    assert not csf_shape(f, s).open_high


def test_compare_shapes_ignores_vertical_scale() -> None:
    f = np.geomspace(0.5, 27, 12)
    human = 300 * 10 ** (-0.1 * (np.log2(f) - np.log2(2.6)) ** 2)
    out = compare_shapes(f, human / 40.0, human)
    assert out["pearson_r"] == pytest.approx(1.0)
    assert out["rmse_shifted"] == pytest.approx(0.0, abs=1e-12)
    assert out["shift"] == pytest.approx(math.log10(40.0))
    assert out["peak_ratio_oct"] == pytest.approx(0.0, abs=1e-9)
    assert out["range_log10"] == pytest.approx(np.ptp(np.log10(human)))


def test_two_phases_are_refused() -> None:
    with pytest.raises(InputError, match="phases"):
        NetworkCSFConfig(protocol=ProbeProtocol(n_phase=2))


def test_run_writes_outputs(linear_backbone, tmp_path) -> None:
    cfg = _config(steps=3)
    table = run_network_csf(tmp_path / "out", linear_backbone, weights=(None,), config=cfg, progress=False)
    for name in ("network_csf.csv", "network_csf_curves.csv", "manifest.json", "report.html"):
        assert (tmp_path / "out" / name).is_file()
    assert list(table["weights"]) == ["human", "module", "module"]
    assert set(table["layer"]) == {"castle", "g1", "g2"}


def test_cli_refuses_two_phases(tmp_path) -> None:
    from psychofeat.cli import main

    assert main(["hvs", "network-csf", "--n-phase", "2", "--out", str(tmp_path / "n")]) == 2
    assert not (tmp_path / "n").exists()


def test_cli_refuses_too_small_stimuli_as_analyze_does(tmp_path, capsys) -> None:
    """64 px at 60 ppd hold less than one cycle of 0.5 cpd: refused with analyze's message before anything loads."""
    from psychofeat.cli import main

    assert main(["hvs", "network-csf", "--size", "64", "--out", str(tmp_path / "n")]) == 2
    err = capsys.readouterr().err
    assert "less than one cycle of the lowest frequency (0.5 cpd needs 120 px)" in err and "Traceback" not in err
    assert not (tmp_path / "n").exists()


def test_moved_names_keep_working() -> None:
    """The bisection lives in hvs.threshold_search and the command in hvs.network_csf_report; the old names remain."""
    import psychofeat.hvs.network_csf as old
    import psychofeat.hvs.network_csf_report as report
    import psychofeat.hvs.threshold_search as search

    assert old.bisect_log_contrast is search.bisect_log_contrast and old.ThresholdSearch is search.ThresholdSearch
    assert old.STATUS_OK is search.STATUS_OK
    for name in ("run_network_csf", "build_report"):
        with pytest.warns(DeprecationWarning, match=f"network_csf.{name} is deprecated.*network_csf_report"):
            assert getattr(old, name) is getattr(report, name)
    with pytest.raises(AttributeError):
        old.no_such_name  # noqa: B018
