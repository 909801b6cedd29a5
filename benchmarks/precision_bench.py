"""Benchmark: VGG-16 forward in fp32 vs bf16 autocast vs `dtype="auto"` on this machine.

Why: bf16 is native only on CPUs with AMX or AVX512-BF16; elsewhere PyTorch emulates it and it is several times
slower than fp32. This measures the ratio that `psychofeat.precision` quotes when bf16 is asked for on such a CPU,
and checks that "auto" is never slower than fp32 (it must pick fp32 where bf16 is emulated).
"""

from __future__ import annotations

from typing import Any

import torch

from benchmarks.common import time_interleaved


def run(device: str = "cpu", weights: str | None = None, batch: int = 16, size: int = 224, repeats: int = 3,
        warmup: int = 1) -> dict[str, Any]:
    from psychofeat.backbones import load_backbone
    from psychofeat.machine import native_bf16
    from psychofeat.precision import auto_dtype, compute_context, dtype_name

    dev = torch.device(device)
    bb = load_backbone("vgg16", weights or "random:0", device=dev)
    bb.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    trunk = bb.net.features
    x = torch.rand(batch, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    auto = auto_dtype(dev)

    def forward(dt: torch.dtype) -> Any:
        def fn() -> None:
            with torch.inference_mode(), compute_context(dev, dt):
                trunk(x)
        return fn

    variants = {"fp32": forward(torch.float32), "bf16": forward(torch.bfloat16)}
    timings = time_interleaved(variants, dev, repeats=repeats, warmup=warmup)
    fp32, bf16 = timings["fp32"]["median_s"], timings["bf16"]["median_s"]
    auto_s = bf16 if auto == torch.bfloat16 else fp32
    rows = [{"variant": k, "median_s": v["median_s"], "min_s": v["min_s"], "max_s": v["max_s"],
             "vs_fp32": v["median_s"] / fp32} for k, v in timings.items()]
    return {
        "benchmark": "precision", "model": "vgg16 features (all 13 conv layers)", "batch": batch, "size": size,
        "channels_last": True, "repeats": repeats, "native_bf16": native_bf16(), "auto_dtype": dtype_name(auto),
        "rows": rows, "bf16_vs_fp32": bf16 / fp32, "auto_vs_fp32": auto_s / fp32,
        "acceptance": [{"target": "dtype auto no slower than fp32 (ratio <= 1.05)", "value": auto_s / fp32,
                        "threshold": 1.05, "met": auto_s / fp32 <= 1.05}],
    }
