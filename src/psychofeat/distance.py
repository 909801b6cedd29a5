"""The one implementation of "features of selected channels → distance", shared by the metric and the loss.

For layers k with selected channel sets S_k (SCIENCE.md):
    d(x, y) = Σ_k w_k · mean_{h,w} Σ_{m∈S_k} (φ̂_km(x) − φ̂_km(y))²,   φ̂_km = φ_km / sqrt(Σ_{m'∈S_k} φ_km'² + ε)
("normalized"; ε inside the square root keeps gradients finite for all-zero features), or
    d(x, y) = Σ_k w_k · mean_{h,w,m∈S_k} (φ_km(x) − φ_km(y))²
("mse": feature MSE, the classic VGG loss). w_k = 1/#layers unless given. Nothing is learned from human data.

Soft selections (`Selection.channel_weights`, e.g. `which="soft-pe"`) give channel m of layer k a weight
a_km ∈ [0, 1] (largest 1 per layer) instead of in/out. The channel enters as √a_km·φ_km, everywhere:
    normalized: Σ_m a_m (φ_m(x)/n_x − φ_m(y)/n_y)²,  n² = Σ_m a_m φ_m² + ε,
    mse:        Σ_m a_m (φ_m(x) − φ_m(y))² / Σ_m a_m      (a weighted mean over channels).
So weights that are 1 on S and 0 elsewhere give exactly the hard selection S, and equal weights exactly all
channels; the normalized distance does not depend on the scale of a layer's weights except through ε (which
is why the largest is fixed at 1 rather than the mean). Channels of weight 0 are not gathered at all, so their
gradient is exactly 0 and never NaN.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from psychofeat import bundled
from psychofeat.backbones import load_backbone
from psychofeat.backbones.base import Backbone
from psychofeat.errors import InputError
from psychofeat.features import FeatureExtractor
from psychofeat.precision import check_device
from psychofeat.selection import Selection

MODES = ("normalized", "mse")
DEFAULT_EPS = 1e-10
#: smallest height and width of the metric's and the loss's inputs, in px. VGG-16's deepest metric layer, relu5_3,
#: lies behind four 2× poolings (stride 16): a 16 px input leaves it one position (below that the fourth pooling
#: fails), 32 px the 2×2 positions that make its spatial mean more than one border value. One rule for both, since
#: they run the same core (`psychofeat.metrics_registry.DEEP_MIN_SIZE` states it without importing torch).
MIN_SIZE = 32


def check_weight(value: Any, name: str) -> float:
    """A weight of a distance or loss term as a float: finite and ≥ 0 (a NaN weight would otherwise act silently as 0
    in comparisons and poison the sum). Shared by the metric and the loss."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a finite number ≥ 0, got {type(value).__name__} {value!r}.") from None
    if isinstance(value, bool) or not math.isfinite(v) or v < 0:
        raise InputError(f"{name} must be a finite number ≥ 0, got {v:g}.")
    return v


def channel_sq_sum(f: torch.Tensor) -> torch.Tensor:
    """Σ_channels f² at every position: N×C×H×W → N×H×W.

    One reading pass with no N×C×H×W temporary (`vector_norm` instead of `pow(2).sum(1)`), which matters because
    these element-wise passes over the big early feature maps are the metric's only cost beyond the trunk's
    convolutions. Its gradient is finite at f = 0 (PyTorch masks the norm's derivative there).
    """
    return torch.linalg.vector_norm(f, dim=1).square()


