"""Shared fixtures. Tests needing ../shared skip with a clear reason when it is absent."""

from __future__ import annotations

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
