"""Benchmark: `psychofeat analyze` of VGG-16, reference protocol and `--fast`, each vs the bare forward of its stimuli.

The baseline renders exactly the stimuli an analysis used (same counts, same batch size, same precision) and runs
them through the bare trunk `features[: deepest + 1]` with nothing else (no hooks, no reductions, no scoring). The
ratio analysis / bare is the overhead of psychofeat's probing (targets: reference ≤ 1.25, fast ≤ 1.15). The fast
protocol must be ≥ 5× faster than the reference in the same run and agree with it layer by layer (PE Spearman ≥ 0.99,
top-25 % overlap ≥ 90 %; `psychofeat.agreement.score_agreement`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import sync


def bare_passes(info: dict[str, Any]) -> list[tuple[Any, str]]:
    """(stimuli, deepest layer) of each pass of an analysis, from its `info`: the same counts, the same kinds.

    An orientation pass gets the same number of stimuli at the first grid frequencies (frequencies only change
    pixel values, not cost), with the protocol's orientation-sweep phases.
    """
    from psychofeat.stimuli import ProbeProtocol, concat, frequency_sweep, gray_set, orientation_sweep

    p = ProbeProtocol.from_dict(info["config"]["protocol"])
    passes = []
    for entry in info["stimulus_passes"]:
        if entry["pass"] == "frequency":
            stim = concat([gray_set(p), frequency_sweep(p)])
        else:
            n_freqs = entry["n_stimuli"] // (p.n_orient * p.n_phase_orientation)
            stim = orientation_sweep(p, p.orientation_grid[:n_freqs])
        passes.append((stim, entry["deepest_layer"]))
    return passes


def bare_forward_seconds(
    backbone: Any, info: dict[str, Any], batch_size: int, device: torch.device, dtype: torch.dtype = torch.float32
) -> tuple[float, float]:
    """(wall, process CPU) seconds of the plain trunk on the analysis' stimuli, pass by pass, each to its deepest
    layer, in the analysis' precision."""
    from psychofeat.precision import compute_context

    total = cpu = 0.0
    for stim, deepest in bare_passes(info):
        # the VGG trunk is one Sequential (`features.i`): run its prefix up to the deepest layer
        path = backbone.resolve_layer(deepest)
        trunk = backbone.net.features[: int(path.split(".")[-1]) + 1]
        sync(device)
        c = time.process_time()
        t = time.perf_counter()
        with torch.inference_mode(), compute_context(device, dtype):
            for s in range(0, len(stim), batch_size):
                x = stim.render(s, min(len(stim), s + batch_size)).to(device)
                x = x.contiguous(memory_format=torch.channels_last)
                trunk(backbone.preprocess(x))
        sync(device)
        total += time.perf_counter() - t
        cpu += time.process_time() - c
    return total, cpu


def _timed_analysis(backbone: Any, config: Any, dev: torch.device, dtype: str) -> tuple[Any, float, float]:
    from psychofeat.analysis import analyze

    c = time.process_time()
    t = time.perf_counter()
    result = analyze(backbone, config=config, device=dev, dtype=dtype, progress=False)
    sync(dev)
    return result, time.perf_counter() - t, time.process_time() - c


def run(device: str = "cpu", weights: str | None = None, batch_size: int = 16,
        selection_out: Path | None = None, fast: bool = True) -> dict[str, Any]:
    """Time the reference analysis (and, with `fast`, the fast one) and the bare forward of each protocol's stimuli;
    compare the two analyses; optionally save the reference selection.json."""
    from psychofeat.agreement import score_agreement
    from psychofeat.analysis import AnalysisConfig
    from psychofeat.backbones import load_backbone
    from psychofeat.precision import dtype_name, resolve_dtype
    from psychofeat.stimuli import fast_protocol

    dev = torch.device(device)
    backbone = load_backbone("vgg16", weights, device=dev)
    # warm-up (allocator, oneDNN primitive caches) on a tiny problem
    bare_warm = torch.rand(2, 3, 64, 64, device=dev)
    with torch.inference_mode():
        backbone.net(backbone.preprocess(bare_warm))
    result, t_analyze, c_analyze = _timed_analysis(backbone, AnalysisConfig(batch_size=batch_size), dev, "float32")
    t_bare, c_bare = bare_forward_seconds(backbone, result.info, batch_size, dev)
    if selection_out is not None:
        result.selection.save(selection_out)
    out: dict[str, Any] = {
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
    if not fast:
        return out
    dt = resolve_dtype("auto", dev)
    fast_config = AnalysisConfig(protocol=fast_protocol(), batch_size=batch_size)
    fres, t_fast, c_fast = _timed_analysis(backbone, fast_config, dev, "auto")
    tf_bare, cf_bare = bare_forward_seconds(backbone, fres.info, batch_size, dev, dt)
    agree = score_agreement(result.scores, fres.scores)
    out["fast"] = {
        "protocol": fast_config.protocol.to_dict(), "dtype": dtype_name(dt), "n_stimuli": fres.info["n_stimuli"],
        "analyze_s": t_fast, "bare_forward_s": tf_bare, "ratio": t_fast / tf_bare, "analyze_cpu_s": c_fast,
        "bare_forward_cpu_s": cf_bare, "cpu_ratio": c_fast / cf_bare, "timing_breakdown_s": fres.info["timing_s"],
        "speedup_vs_reference": t_analyze / t_fast, "cpu_speedup_vs_reference": c_analyze / c_fast,
        "agreement": agree.to_dict(orient="records"),
        "min_pe_spearman": float(agree["pe_spearman"].min()), "min_top_overlap": float(agree["top_overlap"].min()),
        "layers_identical": int(agree["top_identical"].sum()),
    }
    return out
