"""Metrics as banks: many image distances to a blank from one pass over the images.

A *bank* is a set of metrics evaluated together (`DistanceBank`): `FeatureBank` holds deep-feature metrics that
share one backbone and its forward passes (read off each pass at once by `psychofeat.distance_bank.SelectionBank`),
`ClassicBank` PSNR and SSIM. Used by the detection-threshold study (`psychofeat.hvs.detection`, which plans the
banks from its metric tokens and searches thresholds with them) and by `psychofeat.experiments.variants`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from psychofeat.backbones.base import Backbone
from psychofeat.distance import DEFAULT_EPS
from psychofeat.distance_bank import ReferenceStats, SelectionBank
from psychofeat.errors import InputError, unknown_name
from psychofeat.features import FeatureExtractor
from psychofeat.selection import ChannelWeights


class DistanceBank(Protocol):
    """A set of metrics evaluated together: ``distances`` returns N×M distances of `images` to `blank`.

    `index` gives the stimulus index of each image (real metrics ignore it; oracle metrics in tests use it)."""

    label: str
    names: list[str]
    groups: list[str]

    def distances(self, images: torch.Tensor, blank: torch.Tensor, index: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FeatureMetric:
    """One deep-feature metric: channels per layer (None = all; `ChannelWeights` for a soft selection), mode,
    and how it is grouped in the report."""

    name: str
    channels: Mapping[str, np.ndarray | ChannelWeights | None]
    mode: str = "normalized"
    group: str = "all"
    seed: int | None = None


class FeatureBank:
    """Deep-feature metrics that share one backbone and its forward passes.

    Each metric's distance is `PerceptualDistance`'s (SCIENCE.md: per position, the squared difference of the
    features of its channels — unit-normalised across them in "normalized" mode, or their mean squared
    difference in "mse" mode — averaged over positions, layers weighted 1/#layers); tested to agree with it.
    All metrics are read off each forward pass at once by `psychofeat.distance_bank.SelectionBank` in float64,
    whose identity is written in δ = φx − φy so that distances of threshold-level contrasts (δ ~ 1e-4 of the
    features and less) keep their precision (see `distance_from_sums`)."""

    def __init__(self, backbone: Backbone, metrics: Sequence[FeatureMetric], label: str,
                 device: str | torch.device = "cpu", eps: float = DEFAULT_EPS) -> None:
        if not metrics:
            raise InputError("a feature bank needs at least one metric.")
        self.backbone = backbone.to(device)
        self.metrics = list(metrics)
        self.label = label
        self.device = torch.device(device)
        self.eps = eps
        self.names = [m.name for m in self.metrics]
        self.groups = [m.group for m in self.metrics]
        channels = {m.name: {backbone.canonical_layer(k): v for k, v in m.channels.items()} for m in self.metrics}
        self.layers = backbone.depth_order([k for c in channels.values() for k in c])
        self.extractor = FeatureExtractor(backbone, self.layers)
        # float64: threshold-level differences; torch's threads: the float64 products are large enough to gain
        self.bank = SelectionBank(channels, self.layers, backbone.layer_channels(self.layers),
                                  {m.name: m.mode for m in self.metrics}, eps, device,
                                  dtype=torch.float64, threads=None)
        self._columns = [self.bank.column[m.name] for m in self.metrics]
        self._blank: dict[tuple[float, ...], ReferenceStats] = {}

    def describe(self) -> dict[str, Any]:
        """Provenance: network, weights (with parameter hash), preprocessing and layers of this bank."""
        return {"model": self.backbone.name, "weights": self.backbone.weights_info.to_dict(),
                "preprocessing": self.backbone.preprocessing.to_dict(), "layers": self.layers,
                "metrics": {m.name: {"mode": m.mode, "layers": list(m.channels),
                                     "n_channels": {k: (None if v is None else len(getattr(v, "indices", v)))
                                                    for k, v in m.channels.items()}}
                            for m in self.metrics}}

    def _reference(self, blank: torch.Tensor) -> ReferenceStats:
        """The blank's terms of every metric, once per blank: a blank is uniform, so its shape and level identify
        it (datasets shown on displays of different mean level share sizes)."""
        key = (*blank.shape, float(blank.flatten()[0]))
        if key not in self._blank:
            self._blank[key] = self.bank.reference(self.extractor(blank.to(self.device)))
        return self._blank[key]

    def distances(self, images: torch.Tensor, blank: torch.Tensor, index: np.ndarray) -> np.ndarray:
        per_layer = np.empty((images.shape[0], len(self.layers), self.bank.n_columns))
        with torch.inference_mode():
            ref = self._reference(blank)

            def sink(layer: str, feat: torch.Tensor) -> None:
                li = self.layers.index(layer)
                for i in range(feat.shape[0]):  # one image at a time bounds the memory of the sums
                    per_layer[i, li] = self.bank.compare_layer(layer, feat[i : i + 1], ref)[0]

            self.extractor.stream(images.to(self.device), sink)
        return self.bank.combine(per_layer)[:, self._columns]


class ClassicBank:
    """PSNR (as its MSE) and SSIM (as 1 − SSIM), computed in float64 so tiny threshold-level differences
    keep their precision."""

    label = "classic"

    def __init__(self, names: Sequence[str]) -> None:
        unknown = [n for n in names if n not in ("psnr", "ssim")]
        if unknown:
            raise unknown_name("classic metric", unknown[0], ["psnr", "ssim"])
        self.names = list(names)
        self.groups = ["classic"] * len(self.names)

    def distances(self, images: torch.Tensor, blank: torch.Tensor, index: np.ndarray) -> np.ndarray:
        from psychofeat.classic import mse, ssim

        x = images.double()
        y = blank.double().expand_as(x)
        cols = []
        for n in self.names:
            cols.append(mse(x, y) if n == "psnr" else 1.0 - ssim(x, y))
        return torch.stack(cols, dim=1).cpu().numpy()


__all__ = ["ClassicBank", "DistanceBank", "FeatureBank", "FeatureMetric"]
