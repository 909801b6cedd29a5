"""The machine a result was computed on: CPU model, the torch CPU kernels in use, native bf16, threads, versions.

CPUs differ in ways that change timings (AVX2 vs AVX-512/AMX kernels) and, in the last bits, floats. Every manifest
and benchmark records `describe()`, so a figure is always read against the machine that produced it.

"Native bf16" is read from the CPU's own feature flags (Linux `/proc/cpuinfo`: `amx_bf16` or `avx512_bf16`), not
guessed from the vendor: without them PyTorch emulates bf16 matrix products, which is several times *slower* than
fp32 (docs/developing.md, "Precision"). Where the flags cannot be read, bf16 is taken as not native, so the automatic
choice falls back to fp32, which is never the slow one.
"""

from __future__ import annotations

import functools
import os
import platform
from typing import Any

#: CPU feature flags that give native bf16 matrix arithmetic (oneDNN uses either)
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    """(model name, feature flags) from /proc/cpuinfo; ("", {}) where there is none (macOS, Windows)."""
    model, flags = "", frozenset[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = frozenset(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return model, flags


def cpu_model() -> str:
    """The CPU's model name (e.g. 'AMD EPYC'), or the platform's processor string."""
    return _cpuinfo()[0] or platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> frozenset[str]:
    return _cpuinfo()[1]


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16), read from its feature flags."""
    return any(f in cpu_flags() for f in NATIVE_BF16_FLAGS)


def cpu_capability() -> str:
    """The ATen CPU kernels in use: 'AVX512', 'AVX2', 'DEFAULT' … (honours ATEN_CPU_CAPABILITY)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def describe(device: Any = None) -> dict[str, Any]:
    """What every manifest and benchmark records about the machine (and the GPU when `device` is CUDA)."""
    import torch

    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_capability": cpu_capability(),
        "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
        "native_bf16": native_bf16(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        dev = torch.device(device)
        info["gpu"] = torch.cuda.get_device_name(dev)
        info["cuda"] = torch.version.cuda
        info["gpu_bf16"] = torch.cuda.is_bf16_supported()
    return info


def cpu_line(info: dict[str, Any] | None = None) -> str:
    """One line for the top of a benchmark's output, e.g.
    'CPU: AMD EPYC · kernels AVX2 · native bf16: no · 2 threads · torch 2.13.0+cpu'."""
    d = info or describe()
    forced = f" (ATEN_CPU_CAPABILITY={d['aten_cpu_capability_env']})" if d.get("aten_cpu_capability_env") else ""
    line = (f"CPU: {d['cpu_model']} · kernels {d['cpu_capability']}{forced} · native bf16: "
            f"{'yes' if d['native_bf16'] else 'no'} · {d['threads']} threads · torch {d['torch']}")
    if d.get("gpu"):
        line += f" · GPU: {d['gpu']}"
    return line


__all__ = ["NATIVE_BF16_FLAGS", "cpu_capability", "cpu_flags", "cpu_line", "cpu_model", "describe", "native_bf16"]
