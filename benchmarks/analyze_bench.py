"""Benchmark: the default `psychofeat analyze` of VGG-16 vs the bare forward passes of the same stimuli.

The baseline renders exactly the stimuli the analysis used (same counts, same batch size) and runs them through
the bare trunk `features[: deepest + 1]` with nothing else (no hooks, no reductions, no scoring). The ratio
analysis / bare is the overhead of psychofeat's probing; issue target ≤ 1.25, and ≤ 180 s in total on the
2-core CPU machine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import sync


def bare_forward_seconds(
    backbone: Any, info: dict[str, Any], batch_size: int, device: torch.device
) -> tuple[float, float]:
    """(wall, process CPU) seconds of the plain trunk on the analysis' stimuli, pass by pass, each to its deepest
    layer."""
    from psychofeat.stimuli import (
        ProbeProtocol,
        concat,
        frequency_sweep,
        gray_set,
        orientation_sweep,
    )

    p = ProbeProtocol.from_dict(info["config"]["protocol"])
    total = cpu = 0.0
    for entry in info["stimulus_passes"]:
        if entry["pass"] == "frequency":
            stim = concat([gray_set(p), frequency_sweep(p)])
        else:
            # the same number of orientation stimuli (frequencies only change pixel values, not cost)
            n_freqs = entry["n_stimuli"] // (p.n_orient * p.n_phase)
            stim = orientation_sweep(p, p.orientation_grid[:n_freqs])
        # the VGG trunk is one Sequential (`features.i`): run its prefix up to the deepest layer
        path = backbone.resolve_layer(entry["deepest_layer"])
        trunk = backbone.net.features[: int(path.split(".")[-1]) + 1]
        sync(device)
        c = time.process_time()
        t = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, len(stim), batch_size):
                x = stim.render(s, min(len(stim), s + batch_size)).to(device)
                x = x.contiguous(memory_format=torch.channels_last)
                trunk(backbone.preprocess(x))
        sync(device)
        total += time.perf_counter() - t
        cpu += time.process_time() - c
    return total, cpu


def run(device: str = "cpu", weights: str | None = None, batch_size: int = 16,
        selection_out: Path | None = None) -> dict[str, Any]:
    """Time the default analysis and the bare forward of its stimuli; optionally save its selection.json."""
    from psychofeat.backbones import load_backbone
    from psychofeat.experiments.analyze import AnalysisConfig, analyze

    dev = torch.device(device)
    backbone = load_backbone("vgg16", weights, device=dev)
    config = AnalysisConfig(batch_size=batch_size)
    # warm-up (allocator, oneDNN primitive caches) on a tiny problem
    bare_warm = torch.rand(2, 3, 64, 64, device=dev)
    with torch.inference_mode():
        backbone.net(backbone.preprocess(bare_warm))
    c = time.process_time()
    t = time.perf_counter()
    result = analyze(backbone, config=config, device=dev, progress=False)
    sync(dev)
    t_analyze = time.perf_counter() - t
    c_analyze = time.process_time() - c
    t_bare, c_bare = bare_forward_seconds(backbone, result.info, batch_size, dev)
    if selection_out is not None:
        result.selection.save(selection_out)
    return {
        "benchmark": "analyze",
        "model": "vgg16",
        "weights": backbone.weights_info.source,
        "layers": len(result.info["layers"]),
        "channels": len(result.scores),
        "n_stimuli": result.info["n_stimuli"],
        "analyze_s": t_analyze,
        "bare_forward_s": t_bare,
        "ratio": t_analyze / t_bare,
        "analyze_cpu_s": c_analyze,
        "bare_forward_cpu_s": c_bare,
        "cpu_ratio": c_analyze / c_bare,
        "target_ratio": 1.25,
        "target_analyze_s_cpu": 180.0,
        "timing_breakdown_s": result.info["timing_s"],
    }
