"""Stateless patch sampling, augmentation alignment, the training pool and the benchmark loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psychofeat.errors import InputError, UnknownNameError
from psychofeat.sr.data import N_AUGMENTATIONS, TrainPairs, augment, load_benchmark, training_files


def _block_sum_pairs(n: int = 3, seed: int = 0) -> TrainPairs:
    """Synthetic pairs whose LR is the exact 4×4 block sum of HR: a degradation that commutes with every flip and
    rotation, so any misalignment between the HR and LR patch (crop offset or augmentation) shows up exactly."""
    rng = np.random.default_rng(seed)
    hrs, lrs = [], []
    for i in range(n):
        h, w = 4 * (10 + 3 * i), 4 * (12 + i)
        hr = rng.integers(0, 16, (h, w, 3), dtype=np.uint8)
        lr = hr.reshape(h // 4, 4, w // 4, 4, 3).sum((1, 3), dtype=np.int64).astype(np.uint8)
        hrs.append(hr)
        lrs.append(lr)
    return TrainPairs(hrs, lrs, [f"synthetic{i}" for i in range(n)])


def _block_sum(hr: np.ndarray) -> np.ndarray:
    h, w = hr.shape[:2]
    return hr.reshape(h // 4, 4, w // 4, 4, 3).sum((1, 3), dtype=np.int64)


def _window_index(pairs: TrainPairs, p: int) -> dict[bytes, list[tuple[int, int, int]]]:
    """Every p×p×3 HR window of every image (any offset), keyed by its bytes."""
    index: dict[bytes, list[tuple[int, int, int]]] = {}
    for i, hr in enumerate(pairs.hr):
        for top in range(hr.shape[0] - p + 1):
            for left in range(hr.shape[1] - p + 1):
                index.setdefault(hr[top : top + p, left : left + p].tobytes(), []).append((i, top, left))
    return index


def _locate(index: dict[bytes, list[tuple[int, int, int]]], hr_patch: np.ndarray) -> tuple[int, int, int, int]:
    """(image, top, left, inverse transform) of a sampled HR patch, by exhaustive search."""
    hits = [(*where, k) for k in range(N_AUGMENTATIONS)
            for where in index.get(np.ascontiguousarray(augment(hr_patch, k)).tobytes(), [])]
    assert len(hits) == 1, hits  # random 16×16×3 patches are unique
    return hits[0]


def test_patches_are_aligned_crops_covering_images_positions_and_augmentations() -> None:
    pairs = _block_sum_pairs()
    index = _window_index(pairs, 16)
    found = []
    for step in range(60):
        hr, lr = pairs.sample(seed=1, step=step, index=0, hr_patch=16)
        assert hr.shape == (16, 16, 3) and lr.shape == (4, 4, 3)
        np.testing.assert_array_equal(_block_sum(np.ascontiguousarray(hr)), lr)  # LR is the HR patch's own LR
        found.append(_locate(index, hr))
    assert {f[0] for f in found} == {0, 1, 2}
    assert {f[3] for f in found} == set(range(N_AUGMENTATIONS))
    assert all(f[1] % 4 == 0 and f[2] % 4 == 0 for f in found)  # HR crops sit on the LR grid
    assert len({f[:3] for f in found}) > 50  # crop positions vary


def test_augment_is_the_dihedral_group() -> None:
    img = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    outs = {augment(img, k).tobytes() + bytes(augment(img, k).shape) for k in range(N_AUGMENTATIONS)}
    assert len(outs) == 8  # eight distinct transforms of an asymmetric image


def test_sampling_is_a_pure_function_of_seed_step_index() -> None:
    pairs = _block_sum_pairs()
    a = pairs.sample(7, 123, 5, 16)
    b = pairs.sample(7, 123, 5, 16)
    np.testing.assert_array_equal(a[0], b[0])
    # the same patch whatever else was drawn before or how big the batch is
    lr16, hr16 = pairs.batch(7, 123, 16, 16)
    lr8, hr8 = pairs.batch(7, 123, 8, 16)
    assert torch.equal(lr16[:8], lr8) and torch.equal(hr16[:8], hr8)
    # different steps and seeds give different batches
    assert not torch.equal(pairs.batch(7, 124, 8, 16)[1], hr8)
    assert not torch.equal(pairs.batch(8, 123, 8, 16)[1], hr8)


def test_ranks_partition_the_global_batch() -> None:
    pairs = _block_sum_pairs()
    lr, hr = pairs.batch(3, 9, 6, 16)
    parts = [pairs.batch(3, 9, 6, 16, rank=r, world_size=3) for r in range(3)]
    for r, (lr_r, hr_r) in enumerate(parts):
        assert torch.equal(lr_r, lr[r::3]) and torch.equal(hr_r, hr[r::3])
    assert lr.dtype == torch.float32 and float(hr.max()) <= 15 / 255 + 1e-7
    with pytest.raises(InputError, match="divisible"):
        pairs.batch(3, 9, 5, 16, rank=0, world_size=2)


def test_patch_size_errors() -> None:
    pairs = _block_sum_pairs(n=1)
    with pytest.raises(InputError, match="multiple of the scale"):
        pairs.sample(0, 0, 0, 18)
    with pytest.raises(InputError, match="smaller than the LR patch"):
        pairs.sample(0, 0, 0, 64)


def test_training_pool_excludes_jpeg_by_default(data_root) -> None:  # noqa: ANN001
    default = training_files()
    assert len(default) == 54 and all(f.suffix == ".png" for f in default)
    assert not any(f.name.startswith("sunhays80_") for f in default)
    assert len(training_files(include_jpeg=True)) == 134
    subset = [f.name for f in training_files(pattern="kodak24_kodim0[12]*")]
    assert subset == ["kodak24_kodim01.png", "kodak24_kodim02.png"]


def test_training_pairs_use_the_benchmark_degradation(data_root) -> None:  # noqa: ANN001
    from psychofeat.images import load_image_uint8
    from psychofeat.sr.resize import matlab_downscale

    pairs = TrainPairs.from_data_root(pattern="mcmaster_01.png")
    hr = load_image_uint8(data_root / "sr_train" / "images" / "mcmaster_01.png")  # 500×500 -> modcrop 500×500
    assert pairs.hr[0].shape == (500, 500, 3) and pairs.lr[0].shape == (125, 125, 3)
    np.testing.assert_array_equal(pairs.lr[0], matlab_downscale(hr))
    assert TrainPairs.from_data_root(pattern="mcmaster_01.png").lr[0] is pairs.lr[0]  # cached in memory


def test_benchmark_loader(data_root) -> None:  # noqa: ANN001
    set14 = load_benchmark("Set14")
    assert len(set14) == 14
    bridge = next(p for p in set14 if p.canonical_name == "bridge")
    assert bridge.hr.shape[2] == 3 and (bridge.hr[..., 0] == bridge.hr[..., 2]).all()  # greyscale -> RGB
    assert bridge.lr.shape == (bridge.hr.shape[0] // 4, bridge.hr.shape[1] // 4, 3)
    assert [p.canonical_name for p in load_benchmark("set5")] == ["baby", "bird", "butterfly", "head", "woman"]
    assert len(load_benchmark("bsd100", limit=2)) == 2
    with pytest.raises(UnknownNameError, match="set14"):
        load_benchmark("set41")
