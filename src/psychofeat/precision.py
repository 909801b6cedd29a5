"""Compute precision: dtype names and the autocast context shared by the probe, the metric and the experiments.

`"auto"` picks the fastest precision the machine computes natively: bf16 on CUDA where the GPU supports it, bf16 on
a CPU only where the CPU has native bf16 (AMX or AVX512-BF16, read from its flags by `psychofeat.machine`), fp32
otherwise. Elsewhere bf16 is emulated and several times slower than fp32, so an explicit bf16 on such a CPU still
runs but says so once (docs/developing.md, "Precision").
"""

from __future__ import annotations

import contextlib
import logging

import torch

from psychofeat.errors import InputError
from psychofeat.machine import cpu_model, native_bf16

#: the dtype names every `--dtype` accepts
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")

#: measured on an AMD EPYC without native bf16 (AVX2 kernels, 2 threads, torch 2.13.0): VGG-16 forward, batch 16 at
#: 224², channels-last — `python -m benchmarks precision` (docs/benchmarks.md, "Precision")
EMULATED_BF16_NOTE = "VGG-16 forward measured 7.2× slower than float32 on an AMD EPYC with AVX2 only"

_TABLE = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}
_warned: set[str] = set()
log = logging.getLogger("psychofeat")


def auto_dtype(device: str | torch.device = "cpu") -> torch.dtype:
    """The precision `"auto"` stands for on `device` (see the module docstring)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    if dev.type == "cpu":
        return torch.bfloat16 if native_bf16() else torch.float32
    return torch.float32


def check_device(device: str | torch.device) -> torch.device:
    """`device` as a torch device that exists on this machine: `InputError` for a name torch does not know ("foo"),
    the meta device (no data), or a device this machine lacks (cuda without CUDA, cuda:3 with two GPUs, mps)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps.") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "meta":
        raise InputError("the meta device holds shapes without data and cannot compute; use cpu or cuda.")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise InputError(f"device {str(device)!r} is not available: {why} (torch {torch.__version__}). Use "
                             "--device cpu, or install a CUDA build of PyTorch on a machine with a GPU.")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise InputError(f"device {str(device)!r} does not exist: this machine has {n} CUDA device(s), "
                             f"cuda:0 to cuda:{n - 1}.")
        return dev
    backend = getattr(torch.backends, dev.type, None) if dev.type == "mps" else getattr(torch, dev.type, None)
    available = getattr(backend, "is_available", None)
    if available is None or not available():
        raise InputError(f"device {str(device)!r} is not available on this machine; use --device cpu or cuda.")
    return dev


def check_dtype(dtype: str | torch.dtype) -> None:
    """Refuse an unknown dtype name (without resolving "auto" or warning: the device may not be known yet)."""
    if not isinstance(dtype, torch.dtype) and dtype != "auto" and dtype not in _TABLE:
        raise InputError(f"unknown dtype {dtype!r}; use {', '.join(DTYPE_NAMES)}.")


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """A dtype name (or "auto", resolved for `device`) as a torch dtype; bf16 on a CPU that emulates it warns once."""
    check_dtype(dtype)
    if isinstance(dtype, torch.dtype):
        dt = dtype
    elif dtype == "auto":
        return auto_dtype(device)
    else:
        dt = _TABLE[dtype]
    if dt == torch.bfloat16 and torch.device(device).type == "cpu":
        _warn_emulated_bf16()
    return dt


def dtype_name(dtype: torch.dtype) -> str:
    """torch.bfloat16 -> 'bfloat16' (the name manifests record)."""
    return str(dtype).removeprefix("torch.")


def _warn_emulated_bf16() -> None:
    if native_bf16() or "bf16" in _warned:
        return
    _warned.add("bf16")
    log.warning("bfloat16 on this CPU (%s) is emulated, not native (no AMX / AVX512-BF16): %s; --dtype auto or "
                "float32 is faster here.", cpu_model(), EMULATED_BF16_NOTE)


def compute_context(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager[None]:
    """Autocast for reduced precision; plain fp32 otherwise."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
