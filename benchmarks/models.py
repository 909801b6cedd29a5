"""What the benchmarks compare: psychofeat's metric, the `lpips` package with the same VGG-16 weights, the bare trunk.

* **Same weights.** `lpips.LPIPS(net="vgg", pnet_rand=True)` builds torchvision's VGG-16 layout without downloading
  anything; its 13 convolutions are then overwritten with the weights of the psychofeat backbone (the original
  ImageNet VGG-16 by default), so both run exactly the same convolutions on the same numbers. lpips keeps its own
  linear layers (the `weights/v0.1/vgg.pth` shipped in its package) and its own preprocessing (ScalingLayer on
  [-1, 1] input); its *values* are then not LPIPS's published ones unless `--weights torchvision` is used, but
  its *cost* is exactly that of LPIPS-VGG.
* **Ceiling.** The bare trunk `features[:30]` (conv1_1 … relu5_3, no pool5) of the same backbone, preprocessing
  included, run on the 2N images of N pairs: any VGG-based full-reference metric that looks at relu5_3 of both
  images computes at least this. It is measured in both layouts (channels-last input *and* weights; contiguous
  NCHW) and the faster counts.
* **Top-25% selection.** From a `psychofeat analyze` selection.json when given; otherwise from a quick analysis
  of the five metric layers with a reduced stimulus protocol (`QUICK_PROTOCOL`): the selection's *size* (25% of each
  layer) is what matters for speed, and it is a real PE ranking, not an arbitrary subset.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: reduced stimulus protocol for the quick selection (default analysis: 24 frequencies, 16 orientations, 4 phases)
QUICK_PROTOCOL = {"n_freq": 12, "n_orient": 8, "n_phase": 2, "n_orient_freq": 6}


def lpips_available() -> tuple[bool, str]:
    try:
        import lpips  # noqa: F401
    except Exception as exc:  # noqa: BLE001  (ImportError, or a torchvision that fails underneath it)
        return False, f"lpips not importable ({type(exc).__name__}: {exc}); see benchmarks/requirements.txt"
    return True, ""


def build_lpips(backbone: Any, device: torch.device) -> nn.Module:
    """LPIPS-VGG (lpips package, its own linear layers) with the backbone's conv weights copied into its trunk."""
    import warnings

    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation warning for `pretrained=False`
        model = lpips.LPIPS(net="vgg", pnet_rand=True, pretrained=True, verbose=False)
    src = backbone.net.features
    copied = 0
    with torch.no_grad():
        for name, p in model.net.named_parameters():
            _slice, idx, kind = name.split(".")  # e.g. slice1.0.weight; idx is torchvision's features index
            q = getattr(src[int(idx)], kind)
            if p.shape != q.shape:
                raise RuntimeError(f"lpips parameter {name} {tuple(p.shape)} ≠ features.{idx}.{kind} {tuple(q.shape)}")
            p.copy_(q)
            copied += 1
    if copied != 26:
        raise RuntimeError(f"copied {copied} VGG-16 tensors into lpips, expected 26 (13 convs × weight, bias)")
    return model.eval().to(device)


def bare_trunk(backbone: Any, deepest: str = "relu5_3", channels_last: bool = False) -> nn.Module:
    """Preprocessing + the VGG trunk up to `deepest` (inclusive), nothing else: the ceiling.

    A copy, with its conv weights stored in the layout its input will have (`channels_last` or contiguous NCHW;
    a mismatch makes every convolution re-layout its weights on every call), i.e. the best the trunk does in that
    layout, whatever other modules do to the backbone's own weights.
    """
    import copy

    path = backbone.resolve_layer(deepest)
    trunk = nn.Sequential(backbone.preprocess, backbone.net.features[: int(path.split(".")[-1]) + 1]).eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return copy.deepcopy(trunk).to(memory_format=fmt)


def top_selection(backbone: Any, selection_path: str | os.PathLike[str] | None, fraction: float = 0.25,
                  progress: bool = False) -> tuple[Any, Any, dict[str, Any]]:
    """(full selection with PE, its top-`fraction` restricted to the metric layers, provenance).

    From a selection.json when given, else from a quick analysis of the backbone's default layers (all 13 ReLUs of
    VGG-16, like `psychofeat analyze`) with the reduced protocol `QUICK_PROTOCOL`.
    """
    from psychofeat.selection import Selection

    metric_layers = [backbone.canonical_layer(lay) for lay in backbone.metric_layers]
    if selection_path is not None:
        full = Selection.load(selection_path)
        info: dict[str, Any] = {"source": str(Path(selection_path)), "fraction": fraction}
    else:
        from psychofeat.analysis import AnalysisConfig, analyze
        from psychofeat.stimuli import ProbeProtocol

        t = time.perf_counter()
        config = AnalysisConfig(protocol=ProbeProtocol(**QUICK_PROTOCOL), fraction=fraction)
        full = analyze(backbone, config=config, device=_device_of(backbone), progress=progress).selection
        info = {
            "source": "quick analyze (default layers, reduced protocol)",
            "protocol": QUICK_PROTOCOL,
            "fraction": fraction,
            "seconds": round(time.perf_counter() - t, 2),
        }
    return full, full.top(fraction).restrict(metric_layers), info


def selection_summary(sel: Any) -> dict[str, int]:
    return {k: len(v) for k, v in sel.channels.items()}


def _device_of(module: Any) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
