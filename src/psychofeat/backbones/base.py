"""What every backbone is: a network trunk, the preprocessing its weights expect, and named layers.

A user always feeds [0, 1] RGB images; the backbone's `Preprocessing` turns them into what the weights were
trained on (torchvision: RGB normalised by ImageNet mean/std; Caffe: BGR, 0-255, minus the mean pixel).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from psychofeat.errors import InputError, WeightsError, unknown_name


@dataclass(frozen=True)
class Preprocessing:
    """An affine map from [0, 1] RGB to the network's input space."""

    name: str
    channel_order: str  # "RGB" or "BGR"
    scale: float  # multiply [0, 1] values by this (1 or 255)
    mean: tuple[float, float, float]  # subtracted after scaling, in the network's channel order
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        return cls(
            name=str(d["name"]),
            channel_order=str(d["channel_order"]),
            scale=float(d["scale"]),
            mean=tuple(float(v) for v in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d.get("std", (1.0, 1.0, 1.0))),  # type: ignore[arg-type]
        )


TORCHVISION = Preprocessing("torchvision", "RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CAFFE_VGG = Preprocessing("caffe-vgg", "BGR", 255.0, (103.939, 116.779, 123.68))
IDENTITY = Preprocessing("identity", "RGB", 1.0, (0.0, 0.0, 0.0))

PREPROCESSINGS: dict[str, Preprocessing] = {p.name: p for p in (TORCHVISION, CAFFE_VGG, IDENTITY)}


class Normalize(nn.Module):
    """Apply a `Preprocessing` as one fused per-channel affine map: y_c = x_{perm(c)} · a_c + b_c."""

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


@dataclass
class WeightsInfo:
    """Where a backbone's weights came from: recorded in every manifest."""

    source: str  # "imagenet", "torchvision", "random:0", "shuffled:0", "file"
    description: str
    sha256: str | None = None  # of the state-dict file loaded (None for generated weights)
    path: str | None = None
    params_sha256: str | None = None  # of the parameter values actually in the network
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def params_sha256(module: nn.Module) -> str:
    """A checksum of a module's parameter and buffer values (identifies generated weights too)."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fingerprint_check(
    label: str, first: Callable[[nn.Module], torch.Tensor], first_name: str, expected_first: float, tol: float,
    expected_sha256: str,
) -> Callable[..., None]:
    """A check that recognises one published set of weights: one known value, then the checksum of all of them.

    The returned `verify(net, digest=None)` takes the parameters' checksum when the caller has it already.
    """

    def verify(net: nn.Module, digest: str | None = None) -> None:
        value = float(first(net).detach())
        if abs(value - expected_first) > tol:
            raise WeightsError(f"{label} imagenet weights: {first_name} = {value}, expected {expected_first}.")
        digest = digest or params_sha256(net)
        if digest != expected_sha256:
            raise WeightsError(
                f"{label} imagenet weights: parameter checksum {digest[:16]}… differs from the published "
                f"{expected_sha256[:16]}…; delete the cache entry and re-import."
            )

    return verify


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
            from psychofeat.features import FeatureExtractor

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
                from psychofeat.features import FeatureExtractor

                with torch.no_grad():
                    f = FeatureExtractor(self, [key])(self._dry_input())
                self._channels[key] = int(f[key].shape[1])
            out[key] = self._channels[key]
        return out

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
