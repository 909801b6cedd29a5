"""Benchmark (c): the cost of the selected-channel SR loss, as ratios measured in one run.

Two measurements, all variants timed interleaved (benchmarks.common):

1. **Training steps** of `psychofeat sr train` (`psychofeat.sr.train.train_step`, called here; criterion from
   `build_criterion`, autocast as `sr train`: bf16 on CUDA, none on CPU; Adam): pixel-only (L1), the PE top-k loss
   and the all-channel loss over the experiment's layers (relu2_2, relu3_3, relu4_3), and the top-k loss over
   relu2_2 and relu3_3 only (the cheaper loss a user can pick). Batch 16 of 24×24 LR → 96×96 HR patches (random
   values, already on the device: data loading is excluded alike). Each variant has its own SRResNet (same seed,
   same initial weights) and optimizer.
2. **The loss alone against the trunk it needs**: forward + backward of the top-k `PerceptualLoss` on a prediction
   that requires grad, vs the bare frozen VGG-16 trunk to the deepest loss layer doing the same unavoidable work
   (forward on the target without a graph, forward on the prediction, backward to the prediction from the deepest
   map). The difference is what the loss adds: channel gathers, normalisation, distances, intermediate-layer
   gradients, the pixel term.

Targets (issue 13): top-k step ≤ 1.0× the all-channel step; loss ≤ 1.10× its trunk. The old "≤ 1.10× a pixel-only
step" is withdrawn: the trunk alone is ≈ 3× the SRResNet step's arithmetic (the FLOP counts are reported).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import loadavg, sync, time_interleaved
from psychofeat.sr.experiment import ExperimentConfig

#: the loss of `psychofeat sr experiment` (its layers and λ), and the cheaper layer choice reported beside it
EXPERIMENT = ExperimentConfig()
EXPERIMENT_LAYERS = tuple(EXPERIMENT.layers)
SHALLOW_LAYERS = ("relu2_2", "relu3_3")


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
    count_flops: bool = True,
    model_overrides: dict[str, Any] | None = None,
    layers: Sequence[str] = EXPERIMENT_LAYERS,
    shallow_layers: Sequence[str] = SHALLOW_LAYERS,
) -> dict[str, Any]:
    from benchmarks.models import bare_trunk
    from psychofeat.sr.model import SRResNetConfig, build_srresnet
    from psychofeat.sr.train import TrainConfig, _autocast, build_criterion, train_step

    if selection_path is None:
        raise ValueError("the top-k loss needs a selection.json (benchmarks.models.top_selection writes one)")
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as `sr train` does when not deterministic
    variants = {"pixel": ("pixel", layers), "top": ("top", layers), "all": ("all", layers),
                f"top_to_{shallow_layers[-1]}": ("top", shallow_layers)}
    g = torch.Generator().manual_seed(0)
    lr_batch = torch.rand(batch, 3, patch // 4, patch // 4, generator=g).to(dev)
    hr_batch = torch.rand(batch, 3, patch, patch, generator=g).to(dev)

    fns: dict[str, Any] = {}
    amp = ""
    top_criterion: Any = None
    top_cfg: Any = None
    for name, (loss, lays) in variants.items():
        cfg = TrainConfig(loss=loss, batch=batch, patch=patch, selection=str(selection_path), device=str(dev),
                          backbone_weights=weights, layers=list(lays), lam=EXPERIMENT.lam, **(model_overrides or {}))
        cfg.validate()
        torch.manual_seed(cfg.seed)
        model = build_srresnet(SRResNetConfig(**{k: v for k, v in (model_overrides or {}).items()
                                                  if k in ("n_blocks", "channels", "bn")})).to(dev).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.999))
        criterion = build_criterion(cfg, dev)
        if name == "top":
            top_criterion, top_cfg = criterion, cfg
        ac = _autocast(cfg, dev)
        amp = "none" if isinstance(ac, contextlib.nullcontext) else str(ac.fast_dtype)
        scaler = torch.amp.GradScaler(dev.type, enabled=cfg.amp == "fp16")

        def step(model: Any = model, optimizer: Any = optimizer, criterion: Any = criterion, cfg: Any = cfg,
                 scaler: Any = scaler) -> None:
            train_step(model, criterion, optimizer, scaler, lr_batch, hr_batch, _autocast(cfg, dev))

        fns[name] = step

    # the loss alone vs the bare trunk to its deepest layer (same prediction, same target, same autocast)
    backbone = top_criterion.core.backbone
    deepest = top_criterion.core.layers[-1]
    trunk = bare_trunk(backbone, deepest, channels_last=True).to(dev)
    pred = (hr_batch * 0.9 + 0.05).clone().requires_grad_(True)
    target_cl = hr_batch.contiguous(memory_format=torch.channels_last)

    def loss_only() -> None:
        pred.grad = None
        with _autocast(top_cfg, dev):
            value = top_criterion(pred, hr_batch)
        value.backward()

    def trunk_only() -> None:
        pred.grad = None
        with _autocast(top_cfg, dev):
            with torch.no_grad():
                trunk(target_cl)
            out = trunk(pred.contiguous(memory_format=torch.channels_last))
        out.backward(torch.ones_like(out))

    fns["loss_top"] = loss_only
    fns[f"trunk_to_{deepest}"] = trunk_only

    flops = {k: (_gflops(fn) if count_flops else None) for k, fn in fns.items()}
    sync(dev)
    la0 = loadavg()
    stats = time_interleaved(fns, dev, repeats=repeats, warmup=warmup)
    la1 = loadavg()
    med = {k: s["median_s"] for k, s in stats.items()}
    rows = []
    for k, s in stats.items():
        rows.append({
            "variant": k, "median_ms": 1e3 * s["median_s"], "min_ms": 1e3 * s["min_s"], "max_ms": 1e3 * s["max_s"],
            "cpu_ms": 1e3 * s["cpu_median_s"], "per_s": 1.0 / s["median_s"],
            "ratio_vs_pixel": s["median_s"] / med["pixel"], "gflop": flops[k],
            "flop_ratio_vs_pixel": (flops[k] / flops["pixel"]) if flops[k] and flops["pixel"] else None,
            "samples_ms": [round(1e3 * t, 3) for t in s["samples_s"]],
        })
    top_vs_all = med["top"] / med["all"]
    loss_vs_trunk = med["loss_top"] / med[f"trunk_to_{deepest}"]
    shallow = f"top_to_{shallow_layers[-1]}"
    return {
        "benchmark": "sr",
        "device": str(dev),
        "batch": batch, "hr_patch": patch, "lr_patch": patch // 4, "autocast": amp,
        "layers": list(layers), "shallow_layers": list(shallow_layers),
        "selection": str(selection_path), "weights": weights or "imagenet (default)",
        "repeats": repeats, "warmup": warmup,
        "loadavg_before": la0, "loadavg_after": la1,
        "rows": rows,
        "ratio_top_vs_all": top_vs_all,
        "ratio_loss_vs_trunk": loss_vs_trunk,
        "ratio_top_vs_pixel": med["top"] / med["pixel"],
        "ratio_shallow_vs_top": med[shallow] / med["top"],
        "ratio_shallow_vs_pixel": med[shallow] / med["pixel"],
        "acceptance": [
            {"target": "sr step: top-k / all-channel <= 1.0", "value": top_vs_all, "threshold": 1.0,
             "met": top_vs_all <= 1.0},
            {"target": f"top-k loss / bare trunk to {deepest} <= 1.10", "value": loss_vs_trunk, "threshold": 1.10,
             "met": loss_vs_trunk <= 1.10},
        ],
    }
