"""PSNR / SSIM / Y: against scikit-image (an independent implementation) and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from psychofeat.classic import PSNR, SSIM, psnr, rgb_to_y, shave_border, sr_psnr_ssim, ssim, ssim_map
from psychofeat.errors import InputError

#: numerically sensitive: CI reruns these under other CPUs' kernels (docs/developing.md, "Every CPU")
pytestmark = pytest.mark.numerics


def _sk_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range)
    if a.ndim == 3:
        return structural_similarity(a, b, channel_axis=-1, **kw)
    return structural_similarity(a, b, **kw)


def _pair(seed: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


# --- Y channel ------------------------------------------------------------------------------------------------


def test_rgb_to_y_matches_skimage_and_bt601_anchors() -> None:
    rgb = torch.rand(2, 3, 9, 7, dtype=torch.float64)
    ours = rgb_to_y(rgb)[:, 0].numpy() * 255.0
    theirs = np.stack([rgb2ycbcr(im.permute(1, 2, 0).numpy())[..., 0] for im in rgb])
    np.testing.assert_allclose(ours, theirs, atol=1e-10)
    anchors = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.float64).view(3, 3, 1, 1)
    y = rgb_to_y(anchors).flatten() * 255.0
    np.testing.assert_allclose(y.numpy(), [16.0, 235.0, 16.0 + 65.481], atol=1e-10)


# --- PSNR -----------------------------------------------------------------------------------------------------


def test_psnr_matches_skimage_per_image() -> None:
    x, y = _pair(0, (3, 1, 40, 33))
    ours = psnr(x, y)
    assert ours.shape == (3,)
    for i in range(3):
        ref = peak_signal_noise_ratio(y[i, 0].numpy(), x[i, 0].numpy(), data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=1e-9)


def test_psnr_hand_computed() -> None:
    x = torch.full((1, 3, 8, 8), 0.5)
    y = x + 0.1  # MSE = 0.01 -> 20 dB
    assert psnr(x, y).item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(x * 255, y * 255, data_range=255.0).item() == pytest.approx(20.0, abs=1e-4)
    assert math.isinf(psnr(x, x).item())


def test_reductions_and_module_twins() -> None:
    x, y = _pair(1, (4, 3, 16, 16))
    per = psnr(x, y)
    assert psnr(x, y, reduction="mean").item() == pytest.approx(per.mean().item())
    assert psnr(x, y, reduction="sum").item() == pytest.approx(per.sum().item())
    assert PSNR()(x, y).item() == pytest.approx(per.mean().item())
    assert SSIM(reduction="none")(x, y).tolist() == pytest.approx(ssim(x, y).tolist())
    with pytest.raises(InputError, match="reduction"):
        psnr(x, y, reduction="max")  # type: ignore[arg-type]


# --- SSIM -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 11, 11), (2, 1, 37, 50), (2, 3, 24, 31)])
def test_ssim_matches_skimage(shape: tuple[int, ...]) -> None:
    x, y = _pair(2, shape)
    ours = ssim(x, y)
    for i in range(shape[0]):
        a, b = x[i].permute(1, 2, 0).numpy(), y[i].permute(1, 2, 0).numpy()
        if shape[1] == 1:
            a, b = a[..., 0], b[..., 0]
        assert ours[i].item() == pytest.approx(_sk_ssim(a, b), abs=1e-9)


def test_ssim_data_range_255_matches_skimage() -> None:
    x, y = _pair(3, (1, 1, 30, 30))
    ours = ssim(x * 255, y * 255, data_range=255.0).item()
    assert ours == pytest.approx(_sk_ssim(x[0, 0].numpy() * 255, y[0, 0].numpy() * 255, 255.0), abs=1e-9)
    assert ours == pytest.approx(ssim(x, y).item(), abs=1e-12)


def test_ssim_hand_computed_constant_images() -> None:
    # constant images: variances and covariance vanish, so SSIM = (2ab + C1) / (a² + b² + C1) exactly
    a, b = 0.3, 0.6
    c1 = (0.01 * 1.0) ** 2
    x = torch.full((1, 1, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 1, 16, 16), b, dtype=torch.float64)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(x, y).item() == pytest.approx(expected, abs=1e-12)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-12)
    assert ssim_map(x, y).shape == (1, 1, 6, 6)  # valid region: 16 − 11 + 1


def test_ssim_half_precision_is_promoted_and_differentiable() -> None:
    x, y = _pair(4, (2, 3, 20, 20))
    ref = ssim(x.float(), y.float())
    got = ssim(x.to(torch.bfloat16), y.to(torch.bfloat16))
    assert got.dtype == torch.float32
    assert torch.allclose(got, ref, atol=2e-2)
    xr = x.float().requires_grad_(True)
    (1 - ssim(xr, y.float()).mean() + psnr(xr, y.float()).mean()).backward()
    assert xr.grad is not None and torch.isfinite(xr.grad).all()


def test_ssim_ignores_autocast() -> None:
    x, y = _pair(6, (1, 3, 24, 24))
    x, y = x.float(), y.float()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        got = ssim(x, y)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ssim(x, y).item(), abs=1e-6)


def test_input_errors() -> None:
    x = torch.rand(1, 1, 10, 10)
    with pytest.raises(InputError, match="at least 11"):
        ssim(x, x)
    with pytest.raises(InputError, match="same shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(InputError, match="N×C×H×W"):
        psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 8))
    with pytest.raises(InputError, match="dtype"):
        psnr(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), torch.zeros(1, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(InputError, match="too small"):
        shave_border(torch.rand(1, 1, 8, 8), 4)


# --- the SR protocol ------------------------------------------------------------------------------------------


def test_sr_psnr_ssim_matches_skimage_on_shaved_y() -> None:
    g = torch.Generator().manual_seed(5)
    hr = torch.randint(0, 256, (2, 3, 48, 40), generator=g).double() / 255
    sr = (hr + 0.05 * torch.randn(hr.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    got = sr_psnr_ssim(sr, hr, shave=4)
    for i in range(2):
        sr8 = np.round(sr[i].permute(1, 2, 0).numpy() * 255) / 255  # 8-bit, as saved
        y_sr = rgb2ycbcr(sr8)[4:-4, 4:-4, 0] / 255
        y_hr = rgb2ycbcr(hr[i].permute(1, 2, 0).numpy())[4:-4, 4:-4, 0] / 255
        assert got["psnr"][i].item() == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=1.0), abs=1e-6)
        assert got["ssim"][i].item() == pytest.approx(_sk_ssim(y_sr, y_hr), abs=1e-6)


def test_sr_psnr_ssim_on_a_benchmark_pair(data_root) -> None:  # noqa: ANN001 (fixture)
    from psychofeat.images import load_image_uint8, uint8_to_tensor
    from psychofeat.sr.resize import bicubic_upscale

    bench = data_root / "sr_benchmark" / "Set5"
    hr8 = load_image_uint8(bench / "HR" / "img_001.png")
    up8 = bicubic_upscale(load_image_uint8(bench / "LR_x4" / "img_001.png"))
    got = sr_psnr_ssim(uint8_to_tensor(up8), uint8_to_tensor(hr8))
    y_sr = rgb2ycbcr(up8)[4:-4, 4:-4, 0] / 255
    y_hr = rgb2ycbcr(hr8)[4:-4, 4:-4, 0] / 255
    assert got["psnr"].item() == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=1.0), abs=1e-6)
    assert got["ssim"].item() == pytest.approx(_sk_ssim(y_sr, y_hr), abs=1e-6)
    assert got["psnr"].item() == pytest.approx(31.78, abs=0.01)  # "baby", bicubic x4, as published


# --- one validator with the metric and the loss (issue 20) ------------------------------------------------------
def test_classic_metrics_share_the_metric_validator() -> None:
    """PSNR/SSIM check their inputs with `psychofeat.images.check_pair` (any channel count, any value range):
    non-finite values, empty batches and mixed devices are refused like the metric's; 0-255 data still works."""
    x, y = _pair(7, (2, 1, 16, 16))
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        psnr(bad, y)
    with pytest.raises(InputError, match="NaN"):
        ssim(x, bad)
    with pytest.raises(InputError, match="empty"):
        psnr(x[:0], y[:0])
    with pytest.raises(InputError, match="meta"):
        psnr(x.to("meta"), y)
    with pytest.raises(InputError, match="data_range"):
        psnr(x, y, data_range=0.0)
    assert psnr(x * 255, y * 255, data_range=255.0).tolist() == pytest.approx(psnr(x, y).tolist())
    with pytest.raises(InputError, match="reduction must be one of none, mean, sum"):
        ssim(x, y, reduction="max")  # type: ignore[arg-type]
