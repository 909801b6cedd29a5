"""Benchmark (a): metric throughput in pairs/s — psychofeat vs the lpips package vs the bare-trunk ceiling.

For each image size and dtype, all variants see the *same* input tensors (seeded uniform noise, N pairs), run
under `torch.inference_mode()`, and are timed interleaved (benchmarks.common). Variants:

* `psychofeat-all`: `PerceptualDistance` over all channels of relu1_2 … relu5_3 (normalized mode, its default);
  one joint forward of the 2N images, per-layer reduction as each layer appears, stop after relu5_3.
* `psychofeat-top25`: the same with the PE top-25% selection of each of those layers.
* `psychofeat-all-ref`: all channels with the reference features computed once beforehand (`metric.reference(y)`,
  the IQA use: one distorted image per call). Costs ~1 forward per pair, so it is *not* compared to the ceiling.
* `lpips`: `lpips.LPIPS(net="vgg")` with the same conv weights (benchmarks.models), `normalize=True` ([0, 1] input).
* `trunk-cl` / `trunk-nchw`: the bare trunk on the 2N images, channels-last input and weights / contiguous input
  and weights; the ceiling is the faster of the two (pairs/s = N / time).

bf16 is torch.autocast(bfloat16) for every variant (psychofeat's own `dtype="bfloat16"` is the same autocast).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from benchmarks.common import dtype_supported, loadavg, sync, time_interleaved
from benchmarks.models import (
    bare_trunk,
    build_lpips,
    lpips_available,
    selection_summary,
)
from psychofeat.precision import compute_context

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
#: (width, height): 256×256 and 768×512 as in the issue
SIZES = [(256, 256), (768, 512)]
DEFAULT_PAIRS = {"cpu": [4, 1], "cuda": [64, 16]}


def run(
    backbone: Any,
    top_sel: Any,
    device: str | torch.device = "cpu",
    sizes: Sequence[tuple[int, int]] = SIZES,
    pairs: Sequence[int] | None = None,
    dtypes: Sequence[str] = ("fp32", "bf16"),
    repeats: int = 5,
    warmup: int = 1,
    inner: int = 1,
    use_lpips: bool = True,
    selection_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from psychofeat.metric import PerceptualDistance

    dev = torch.device(device)
    pairs = list(pairs or DEFAULT_PAIRS.get(dev.type, DEFAULT_PAIRS["cuda"]))
    if len(pairs) != len(sizes):
        raise ValueError(f"give one batch size per image size: sizes {list(sizes)}, pairs {pairs}")
    lp_ok, lp_reason = lpips_available() if use_lpips else (False, "disabled (--no-lpips)")
    lp = build_lpips(backbone, dev) if lp_ok else None
    trunk_nchw = bare_trunk(backbone).to(dev)
    trunk_cl = bare_trunk(backbone, channels_last=True).to(dev)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for dname in dtypes:
        dt = DTYPES[dname]
        if not dtype_supported(dev, dt):
            skipped.append({"dtype": dname, "reason": f"{dname} autocast does not run on {dev}"})
            continue
        metrics = {
            "psychofeat-all": PerceptualDistance(backbone, reduction="none", device=dev, dtype=dt),
            "psychofeat-top25": PerceptualDistance(backbone, selection=top_sel, reduction="none", device=dev, dtype=dt),
        }
        for (w, h), n in zip(sizes, pairs):
            rows += _one_size(metrics, lp, trunk_cl, trunk_nchw, (w, h), n, dname, dev, repeats, warmup, inner)
        del metrics
    return {
        "benchmark": "metric",
        "device": str(dev),
        "model": "vgg16",
        "weights": backbone.weights_info.source,
        "layers": list(backbone.metric_layers),
        "top25_selection": {**(selection_info or {}), "channels_per_layer": selection_summary(top_sel)},
        "lpips": "lpips package with the psychofeat VGG-16 conv weights" if lp is not None else lp_reason,
        "repeats": repeats, "warmup": warmup, "inner": inner,
        "rows": rows,
        "skipped": skipped,
        "acceptance": acceptance(rows, dev.type),
    }


def _one_size(metrics: dict[str, Any], lp: Any, trunk_cl: Any, trunk_nchw: Any, size: tuple[int, int], n: int,
              dname: str, dev: torch.device, repeats: int, warmup: int, inner: int) -> list[dict[str, Any]]:
    """Time every variant on the same N pairs of one size and dtype; one row per variant plus the ceiling."""
    w, h = size
    dt = DTYPES[dname]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, h, w, generator=g).to(dev)
    y = torch.rand(n, 3, h, w, generator=g).to(dev)
    xy = torch.cat([x, y])
    xy_cl = xy.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = metrics["psychofeat-all"].reference(y)
    fns: dict[str, Callable[[], Any]] = {
        "psychofeat-all": lambda: metrics["psychofeat-all"](x, y),
        "psychofeat-top25": lambda: metrics["psychofeat-top25"](x, y),
        "psychofeat-all-ref": lambda: metrics["psychofeat-all"](x, ref=ref),
        "trunk-cl": lambda: trunk_cl(xy_cl),
        "trunk-nchw": lambda: trunk_nchw(xy),
    }
    if lp is not None:
        fns["lpips"] = lambda: lp(x, y, normalize=True)
    with torch.inference_mode(), compute_context(dev, dt):
        check = {k: fns[k]() for k in ("psychofeat-all", "psychofeat-top25", "psychofeat-all-ref")}
        if not all(bool(torch.isfinite(v).all()) for v in check.values()):
            raise RuntimeError(f"non-finite distances at {w}×{h} {dname}")
        if dt == torch.float32 and not torch.allclose(
            check["psychofeat-all"], check["psychofeat-all-ref"], rtol=1e-3, atol=1e-6
        ):
            raise RuntimeError("cached-reference distances differ from joint-forward distances")
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        la0 = loadavg()
        stats = time_interleaved(fns, dev, repeats=repeats, warmup=warmup, inner=inner)
        la1 = loadavg()
    sync(dev)
    ceiling_key = min(("trunk-cl", "trunk-nchw"), key=lambda k: stats[k]["median_s"])
    ceiling = n / stats[ceiling_key]["median_s"]
    lp_rate = n / stats["lpips"]["median_s"] if "lpips" in stats else None
    ceil_cpu = min(stats[k]["cpu_median_s"] for k in ("trunk-cl", "trunk-nchw"))
    lp_cpu = stats["lpips"]["cpu_median_s"] if "lpips" in stats else None
    rows: list[dict[str, Any]] = []
    for k, s in stats.items():
        rate = n / s["median_s"]
        rows.append({
            "size": f"{w}x{h}", "width": w, "height": h, "dtype": dname, "pairs_per_batch": n, "variant": k,
            "median_ms": 1e3 * s["median_s"], "min_ms": 1e3 * s["min_s"], "max_ms": 1e3 * s["max_s"],
            "cpu_ms": 1e3 * s["cpu_median_s"],
            "pairs_per_s": rate,
            "vs_lpips": rate / lp_rate if lp_rate else None,
            "vs_ceiling": rate / ceiling if not k.endswith("-ref") else None,
            "vs_lpips_cpu": lp_cpu / s["cpu_median_s"] if lp_cpu else None,
            "vs_ceiling_cpu": ceil_cpu / s["cpu_median_s"] if not k.endswith("-ref") else None,
            "samples_ms": [round(1e3 * t, 3) for t in s["samples_s"]],
            "loadavg_before": la0, "loadavg_after": la1,
        })
    rows.append({"size": f"{w}x{h}", "width": w, "height": h, "dtype": dname, "pairs_per_batch": n,
                 "variant": "ceiling", "pairs_per_s": ceiling, "ceiling_from": ceiling_key,
                 "vs_lpips": ceiling / lp_rate if lp_rate else None, "vs_ceiling": 1.0})
    return rows


def _rate(rows: list[dict[str, Any]], size: str, dtype: str, variant: str) -> float | None:
    for r in rows:
        if r["size"] == size and r["dtype"] == dtype and r["variant"] == variant:
            return float(r["pairs_per_s"])
    return None


def acceptance(rows: list[dict[str, Any]], device_type: str) -> list[dict[str, Any]]:
    """The issue's targets, evaluated on these rows (None where a number is missing)."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, target: float) -> None:
        out.append({"target": name, "value": value, "threshold": target,
                    "met": None if value is None else value >= target})

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b is not None else None

    s = "256x256"
    allr = _rate(rows, s, "fp32", "psychofeat-all")
    top = _rate(rows, s, "fp32", "psychofeat-top25")
    lp = _rate(rows, s, "fp32", "lpips")
    if device_type == "cpu":
        add("cpu 256x256 fp32: psychofeat-all / lpips >= 1.3", ratio(allr, lp), 1.3)
        add("cpu 256x256 fp32: psychofeat-top25 / psychofeat-all >= 1.0", ratio(top, allr), 1.0)
    else:
        ceil32 = _rate(rows, s, "fp32", "ceiling")
        add("gpu 256x256 fp32: psychofeat-all / ceiling >= 0.9", ratio(allr, ceil32), 0.9)
        add("gpu 256x256 fp32: psychofeat-all / lpips >= 1.5", ratio(allr, lp), 1.5)
        add("gpu 256x256 bf16: psychofeat-all / bf16 ceiling >= 0.9",
            ratio(_rate(rows, s, "bf16", "psychofeat-all"), _rate(rows, s, "bf16", "ceiling")), 0.9)
        add("gpu 256x256 fp32: psychofeat-top25 / psychofeat-all >= 1.0", ratio(top, allr), 1.0)
    return out
