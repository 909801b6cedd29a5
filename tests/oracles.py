"""Test oracles: straightforward, unoptimised computations that the package's fast routes are checked against.

They live with the tests, not in the package: nothing in psychofeat computes through them. (`ChannelDistances` was
`psychofeat.metric.ChannelDistances`; that name still resolves there, deprecated.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from psychofeat.backbones.base import Backbone
from psychofeat.distance import DEFAULT_EPS, MIN_SIZE, channel_distances
from psychofeat.features import FeatureExtractor
from psychofeat.images import check_images


class ChannelDistances(nn.Module):
    """Single-channel distances of every channel of `layers`, from one forward pass per image pair.

    For channel m: mean_{h,w}(φ_m(x) − φ_m(y))² / (mean_{h,w} φ_m(y)² + ε), y the reference
    (`psychofeat.distance.channel_distances`, one layer at a time); returns {layer: N×C}. The oracle of each
    channel's own agreement with human judgments (`psychofeat iqa`'s `channel_distances.npz`, computed batched by
    `psychofeat.distance_bank`); test_metric checks it against numpy.
    """

    def __init__(
        self, backbone: Backbone, layers: Sequence[str], eps: float = DEFAULT_EPS, channels_last: bool = True
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.extractor = FeatureExtractor(backbone, layers)
        self.layers = self.extractor.keys
        self.eps = eps
        self.channels_last = channels_last

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def reference(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(y, "reference", MIN_SIZE)
        feats: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            self.extractor.stream(self._prep(y), lambda k, f: feats.__setitem__(k, f.float()))
        return feats

    def forward(self, x: torch.Tensor, ref: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_images(x, "x", MIN_SIZE)
        out: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            self.extractor.stream(
                self._prep(x), lambda k, f: out.__setitem__(k, channel_distances(f, ref[k], self.eps))
            )
        return out
