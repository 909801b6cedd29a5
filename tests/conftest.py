"""Shared fixtures. Tests needing ../shared skip with a clear reason when it is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from psychofeat.config import find_data_root


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = find_data_root()
    if root is None:
        pytest.skip("shared data not found: set PSYCHOFEAT_DATA_ROOT to the shared/data folder")
    return root


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
