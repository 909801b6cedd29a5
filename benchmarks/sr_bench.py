"""Benchmark (c): one SRResNet ×4 training step with the top-k feature loss vs a pixel-only step.

The step is the one of `psychofeat sr train` (`psychofeat.sr.train.train_step`, called here); the criterion comes
from `psychofeat.sr.train.build_criterion` (pixel: L1; top: L1 + λ·d_top-25% through `PerceptualLoss`), autocast as `sr train` does it (bf16 on CUDA, none
on CPU), Adam, `zero_grad(set_to_none=True)`, backward, step. Batch 16 of 24×24 LR → 96×96 HR patches (random
values, already on the device: data loading is excluded from both variants alike). Each variant has its own
SRResNet (same seed, same initial weights) and optimizer; steps are timed interleaved (benchmarks.common).

The floating-point work of each step is counted with `torch.utils.flop_counter.FlopCounterMode` and reported:
the feature loss adds a frozen VGG-16 forward of the target, a forward of the prediction and the backward to the
prediction, which bounds the achievable ratio from below whatever the implementation.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import loadavg, sync, time_interleaved


def _gflops(fn: Any) -> float | None:
    try:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops() / 1e9
    except Exception:  # noqa: BLE001  (the counter is informative only)
        return None


def run(
    device: str | torch.device = "cpu",
    selection_path: str | Path | None = None,
    weights: str | None = None,
    batch: int = 16,
    patch: int = 96,
    repeats: int = 5,
    warmup: int = 2,
    include_all: bool = True,
    count_flops: bool = True,
    model_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from psychofeat.sr.model import SRResNetConfig, build_srresnet
    from psychofeat.sr.train import TrainConfig, _autocast, build_criterion, train_step

    if selection_path is None:
        raise ValueError("the top-k loss needs a selection.json (benchmarks.models.top_selection writes one)")
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as `sr train` does when not deterministic
    losses = ["pixel", "top"] + (["all"] if include_all else [])
    g = torch.Generator().manual_seed(0)
    lr_batch = torch.rand(batch, 3, patch // 4, patch // 4, generator=g).to(dev)
    hr_batch = torch.rand(batch, 3, patch, patch, generator=g).to(dev)

    steps: dict[str, Any] = {}
    amp = ""
    for loss in losses:
        cfg = TrainConfig(loss=loss, batch=batch, patch=patch, selection=str(selection_path), device=str(dev),
                          backbone_weights=weights, **(model_overrides or {}))
        cfg.validate()
        torch.manual_seed(cfg.seed)
        model = build_srresnet(SRResNetConfig(**{k: v for k, v in (model_overrides or {}).items()
                                                  if k in ("n_blocks", "channels", "bn")})).to(dev).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.999))
        criterion = build_criterion(cfg, dev)
        ac = _autocast(cfg, dev)
        amp = "none" if isinstance(ac, contextlib.nullcontext) else str(ac.fast_dtype)

        scaler = torch.amp.GradScaler(dev.type, enabled=cfg.amp == "fp16")

        def step(model: Any = model, optimizer: Any = optimizer, criterion: Any = criterion, cfg: Any = cfg,
                 scaler: Any = scaler) -> None:
            train_step(model, criterion, optimizer, scaler, lr_batch, hr_batch, _autocast(cfg, dev))

        steps[loss] = step
    flops = {k: (_gflops(fn) if count_flops else None) for k, fn in steps.items()}
    sync(dev)
    la0 = loadavg()
    stats = time_interleaved(steps, dev, repeats=repeats, warmup=warmup)
    la1 = loadavg()
    base = stats["pixel"]["median_s"]
    rows = []
    for k, s in stats.items():
        rows.append({
            "loss": k, "median_ms": 1e3 * s["median_s"], "min_ms": 1e3 * s["min_s"], "max_ms": 1e3 * s["max_s"],
            "cpu_ms": 1e3 * s["cpu_median_s"], "cpu_ratio_vs_pixel": s["cpu_median_s"] / stats["pixel"]["cpu_median_s"],
            "steps_per_s": 1.0 / s["median_s"], "ratio_vs_pixel": s["median_s"] / base,
            "gflop_per_step": flops[k],
            "flop_ratio_vs_pixel": (flops[k] / flops["pixel"]) if flops[k] and flops["pixel"] else None,
            "samples_ms": [round(1e3 * t, 3) for t in s["samples_s"]],
        })
    ratio = stats["top"]["median_s"] / base
    return {
        "benchmark": "sr",
        "device": str(dev),
        "batch": batch, "hr_patch": patch, "lr_patch": patch // 4, "autocast": amp,
        "selection": str(selection_path), "weights": weights or "imagenet (default)",
        "repeats": repeats, "warmup": warmup,
        "loadavg_before": la0, "loadavg_after": la1,
        "rows": rows,
        "ratio_top_vs_pixel": ratio,
        "acceptance": [{"target": "sr step: top-k / pixel-only <= 1.10", "value": ratio, "threshold": 1.10,
                        "met": ratio <= 1.10}],
    }
