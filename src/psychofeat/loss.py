"""`PerceptualLoss`: a training loss from selected channels, sharing its core with `PerceptualDistance`.

The backbone is frozen and stays in eval mode; gradients flow to the prediction (there is no hidden
`no_grad` on it; only the target's features are computed without a graph). An optional pixel term (L1 or
MSE) is added: loss = pixel_weight · L_pix + feature_weight · d_sel. Finite gradients are guaranteed in fp32
and bf16 autocast, even for constant images, by the ε inside the normalisation's square root.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from psychofeat.backbones.base import Backbone
from psychofeat.distance import DEFAULT_EPS, MIN_SIZE, build_core, check_weight
from psychofeat.errors import InputError
from psychofeat.images import check_pair
from psychofeat.selection import Selection

PIXEL_LOSSES = ("l1", "mse")


def _model_argument(model: str | Backbone, backbone: str | Backbone | None) -> str | Backbone:
    """The network: `model`, or the deprecated `backbone=` keyword, the loss's former name of it."""
    if backbone is None:
        return model
    if not (isinstance(model, str) and model == "vgg16"):  # both given (model is not its default)
        raise InputError("give the network once, as model=... (backbone= is its deprecated name).")
    warnings.warn("PerceptualLoss(backbone=...) and perceptual_loss(backbone=...) are deprecated; use model=..., "
                  "as PerceptualDistance does.", DeprecationWarning, stacklevel=3)
    return backbone


class PerceptualLoss(nn.Module):
    """pixel_weight · L_pix(pred, target) + feature_weight · selected-channel distance(pred, target).

    Args mirror `PerceptualDistance` (model, weights, selection, layers, mode, layer_weights; `backbone=` is the
    deprecated former name of `model`); `mode="mse"` with all channels is the
    classic VGG loss; `selection="pe", which="top"` the top-25 % PE channels of the selection bundled with the
    package. The distance is averaged over the batch; float16/float64 batches are cast to the backbone's dtype.
    Inputs are at least `MIN_SIZE` (32) px on a side, as the metric's.
    """

    #: metadata, as the metric's (the same for every instance)
    lower_better: ClassVar[bool] = True
    min_size: ClassVar[int] = MIN_SIZE

    def __init__(
        self,
        model: str | Backbone = "vgg16",
        weights: str | None = None,
        selection: Selection | str | os.PathLike[str] | None = None,
        layers: Sequence[str] | None = None,
        mode: str = "normalized",
        layer_weights: Mapping[str, float] | None = None,
        pixel_weight: float = 0.0,
        feature_weight: float = 1.0,
        pixel_loss: str = "l1",
        eps: float = DEFAULT_EPS,
        which: str | None = None,
        fraction: float | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        channels_last: bool = True,
        *,
        backbone: str | Backbone | None = None,
    ) -> None:
        super().__init__()
        model = _model_argument(model, backbone)
        if pixel_loss not in PIXEL_LOSSES:
            raise InputError(f"pixel_loss must be one of {', '.join(PIXEL_LOSSES)}, got {pixel_loss!r}.")
        pixel_weight = check_weight(pixel_weight, "pixel_weight")
        feature_weight = check_weight(feature_weight, "feature_weight")
        self.core = build_core(model, weights=weights, selection=selection, layers=layers, mode=mode,
                               layer_weights=layer_weights, eps=eps, which=which, fraction=fraction, seed=seed,
                               device=device, channels_last=channels_last)
        self.pixel_weight = float(pixel_weight)
        self.feature_weight = float(feature_weight)
        self.pixel_loss = pixel_loss
        self.channels_last = channels_last

    def feature_term(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = self.core.backbone.as_input(pred)  # fp16/fp64 batches: cast, gradients flow through
        target = self.core.backbone.as_input(target)
        if self.channels_last:
            pred = pred.contiguous(memory_format=torch.channels_last)
            target = target.contiguous(memory_format=torch.channels_last)
        maps = self.core.maps(pred, target.detach())  # the target's features are computed without a graph
        return self.core.combine(self.core.per_layer(maps)).mean()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # the metric's validator: the target as strictly as the metric's inputs (finite, in [0, 1]); the prediction
        # finite but free to stray outside [0, 1] while training
        check_pair(pred, target, MIN_SIZE, names=("pred", "target"), first_in_range=False)
        loss = pred.new_zeros((), dtype=torch.float32)
        if self.feature_weight > 0:
            loss = loss + self.feature_weight * self.feature_term(pred, target)
        if self.pixel_weight > 0:
            pixel_fn = F.l1_loss if self.pixel_loss == "l1" else F.mse_loss
            pix = pixel_fn(pred.float(), target.float())
            loss = loss + self.pixel_weight * pix
        return loss


@functools.lru_cache(maxsize=8)
def _cached_loss(model: str, weights: str | None, selection: str | None, layers: tuple[str, ...] | None, mode: str,
                 pixel_weight: float, feature_weight: float, pixel_loss: str, which: str | None,
                 fraction: float | None, seed: int, device: str) -> PerceptualLoss:
    return PerceptualLoss(model, weights, selection, layers, mode, None, pixel_weight, feature_weight, pixel_loss,
                          which=which, fraction=fraction, seed=seed, device=device)


def perceptual_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    model: str = "vgg16",
    weights: str | None = None,
    selection: str | os.PathLike[str] | None = None,
    layers: Sequence[str] | None = None,
    mode: str = "normalized",
    pixel_weight: float = 0.0,
    feature_weight: float = 1.0,
    pixel_loss: str = "l1",
    which: str | None = None,
    fraction: float | None = None,
    seed: int = 0,
    *,
    backbone: str | None = None,
) -> torch.Tensor:
    """Functional twin of `PerceptualLoss`; the network is built once per configuration and cached."""
    model = str(_model_argument(model, backbone))
    loss = _cached_loss(model, weights, str(selection) if selection is not None else None,
                        tuple(layers) if layers else None, mode, float(pixel_weight), float(feature_weight),
                        pixel_loss, which, fraction, seed, str(pred.device))
    return loss(pred, target)
