"""Compute precision: dtype names and the autocast context shared by the probe, the metric and the experiments."""

from __future__ import annotations

import contextlib

import torch

from psychofeat.errors import InputError


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise InputError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16.")
    return table[dtype]


def compute_context(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager[None]:
    """Autocast for reduced precision; plain fp32 otherwise."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
