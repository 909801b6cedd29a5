"""MATLAB-style bicubic: the benchmark's own LR files are the truth; kernel and weights checked by hand."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from psychofeat.errors import InputError
from psychofeat.sr.resize import bicubic_upscale, contributions, cubic, imresize, matlab_downscale, modcrop

#: numerically sensitive: CI reruns these under other CPUs' kernels (docs/developing.md, "Every CPU")
pytestmark = pytest.mark.numerics


def _benchmark_files(root):  # noqa: ANN001, ANN202
    with open(root / "sr_benchmark" / "MANIFEST.csv", newline="", encoding="utf-8") as fh:
        return [(r["set"], r["hr_file"], r["lr_file"], r["png_mode"]) for r in csv.DictReader(fh)]


def test_reproduces_every_benchmark_lr_file_exactly(data_root) -> None:  # noqa: ANN001
    rows = _benchmark_files(data_root)
    assert {r[0] for r in rows} == {"Set5", "Set14", "BSD100"} and len(rows) == 119
    modes = set()
    for _set, hr_file, lr_file, mode in rows:
        with Image.open(data_root / "sr_benchmark" / hr_file) as im:
            hr = np.asarray(im)  # as stored: greyscale `bridge` stays 2-D here, exercising that path
        with Image.open(data_root / "sr_benchmark" / lr_file) as im:
            lr = np.asarray(im)
        modes.add(mode)
        out = matlab_downscale(hr, 4)
        assert out.dtype == np.uint8 and out.shape == lr.shape, hr_file
        n_diff = int((out != lr).sum())
        assert n_diff == 0, f"{hr_file}: {n_diff} pixels differ from {lr_file}"
    assert modes == {"RGB", "L"}


def test_recipe_details_matter(data_root) -> None:  # noqa: ANN001
    """The reproduction is not luck: the usual variants of the recipe all miss the file."""
    with Image.open(data_root / "sr_benchmark" / "Set5" / "HR" / "img_002.png") as im:
        hr = np.asarray(im)
    with Image.open(data_root / "sr_benchmark" / "Set5" / "LR_x4" / "img_002.png") as im:
        lr = np.asarray(im)
    assert (imresize(hr, 0.25, border="symmetric") != lr).any()
    no_intermediate_rounding = np.clip(np.floor(imresize(hr.astype(np.float64), 0.25) + 0.5), 0, 255)
    assert (no_intermediate_rounding.astype(np.uint8) != lr).any()
    width_first = imresize(imresize(hr.transpose(1, 0, 2), 0.25).transpose(1, 0, 2), 1.0)
    assert (width_first != lr).any()


def test_cubic_kernel_values() -> None:
    # Keys (1981), a = −0.5: k(0) = 1, k(±1) = k(±2) = 0, k(0.5) = 0.5625, k(1.5) = −0.0625
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5, -1.5])
    np.testing.assert_allclose(cubic(x), [1, 0.5625, 0, -0.0625, 0, 0, 0.5625, -0.0625], atol=1e-15)


def test_contributions_by_hand() -> None:
    # x4 upscaling, output pixel 1: u = 1/4 + 3/8 = 0.625, taps at input 0, 1, 2, 3 (1-based; 0 and -1 clamp to 1)
    ind, w = contributions(10, 40, 4.0, antialias=True, border="replicate")
    assert ind.shape == (40, 6)
    d = 0.625 - np.arange(-2, 4)
    expected = cubic(d) / cubic(d).sum()
    np.testing.assert_allclose(w[0], expected, atol=1e-15)
    np.testing.assert_array_equal(ind[0], [0, 0, 0, 0, 1, 2])
    ind_s, _ = contributions(10, 40, 4.0, border="symmetric")
    np.testing.assert_array_equal(ind_s[0], [2, 1, 0, 0, 1, 2])  # mirror: 0 -> 1st, -1 -> 2nd, -2 -> 3rd
    # x1/4 downscaling with antialiasing: 16-px support, weights sum to 1
    ind, w = contributions(40, 10, 0.25)
    assert ind.shape == (10, 18)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)


def test_upscaling_is_exact_on_linear_ramps_and_constants() -> None:
    # the a = −0.5 cubic reproduces polynomials up to degree 2 away from the border
    ramp = np.tile(np.arange(12, dtype=np.float64) * 3.0 + 7.0, (12, 1))
    up = imresize(ramp, 4.0)
    u = np.arange(1, 49) / 4 + 0.375 - 1  # 0-based sample positions
    np.testing.assert_allclose(up[10:-10, 10:-10], np.tile(u * 3.0 + 7.0, (48, 1))[10:-10, 10:-10], atol=1e-9)
    const = np.full((5, 6, 3), 77, np.uint8)
    assert (imresize(const, 4.0) == 77).all() and (imresize(const, 0.25) == 77).all()


def test_tensor_path_matches_numpy_float_path_and_is_batched() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 13, 17, generator=g, dtype=torch.float64)
    out = bicubic_upscale(x, 4)
    assert out.shape == (2, 3, 52, 68) and out.dtype == torch.float64
    ref = imresize(x[1].permute(1, 2, 0).numpy(), 4.0)
    np.testing.assert_allclose(out[1].permute(1, 2, 0).numpy(), ref, atol=1e-12)
    assert imresize(x.float(), 0.5).dtype == torch.float32


def test_uint8_path_rounds_every_pass() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    got = imresize(img, 4.0)
    assert got.shape == (36, 44) and got.dtype == np.uint8
    assert (imresize(img, 1.0) == img).all()  # scale 1 is the identity
    # by hand: height pass (gather + weighted sum), round to uint8; then the width pass on that, round again
    manual = img.astype(np.float64)
    ind, w = contributions(9, 36, 4.0)
    manual = np.clip(np.floor((manual[ind] * w[:, :, None]).sum(1) + 0.5), 0, 255)
    ind, w = contributions(11, 44, 4.0)
    manual = np.clip(np.floor((manual[:, ind] * w[None]).sum(2) + 0.5), 0, 255)
    np.testing.assert_array_equal(got, manual.astype(np.uint8))


def test_modcrop_and_input_errors() -> None:
    img = np.zeros((10, 13, 3), np.uint8)
    assert modcrop(img, 4).shape == (8, 12, 3)
    with pytest.raises(InputError, match="uint8"):
        matlab_downscale(img.astype(np.float32))
    with pytest.raises(InputError, match="positive"):
        imresize(img, 0.0)
    with pytest.raises(InputError, match="border"):
        imresize(img, 2.0, border="wrap")  # type: ignore[arg-type]
