"""Run stimuli through a backbone and record each channel's spatially averaged activation.

The forward pass stops at the deepest requested layer; stimuli are rendered batch by batch so memory does
not grow with the number of stimuli; channels are reduced on the fly (no per-channel Python loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from psychofeat.backbones.base import Backbone
from psychofeat.errors import InputError
from psychofeat.features import FeatureExtractor
from psychofeat.precision import compute_context, resolve_dtype
from psychofeat.progress import progress_bar


class Renderable(Protocol):
    """Anything that can produce images N×3×S×S in [0, 1] by index range (e.g. a `StimulusSet`)."""

    def __len__(self) -> int: ...

    def render(self, start: int, stop: int) -> torch.Tensor: ...


class TensorStimuli:
    """Wrap a ready tensor of images as a `Renderable`."""

    def __init__(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"stimuli must be N×3×H×W, got {tuple(images.shape)}.")
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def render(self, start: int, stop: int) -> torch.Tensor:
        return self.images[start:stop]




def probe(
    backbone: Backbone,
    stimuli: Renderable | torch.Tensor,
    layers: Sequence[str],
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = torch.float32,
    channels_last: bool = True,
    progress: bool = True,
    desc: str = "probe",
) -> dict[str, np.ndarray]:
    """Mean activation of every channel of `layers` for every stimulus: {layer: float64 array N×C}.

    Keys are the backbone's canonical layer names (human names where they exist). Unknown layer names
    raise an error listing close matches.
    """
    if isinstance(stimuli, torch.Tensor):
        stimuli = TensorStimuli(stimuli)
    if batch_size < 1:
        raise InputError(f"batch_size must be ≥ 1, got {batch_size}.")
    device = torch.device(device)
    dt = resolve_dtype(dtype, device)
    extractor = FeatureExtractor(backbone, layers)
    backbone.to(device)
    n = len(stimuli)
    out: dict[str, np.ndarray] = {}

    with torch.inference_mode(), compute_context(device, dt):
        bar = progress_bar(n, desc, "stim", enabled=progress, leave=False)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            x = stimuli.render(start, stop).to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)

            def sink(key: str, feat: torch.Tensor, start: int = start, stop: int = stop) -> None:
                means = feat.float().mean(dim=(2, 3)).double().cpu().numpy()
                if key not in out:
                    out[key] = np.empty((n, means.shape[1]), dtype=np.float64)
                out[key][start:stop] = means

            extractor.stream(x, sink)
            bar.update(stop - start)
        bar.close()
    return {k: out[k] for k in extractor.keys}
