"""Timing helpers shared by the benchmarks: warm-up, interleaved repeats, device synchronisation, load checks.

Methodology (the same for every benchmark):
* every variant gets `warmup` untimed calls first (allocator, oneDNN/cuDNN algorithm caches, lazy init);
* the timed calls are *interleaved*: repeat r runs every variant once, in an order rotated by r, so a slow
  minute on a shared machine hits all variants alike instead of whichever happened to run then;
* each timed sample is synchronised on CUDA before and after (`torch.cuda.synchronize`);
* the statistic is the median of the samples; min and max are reported beside it;
* the process CPU time of each sample (all threads) is recorded too (`cpu_ms`): on a CPU shared with other jobs it
  is much less disturbed than wall time, though it also counts threads spinning while they wait for each other.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    fns: Mapping[str, Callable[[], Any]], device: torch.device, repeats: int = 5, warmup: int = 1, inner: int = 1
) -> dict[str, dict[str, Any]]:
    """Median seconds per call of each function, timed round-robin (see the module docstring).

    `inner` calls make one sample (amortises launch latency of small GPU batches); times are per call.
    """
    names = list(fns)
    for _ in range(warmup):
        for k in names:
            fns[k]()
    sync(device)
    samples: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        shift = r % len(names)
        for k in names[shift:] + names[:shift]:
            sync(device)
            c = time.process_time()
            t = time.perf_counter()
            for _ in range(inner):
                fns[k]()
            sync(device)
            samples[k].append((time.perf_counter() - t) / inner)
            cpu[k].append((time.process_time() - c) / inner)
    return {
        k: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v), "samples_s": v,
            "cpu_median_s": statistics.median(cpu[k])}
        for k, v in samples.items()
    }


def loadavg() -> list[float] | None:
    """1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def wait_for_quiet(max_load: float, max_wait_s: float, poll_s: float = 15.0) -> dict[str, Any]:
    """Wait until the 1-minute load average is below `max_load` (or give up after `max_wait_s`)."""
    t0 = time.perf_counter()
    la = loadavg()
    while la is not None and la[0] >= max_load and time.perf_counter() - t0 < max_wait_s:
        time.sleep(poll_s)
        la = loadavg()
    quiet = la is None or la[0] < max_load
    return {"quiet": quiet, "loadavg": la, "waited_s": round(time.perf_counter() - t0, 1), "max_load": max_load}


def machine_info(device: torch.device) -> dict[str, Any]:
    """psychofeat's machine record (CPU model, kernels in use, native bf16, threads, torch) plus the benchmark's
    device details."""
    from psychofeat.machine import describe

    info: dict[str, Any] = {
        **describe(device),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "device": str(device),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    if device.type == "cuda":
        info["cudnn"] = torch.backends.cudnn.version()
        info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        info["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    return info


def dtype_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """bf16 runs on CUDA (Ampere+) and on CPUs with native bf16 or a fallback; we only check it runs."""
    if dtype == torch.float32:
        return True
    if device.type == "cuda":
        return dtype != torch.bfloat16 or torch.cuda.is_bf16_supported()
    try:
        conv = torch.nn.Conv2d(3, 4, 3).to(device)
        with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=dtype):
            conv(torch.rand(1, 3, 8, 8, device=device))
        return True
    except RuntimeError:
        return False


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        return
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)