def inv_norm(f: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """1 / sqrt(Σ_channels φ² + ε) at every position (N×1×H×W)."""
    return torch.rsqrt(channel_sq_sum(f).unsqueeze(1) + eps)


def unit_normalize(f: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """φ / sqrt(Σ_channels φ² + ε) at every position (N×C×H×W)."""
    return f * inv_norm(f, eps)


def channel_scale(weights: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """√weights as a 1×C×1×1 tensor of `like`'s dtype and device: the factor of a soft selection's channels."""
    return weights.to(device=like.device, dtype=like.dtype).sqrt().view(1, -1, 1, 1)


def pair_distance_map(
    fx: torch.Tensor, fy: torch.Tensor, mode: str, eps: float = DEFAULT_EPS, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-position distance N×H×W between raw feature maps of selected channels (no dtype conversion).

    normalized: Σ_c (φx·rx − φy·ry)² with r = 1/sqrt(Σ_c φ² + ε), as one multiply, one fused multiply-add and one
    reduction (the unit-normalised maps of both images are never stored); mse: mean_c (φx − φy)².
    `weights` (C, positive): a soft selection's channel weights (module docstring: √w·φ, weighted mean in mse).
    """
    if weights is not None:
        scale = channel_scale(weights, fx)
        fx, fy = fx * scale, fy * scale
        if mode == "mse":
            return channel_sq_sum(fx - fy) / weights.sum().to(fx.dtype)
    if mode == "normalized":
        d = fx * inv_norm(fx, eps)
        if d.shape == torch.broadcast_shapes(d.shape, fy.shape):
            d = d.addcmul_(fy, inv_norm(fy, eps), value=-1.0)  # in place: no second N×C×H×W buffer
        else:  # fy broadcasts over more images than fx
            d = torch.addcmul(d, fy, inv_norm(fy, eps), value=-1.0)
        return channel_sq_sum(d)
    if mode == "mse":
        return channel_sq_sum(fx - fy) / fx.shape[1]
    raise InputError(f"unknown distance mode {mode!r}; choose one of {', '.join(MODES)}.")


def channel_distances(fx: torch.Tensor, fy: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """Single-channel distances N×C: mean_{h,w}(φx − φy)² / (mean_{h,w} φy² + ε), y the reference."""
    fx, fy = fx.float(), fy.float()
    return (fx - fy).pow(2).mean(dim=(2, 3)) / (fy.pow(2).mean(dim=(2, 3)) + eps)


@dataclass
class ReferenceFeatures:
    """Selected (and, in normalized mode, unit-normalised) features of reference images, reusable across calls."""

    features: dict[str, torch.Tensor]
    shape: tuple[int, ...]


class SelectedChannelDistance(nn.Module):
    """Backbone + channel selection + distance mode: per-layer distance maps between image batches."""

    def __init__(
        self,
        backbone: Backbone,
        selection: Selection,
        mode: str = "normalized",
        layer_weights: Mapping[str, float] | None = None,
        eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise InputError(f"unknown distance mode {mode!r}; choose one of {', '.join(MODES)}.")
        if not check_weight(eps, "eps") > 0:
            raise InputError(f"eps must be positive, got {eps}.")
        selection.check()
        self.backbone = backbone
        self.mode = mode
        self.eps = float(eps)
        self.selection = selection
        self.layers = [backbone.canonical_layer(lay) for lay in selection.layers]
        n_ch = backbone.layer_channels(self.layers)
        selection.check_compatible(backbone.name, n_ch, backbone.weights_info.params_sha256)
        self.extractor = FeatureExtractor(backbone, self.layers)
        weights = dict(layer_weights) if layer_weights else {lay: 1.0 / len(self.layers) for lay in self.layers}
        unknown = [k for k in weights if k not in self.layers]
        if unknown or len(weights) != len(self.layers):
            raise InputError(
                f"layer_weights must give one weight per selected layer {self.layers}; got {list(weights)}.")
        self.layer_weights = {lay: check_weight(weights[lay], f"layer_weights[{lay!r}]") for lay in self.layers}
        if not sum(self.layer_weights.values()) > 0:
            raise InputError(f"layer_weights are all 0; give at least one layer a positive weight ({self.layers}).")
        self._index_names: dict[str, str | None] = {}
        self._scale_names: dict[str, str | None] = {}  # √weight of each selected channel (soft selections)
        self._counts: dict[str, float] = {}  # Σ weights: the mse mode's denominator
        for i, lay in enumerate(self.layers):
            idx = torch.as_tensor(selection.channels[selection.layers[i]], dtype=torch.long)
            if idx.numel() == 0:
                raise InputError(f"no channels are selected in layer {lay!r} (e.g. none of its channels responds "
                                 "to gratings); restrict the metric to other layers with layers=[...].")
            if idx.numel() == n_ch[lay] and bool((idx == torch.arange(n_ch[lay])).all()):
                self._index_names[lay] = None  # all channels: no gather
            else:
                name = f"_idx_{i}"
                self.register_buffer(name, idx, persistent=False)
                self._index_names[lay] = name
            w = selection.weights_of(selection.layers[i])
            self._counts[lay] = float(idx.numel()) if w is None else float(w.sum())
            if w is None:
                self._scale_names[lay] = None
            else:
                if w.shape != (idx.numel(),) or not (w > 0).all():
                    raise InputError(f"layer {lay!r}: channel weights must be positive, one per selected channel.")
                self.register_buffer(f"_scale_{i}", torch.as_tensor(w, dtype=torch.float32).sqrt().view(1, -1, 1, 1),
                                     persistent=False)
                self._scale_names[lay] = f"_scale_{i}"

    def train(self, mode: bool = True) -> SelectedChannelDistance:
        """The backbone always stays in eval mode (frozen statistics, deterministic features)."""
        super().train(mode)
        self.backbone.eval()
        return self

    def _select(self, layer: str, f: torch.Tensor) -> torch.Tensor:
        """The selected channels of `f` in fp32, each times √weight in a soft selection."""
        f = self._gather(layer, f).float()
        scale = self._scale_names[layer]
        return f if scale is None else f * getattr(self, scale)

    def _gather(self, layer: str, f: torch.Tensor) -> torch.Tensor:
        name = self._index_names[layer]
        if name is None:
            return f
        idx = getattr(self, name)
        if f.dim() == 4 and not f.is_contiguous() and f.is_contiguous(memory_format=torch.channels_last):
            # channels-last: gather columns of the (N·H·W)×C matrix, which keeps the result channels-last;
            # index_select(1) here would produce NCHW through a strided gather (measured ~20× slower with the
            # reductions that follow, enough to make a top-25% selection slower than all channels).
            n, c, h, w = f.shape
            g = f.permute(0, 2, 3, 1).reshape(n * h * w, c).index_select(1, idx)
            return g.view(n, h, w, idx.numel()).permute(0, 3, 1, 2)
        return f.index_select(1, idx)

    def _prepare(self, layer: str, f: torch.Tensor) -> torch.Tensor:
        """Reference features as cached: selected, fp32, unit-normalised in normalized mode."""
        f = self._select(layer, f)
        return unit_normalize(f, self.eps) if self.mode == "normalized" else f

    def _compare(self, layer: str, fx: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
        """Distance map between raw features `fx` and prepared reference features `py`."""
        fx = self._select(layer, fx)
        if self.mode == "normalized":  # py − φx·rx in one fused pass
            return channel_sq_sum(torch.addcmul(py, fx, inv_norm(fx, self.eps), value=-1.0))
        return self._mse(layer, fx, py)

    def _mse(self, layer: str, fx: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
        """Σ_c (φx − φy)² / Σ weights (the mean over channels of a hard selection), on √weight-scaled features."""
        return channel_sq_sum(fx - fy) / self._counts[layer]

    def reference(self, y: torch.Tensor) -> ReferenceFeatures:
        """Features of reference images, computed once (no gradient) and reused by `maps(x, ref=...)`."""
        feats: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            self.extractor.stream(y, lambda k, f: feats.__setitem__(k, self._prepare(k, f)))
        return ReferenceFeatures(feats, tuple(y.shape))

    def maps(
        self, x: torch.Tensor, y: torch.Tensor | None = None, ref: ReferenceFeatures | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-layer distance maps {layer: N×H_k×W_k}. Give `y` (one joint forward pass) or cached `ref`."""
        out: dict[str, torch.Tensor] = {}
        if ref is not None:
            if tuple(ref.shape[1:]) != tuple(x.shape[1:]) or ref.shape[0] not in (1, x.shape[0]):
                raise InputError(f"reference features are for shape {ref.shape}, input is {tuple(x.shape)}.")
            self.extractor.stream(x, lambda k, f: out.__setitem__(k, self._compare(k, f, ref.features[k])))
            return out
        if y is None:
            raise InputError("give either y or ref.")
        if torch.is_grad_enabled() and x.requires_grad and not y.requires_grad:
            # training: the target needs no graph, so its features are computed without one
            return self.maps(x, ref=self.reference(y))
        n = x.shape[0]

        def sink(k: str, f: torch.Tensor) -> None:
            f = self._select(k, f)
            out[k] = (pair_distance_map(f[:n], f[n:], "normalized", self.eps) if self.mode == "normalized"
                      else self._mse(k, f[:n], f[n:]))

        self.extractor.stream(torch.cat([x, y], dim=0), sink)
        return out

    def per_layer(self, maps: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Spatial means of the maps: {layer: N}."""
        return {k: m.mean(dim=(1, 2)) for k, m in maps.items()}

    def combine(self, per_layer: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Σ_k w_k d_k: the distance of each image pair (N)."""
        return torch.stack([self.layer_weights[k] * per_layer[k] for k in self.layers], dim=0).sum(dim=0)

    def spatial(self, maps: Mapping[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Σ_k w_k · upsample(map_k) at the input resolution (N×1×H×W), as LPIPS' spatial output."""
        acc = None
        for k in self.layers:
            m = F.interpolate(maps[k].unsqueeze(1), size=size, mode="bilinear", align_corners=False)
            acc = self.layer_weights[k] * m if acc is None else acc + self.layer_weights[k] * m
        assert acc is not None
        return acc


def build_selection(
    backbone: Backbone,
    *,
    selection: Selection | str | os.PathLike[str] | None = None,
    layers: Sequence[str] | None = None,
    which: str | None = None,
    fraction: float | None = None,
    seed: int = 0,
) -> Selection:
    """Resolve the channel selection: a Selection, a selection JSON path, "pe" (the bundled selection of the
    backbone, see `psychofeat.bundled`), or None for all channels of `layers`."""
    if selection is None:
        chosen = [backbone.canonical_layer(lay) for lay in (layers or backbone.metric_layers)]
        return Selection.all_channels(
            backbone.name,
            backbone.layer_channels(chosen),
            {"source": backbone.weights_info.source, "params_sha256": backbone.weights_info.params_sha256},
        )
    if isinstance(selection, Selection):
        sel = selection
    elif isinstance(selection, str) and selection == bundled.KEYWORD:
        bundled.check_weights(backbone.name, backbone.weights_info.params_sha256, backbone.weights_info.source)
        sel = bundled.load_bundled(backbone.name)
    else:
        sel = Selection.load(selection)
    if which is not None:
        sel = sel.select(which, fraction if fraction is not None else (sel.fraction or 0.25), seed)
    if layers:
        sel = sel.restrict([backbone.canonical_layer(lay) for lay in layers])
    return sel


def build_core(
    model: str | Backbone,
    *,
    weights: str | None = None,
    selection: Selection | str | os.PathLike[str] | None = None,
    layers: Sequence[str] | None = None,
    mode: str = "normalized",
    layer_weights: Mapping[str, float] | None = None,
    eps: float = DEFAULT_EPS,
    which: str | None = None,
    fraction: float | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
) -> SelectedChannelDistance:
    """The shared core of the metric and the loss: backbone + selection -> distance, on `device`."""
    check_device(device)
    backbone = model if isinstance(model, Backbone) else load_backbone(model, weights, device=device)
    sel = build_selection(backbone, selection=selection, layers=layers, which=which, fraction=fraction, seed=seed)
    core = SelectedChannelDistance(backbone, sel, mode, layer_weights, eps).to(device)
    if channels_last:
        # weights in the layout of the inputs: otherwise every convolution re-lays out its weights on every
        # call (~59 MB of copies per VGG-16 forward). Values are unchanged; a shared backbone just gets faster.
        core.backbone.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it
    return core
