"""Benchmark (d): peak memory of one 1080×800 pair (W×H), psychofeat vs lpips vs the bare trunk.

Each variant runs in a fresh subprocess (`python -m benchmarks.memory_bench --worker VARIANT ...`) so that no
variant inherits another's allocator state. Every worker imports the same modules (torch, psychofeat, and
torchvision + lpips when installed), loads the same backbone and builds its model, so the resident baseline is
alike; then:

* CPU: it resets the kernel's peak-RSS counter (`echo 5 > /proc/self/clear_refs`, Linux ≥ 4.0), runs one
  forward pass under `torch.inference_mode()` and reads `VmHWM` (peak resident set) from /proc/self/status.
  Reported: `peak_rss_mib` (the process's peak during the forward, baseline included) and `forward_peak_mib`
  (that peak minus the resident set just before the forward). Where the counter cannot be reset the worker falls
  back to `ru_maxrss` for the whole process life, and says so (`peak_counter`).
* CUDA: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`, minus the memory allocated before
  the forward (weights), and the absolute peak.

Variants: psychofeat-all, psychofeat-top25 (needs --selection), lpips, trunk (the 2 images jointly, relu5_3).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

VARIANTS = ("psychofeat-all", "psychofeat-top25", "lpips", "trunk")


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(variant: str, device: str, width: int, height: int, weights: str | None, selection: str | None,
           dtype: str) -> dict[str, Any]:
    import torch

    from benchmarks.models import bare_trunk, build_lpips, lpips_available
    from psychofeat.backbones import load_backbone
    from psychofeat.metric import PerceptualDistance
    from psychofeat.precision import compute_context, resolve_dtype

    lp_ok, lp_reason = lpips_available()  # imported by every variant: same baseline
    dev = torch.device(device)
    dt = resolve_dtype(dtype, dev)
    backbone = load_backbone("vgg16", weights, device=dev)
    if variant == "psychofeat-all":
        model = PerceptualDistance(backbone, reduction="none", device=dev, dtype=dt)

        def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return model(x, y)
    elif variant == "psychofeat-top25":
        if not selection:
            raise SystemExit("psychofeat-top25 needs --selection")
        from psychofeat.selection import Selection

        sel = Selection.load(selection).top(0.25).restrict(list(backbone.metric_layers))
        model = PerceptualDistance(backbone, selection=sel, reduction="none", device=dev, dtype=dt)

        def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return model(x, y)
    elif variant == "lpips":
        if not lp_ok:
            return {"variant": variant, "skipped": lp_reason}
        model = build_lpips(backbone, dev)
        del backbone  # lpips holds its own copy of the weights: do not count two

        def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return model(x, y, normalize=True)
    elif variant == "trunk":
        model = bare_trunk(backbone, channels_last=True).to(dev)
        del backbone  # the trunk is a copy: do not count two

        def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return model(torch.cat([x, y]).contiguous(memory_format=torch.channels_last))
    else:
        raise SystemExit(f"unknown variant {variant!r}; choose from {VARIANTS}")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, height, width, generator=g).to(dev)
    y = torch.rand(1, 3, height, width, generator=g).to(dev)
    # psychofeat's metric applies its own dtype; lpips and the bare trunk get the same autocast from outside
    ctx = compute_context(dev, dt) if variant in ("lpips", "trunk") else contextlib.nullcontext()
    gc.collect()
    out: dict[str, Any] = {"variant": variant, "device": str(dev), "dtype": dtype, "width": width, "height": height}
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        with torch.inference_mode(), ctx:
            fn(x, y)
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev)
        out.update(peak_allocated_mib=peak / 2**20, forward_peak_mib=(peak - before) / 2**20,
                   allocated_before_mib=before / 2**20, peak_counter="torch.cuda.max_memory_allocated")
        return out
    rss_before = _status_kib("VmRSS")
    reset = _reset_peak()
    with torch.inference_mode(), ctx:
        fn(x, y)
    if reset and (hwm := _status_kib("VmHWM")) is not None:
        peak_kib, counter = hwm, "VmHWM after clear_refs reset"
    else:
        peak_kib, counter = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss (whole process; no reset)"
    out.update(peak_rss_mib=peak_kib / 1024, rss_before_mib=(rss_before or 0) / 1024,
               forward_peak_mib=(peak_kib - (rss_before or 0)) / 1024, peak_counter=counter)
    return out


def run(device: str = "cpu", width: int = 1080, height: int = 800, weights: str | None = None,
        selection: str | None = None, dtype: str = "fp32", variants: tuple[str, ...] = VARIANTS) -> dict[str, Any]:
    """One fresh subprocess per variant; returns their reports and the acceptance check."""
    root = Path(__file__).resolve().parents[1]
    rows = []
    for v in variants:
        if v == "psychofeat-top25" and not selection:
            rows.append({"variant": v, "skipped": "no selection file"})
            continue
        cmd = [sys.executable, "-m", "benchmarks.memory_bench", "--worker", v, "--device", device,
               "--width", str(width), "--height", str(height), "--dtype", dtype]
        if weights:
            cmd += ["--weights", weights]
        if selection:
            cmd += ["--selection", str(selection)]
        env = dict(os.environ)
        env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, check=False)
        if proc.returncode != 0:
            rows.append({"variant": v, "error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    key = "peak_rss_mib" if device.startswith("cpu") else "peak_allocated_mib"
    peaks = {r["variant"]: r.get(key) for r in rows}
    fwd = {r["variant"]: r.get("forward_peak_mib") for r in rows}
    lp = peaks.get("lpips")
    acc = []
    for v in ("psychofeat-all", "psychofeat-top25"):
        if peaks.get(v) is not None and lp is not None:
            acc.append({"target": f"peak memory {v} <= lpips", "value": peaks[v] / lp, "threshold": 1.0,
                        "met": peaks[v] <= lp})
        else:
            acc.append({"target": f"peak memory {v} <= lpips", "value": None, "threshold": 1.0, "met": None})
    for r in rows:
        if r.get(key) is not None and lp:
            r["peak_vs_lpips"] = r[key] / lp
        if r.get("forward_peak_mib") is not None and fwd.get("lpips"):
            r["forward_peak_vs_lpips"] = r["forward_peak_mib"] / fwd["lpips"]
    return {"benchmark": "memory", "device": device, "width": width, "height": height, "dtype": dtype,
            "measure": key, "rows": rows, "acceptance": acc}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one memory-benchmark variant (used by `python -m benchmarks memory`)")
    p.add_argument("--worker", required=True, choices=VARIANTS)
    p.add_argument("--device", default="cpu")
    p.add_argument("--width", type=int, default=1080)
    p.add_argument("--height", type=int, default=800)
    p.add_argument("--weights", default=None)
    p.add_argument("--selection", default=None)
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    a = p.parse_args(argv)
    print(json.dumps(worker(a.worker, a.device, a.width, a.height, a.weights, a.selection, a.dtype)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
