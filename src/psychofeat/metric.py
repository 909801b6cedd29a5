"""`PerceptualDistance`: a full-reference perceptual metric from selected channels (and its functional twin).

Built from a backbone, its weights and a channel selection (the `selection.json` of `psychofeat analyze`, or
all channels of given layers). Inputs are N×3×H×W float tensors in [0, 1], at least 32×32 px. Lower is more
similar. Reference features can be computed once and reused (`reference()`), which is how IQA sets with many
distorted versions of one reference are evaluated.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from psychofeat.backbones.base import Backbone
from psychofeat.distance import DEFAULT_EPS, MIN_SIZE, ReferenceFeatures, channel_distances
from psychofeat.distance import build_core as _build_core  # private: `build_core` here is the deprecated alias
from psychofeat.distance import build_selection as _build_selection
from psychofeat.errors import InputError
from psychofeat.features import FeatureExtractor
from psychofeat.images import REDUCTIONS as REDUCTIONS  # re-exported: the metric's reductions
from psychofeat.images import check_images, check_pair, check_reduction, reduce_batch
from psychofeat.precision import compute_context, resolve_dtype
from psychofeat.selection import Selection


@dataclass
class DistanceOutput:
    """Everything the metric can return: the distance, per-layer distances and the spatial map."""

    distance: torch.Tensor  # reduced as requested
    per_layer: dict[str, torch.Tensor]  # {layer: N}
    spatial: torch.Tensor | None = None  # N×1×H×W


class PerceptualDistance(nn.Module):
    """Selected-channel deep-feature distance between two image batches.

    Defaults, stated because they differ from the named metrics': `selection=None` means *all* channels of the
    model's metric layers (for the PE top 25 % pass `selection="pe", which="top"`, or use
    `create_metric("vgg16-pe-top25")`), and `reduction="mean"` returns one number for the batch (the mean over
    pairs; `create_metric` defaults to `reduction="none"`, one value per pair).

    Args:
        model: backbone name (see `psychofeat layers`) or a `Backbone` (`PerceptualLoss` takes the same).
        weights: weights source of the backbone (default: the model's original ImageNet weights).
        selection: a `Selection`, a `selection.json` path, "pe" for the selection bundled with the package (the
            default analysis of the network's original weights: top 25 % per layer by PE), or None for all
            channels of `layers`.
        layers: restrict to these layers (default: the selection's, or the model's metric layers).
        mode: "normalized" (unit-norm across selected channels) or "mse" (feature MSE).
        reduction: "none" (one value per pair), "mean" (default: the batch's mean) or "sum".
        which/fraction/seed: derive top/bottom/random/all from a selection file's PE ranking.
        dtype: compute dtype ("float32", "bfloat16", or "auto": bf16 only where the device computes it natively;
            distances are accumulated in fp32).
        channels_last: feed the backbone channels-last tensors (faster convolutions on CPU and GPU).
    """

    #: metadata of the metric, as torchmetrics' `higher_is_better` (the same for every instance)
    lower_better: ClassVar[bool] = True
    min_size: ClassVar[int] = MIN_SIZE

    def __init__(
        self,
        model: str | Backbone = "vgg16",
        weights: str | None = None,
        selection: Selection | str | os.PathLike[str] | None = None,
        layers: Sequence[str] | None = None,
        mode: str = "normalized",
        reduction: str = "mean",
        layer_weights: Mapping[str, float] | None = None,
        eps: float = DEFAULT_EPS,
        which: str | None = None,
        fraction: float | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.core = _build_core(model, weights=weights, selection=selection, layers=layers, mode=mode,
                               layer_weights=layer_weights, eps=eps, which=which, fraction=fraction, seed=seed,
                               device=device, channels_last=channels_last)
        self.dtype = resolve_dtype(dtype, device)
        self.channels_last = channels_last

    @property
    def selection(self) -> Selection:
        return self.core.selection

    @property
    def backbone(self) -> Backbone:
        return self.core.backbone

    def _device(self) -> torch.device:
        p = next(self.core.backbone.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        x = self.core.backbone.as_input(x)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def reference(self, y: torch.Tensor) -> ReferenceFeatures:
        """Features of reference images for repeated comparisons (`forward(x, ref=...)`)."""
        check_images(y, "reference", MIN_SIZE)
        with compute_context(self._device(), self.dtype):
            return self.core.reference(self._prep(y))

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        ref: ReferenceFeatures | None = None,
        per_layer: bool = False,
        spatial: bool = False,
    ) -> torch.Tensor | DistanceOutput:
        """Distance between `x` and `y` (or cached `ref`); a `DistanceOutput` when per_layer/spatial is asked."""
        if y is not None:
            check_pair(x, y, MIN_SIZE, names=("x", "y"))
            y = self._prep(y)
        else:
            check_images(x, "x", MIN_SIZE)
            if ref is None:
                raise InputError("give the reference image y (or ref=metric.reference(y)).")
        with compute_context(self._device(), self.dtype):
            maps = self.core.maps(self._prep(x), y, ref)
        layers = self.core.per_layer(maps)
        d = reduce_batch(self.core.combine(layers), self.reduction)
        if not (per_layer or spatial):
            return d
        sp = self.core.spatial(maps, (int(x.shape[-2]), int(x.shape[-1]))) if spatial else None
        return DistanceOutput(d, {k: reduce_batch(v, self.reduction) for k, v in layers.items()}, sp)

    def extra_repr(self) -> str:
        return f"mode={self.core.mode!r}, selection={self.selection.label()!r}, channels={self.selection.n_selected()}"


@functools.lru_cache(maxsize=8)
def _cached_metric(model: str, weights: str | None, selection: str | None, layers: tuple[str, ...] | None, mode: str,
                   which: str | None, fraction: float | None, seed: int, device: str, dtype: str) -> PerceptualDistance:
    return PerceptualDistance(model, weights, selection, layers, mode, "none", which=which, fraction=fraction,
                              seed=seed, device=device, dtype=dtype)


def perceptual_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    model: str = "vgg16",
    weights: str | None = None,
    selection: str | os.PathLike[str] | None = None,
    layers: Sequence[str] | None = None,
    mode: str = "normalized",
    reduction: str = "mean",
    which: str | None = None,
    fraction: float | None = None,
    seed: int = 0,
    dtype: str = "float32",
) -> torch.Tensor:
    """Functional twin of `PerceptualDistance`; the network is built once per configuration and cached.

    Same defaults as the module: all channels of the model's metric layers (`selection=None`; "pe" for the bundled
    PE selection) and the batch's mean (`reduction="mean"`; "none" for one value per pair)."""
    check_reduction(reduction)
    metric = _cached_metric(model, weights, str(selection) if selection is not None else None,
                            tuple(layers) if layers else None, mode, which, fraction, seed, str(x.device), dtype)
    return reduce_batch(metric(x, y), reduction)  # type: ignore[arg-type]


class _ChannelDistances(nn.Module):
    """Single-channel distances of every channel of `layers`, from one forward pass per image pair.

    For channel m: mean_{h,w}(φ_m(x) − φ_m(y))² / (mean_{h,w} φ_m(y)² + ε), y the reference; returns
    {layer: N×C}. Deprecated: it was the tests' oracle (now tests/oracles.py); experiments use the batched
    `psychofeat.distance_bank.SelectionBank`, and `psychofeat.distance.channel_distances` is the formula.
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

    def reference(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(y, "reference", MIN_SIZE)
        feats: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            self.extractor.stream(self._prep(y), lambda k, f: feats.__setitem__(k, f.float()))
        return feats

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward(self, x: torch.Tensor, ref: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_images(x, "x", MIN_SIZE)
        out: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            self.extractor.stream(
                self._prep(x), lambda k, f: out.__setitem__(k, channel_distances(f, ref[k], self.eps))
            )
        return out


def _build_core_positional(model: str | Backbone, *args: Any, **kwargs: Any) -> Any:
    """`build_core` with its former positional arguments (the deprecated `psychofeat.metric.build_core`)."""
    names = ("weights", "selection", "layers", "mode", "layer_weights", "eps", "which", "fraction", "seed", "device",
             "channels_last")
    return _build_core(model, **dict(zip(names, args)), **kwargs)


def _build_selection_positional(backbone: Backbone, *args: Any, **kwargs: Any) -> Selection:
    """`build_selection` with its former positional arguments (the deprecated `psychofeat.metric.build_selection`)."""
    names = ("selection", "layers", "which", "fraction", "seed")
    return _build_selection(backbone, **dict(zip(names, args)), **kwargs)


#: deprecated names of this module -> (the object, where it lives now)
_DEPRECATED: dict[str, tuple[Callable[..., Any], str]] = {
    "build_core": (_build_core_positional, "psychofeat.distance.build_core (keyword-only arguments)"),
    "build_selection": (_build_selection_positional,
                        "psychofeat.distance.build_selection (keyword-only arguments)"),
    "ChannelDistances": (_ChannelDistances, "psychofeat.distance.channel_distances on FeatureExtractor features "
                         "(psychofeat.distance_bank.SelectionBank computes them batched; the tests' oracle is "
                         "tests/oracles.py)"),
}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        obj, new = _DEPRECATED[name]
        warnings.warn(f"psychofeat.metric.{name} is deprecated; use {new}.", DeprecationWarning, stacklevel=2)
        return obj
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
