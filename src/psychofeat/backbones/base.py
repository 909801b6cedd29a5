"""What every backbone is: a network trunk, the preprocessing its weights expect, and named layers.

A user always feeds [0, 1] RGB images; the backbone's `Preprocessing` turns them into what the weights were
trained on (torchvision: RGB normalised by ImageNet mean/std; Caffe: BGR, 0-255, minus the mean pixel).
`Preprocessing`, the named preprocessings, `WeightsInfo` and the weight fingerprints are defined in
`psychofeat.weights.base` (weight sources need them without the networks) and re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from psychofeat.errors import InputError, unknown_name
from psychofeat.features import FeatureExtractor
from psychofeat.weights.base import (
    CAFFE_VGG,
    IDENTITY,
    PREPROCESSINGS,
    TORCHVISION,
    Preprocessing,
    WeightsInfo,
    fingerprint_check,
    params_sha256,
)

__all__ = [
    "CAFFE_VGG",
    "IDENTITY",
    "PREPROCESSINGS",
    "TORCHVISION",
    "Backbone",
    "Normalize",
    "Preprocessing",
    "WeightsInfo",
    "fingerprint_check",
    "from_module",
    "params_sha256",
]


class Normalize(nn.Module):
    """Apply a `Preprocessing` as one fused per-channel affine map: y_c = x_{perm(c)} · a_c + b_c."""

    a: torch.Tensor
    b: torch.Tensor

    def __init__(self, prep: Preprocessing) -> None:
        super().__init__()
        if prep.channel_order not in ("RGB", "BGR"):
            raise InputError(f"channel_order must be RGB or BGR, got {prep.channel_order!r}")
        self.prep = prep
        self.flip = prep.channel_order == "BGR"
        a = torch.tensor([prep.scale / s for s in prep.std], dtype=torch.float32).view(1, 3, 1, 1)
        b = torch.tensor([-m / s for m, s in zip(prep.mean, prep.std)], dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("a", a, persistent=False)
        self.register_buffer("b", b, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flip:
            x = x.flip(1)
        return torch.addcmul(self.b.to(x.dtype), x, self.a.to(x.dtype))


class Backbone(nn.Module):
    """A trunk plus preprocessing plus an ordered map of human layer names to module paths.

    `net` keeps the reference implementation's parameter names (e.g. torchvision's `features.0.weight`), so
    state dicts load unchanged. Layers can be addressed by their human name (`relu3_3`) or dotted path
    (`features.15`).
    """

    def __init__(
        self,
        name: str,
        net: nn.Module,
        layer_paths: Mapping[str, str],
        preprocessing: Preprocessing,
        weights: WeightsInfo,
        default_layers: Sequence[str] | None = None,
        metric_layers: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.net = net
        self.preprocess = Normalize(preprocessing)
        self.preprocessing = preprocessing
        self.weights_info = weights
        self.layer_paths: dict[str, str] = dict(layer_paths)
        self.default_layers: list[str] = list(default_layers or self.layer_paths)
        self.metric_layers: list[str] = list(metric_layers or self.default_layers)
        self._modules_by_path = dict(net.named_modules())
        for human, path in self.layer_paths.items():
            if path not in self._modules_by_path:
                raise InputError(f"{name}: layer {human!r} points to missing module {path!r}")
        self._channels: dict[str, int] | None = None
        self.eval()
        self.requires_grad_(False)

    # -- layer names ---------------------------------------------------------------------------
    def layer_names(self) -> list[str]:
        return list(self.layer_paths)

    def resolve_layer(self, layer: str) -> str:
        """Human name or dotted module path -> dotted module path; unknown names list close matches."""
        if layer in self.layer_paths:
            return self.layer_paths[layer]
        if layer in self._modules_by_path and layer != "":
            return layer
        known = list(self.layer_paths) or [p for p in self._modules_by_path if p]
        raise unknown_name(
            f"layer of {self.name}",
            layer,
            known,
            hint="Use a human layer name or a dotted module path (`psychofeat layers MODEL` lists them).",
        )

    def canonical_layer(self, layer: str) -> str:
        """The human name when one exists, else the dotted path (used as the key in results)."""
        path = self.resolve_layer(layer)
        for human, p in self.layer_paths.items():
            if p == path:
                return human
        return path

    def module(self, layer: str) -> nn.Module:
        return self._modules_by_path[self.resolve_layer(layer)]

    def depth_order(self, layers: Sequence[str]) -> list[str]:
        """Canonical layer names, without repeats, sorted by their position in the network (registration order)."""
        order = {path: i for i, path in enumerate(self._modules_by_path)}
        keyed = sorted((order[self.resolve_layer(lay)], self.canonical_layer(lay)) for lay in layers)
        return list(dict.fromkeys(name for _, name in keyed))

    def layer_channels(self, layers: Sequence[str] | None = None) -> dict[str, int]:
        """Output channels of each named layer, measured once with a small dry run."""
        if self._channels is None:
            names = self.layer_names()
            ext = FeatureExtractor(self, names)
            with torch.no_grad():
                feats = ext(self._dry_input())
            self._channels = {k: int(v.shape[1]) for k, v in feats.items()}
        if layers is None:
            return dict(self._channels)
        out = {}
        for layer in layers:
            key = self.canonical_layer(layer)
            if key not in self._channels:
                with torch.no_grad():
                    f = FeatureExtractor(self, [key])(self._dry_input())
                self._channels[key] = int(f[key].shape[1])
            out[key] = self._channels[key]
        return out

    def feature_numels(self, layers: Sequence[str], size: int = 64) -> dict[str, int]:
        """Elements in one image's feature map of each of `layers` for a `size`² input, from one dry run (what the
        memory estimate of `psychofeat.resources.forward_bytes` scales to the stimulus size)."""
        with torch.no_grad():
            feats = FeatureExtractor(self, list(layers))(self._dry_input(size))
        return {k: int(f[0].numel()) for k, f in feats.items()}

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        """Where and in which float type the network computes (its parameters'; CPU and float32 without any)."""
        param = next(self.net.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        return device, dtype

    def _dry_input(self, size: int = 64) -> torch.Tensor:
        """A uniform grey image on the network's device and dtype (for shape discovery)."""
        device, dtype = self._device_dtype()
        return torch.full((1, 3, size, size), 0.5, device=device, dtype=dtype)

    def as_input(self, x: torch.Tensor) -> torch.Tensor:
        """`x` on the network's device and in its parameter dtype.

        float16/bfloat16/float64 images are cast (their [0, 1] values survive the cast to fp32 unchanged or to within
        fp32 rounding); without it the first convolution fails with a dtype mismatch. Reduced-precision *compute* is
        autocast (the metric's `dtype`), not the dtype of the inputs. The cast is differentiable.
        """
        device, dtype = self._device_dtype()
        return x.to(device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the whole trunk on [0, 1] RGB input (mostly for classification checks)."""
        return self.net(self.preprocess(x))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weights={self.weights_info.source!r}, preprocessing={self.preprocessing.name!r}"


def from_module(
    module: nn.Module,
    layers: Sequence[str] | None = None,
    preprocessing: Preprocessing = TORCHVISION,
    name: str = "custom",
    weights: WeightsInfo | None = None,
) -> Backbone:
    """Wrap any `nn.Module` as a Backbone; layers are its dotted module paths (all leaf modules if None)."""
    if layers is None:
        layers = [n for n, m in module.named_modules() if n and not list(m.children())]
    paths = {layer: layer for layer in layers}
    info = weights or WeightsInfo(source="module", description=f"user-supplied {type(module).__name__}")
    return Backbone(name, module, paths, preprocessing, info, default_layers=list(layers))
