"""What both the backbones and their weight sources need to know about a set of weights: the preprocessing they
expect, where they came from, and how to recognise them once loaded.

A user always feeds [0, 1] RGB images; a `Preprocessing` turns them into what the weights were trained on
(torchvision: RGB normalised by ImageNet mean/std; Caffe: BGR, 0-255, minus the mean pixel). It lives here, below
`psychofeat.backbones`, so that weight sources and importers can name it without importing the networks
(backbones import weights, never the reverse).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from psychofeat.errors import WeightsError

if TYPE_CHECKING:
    import torch
    from torch import nn


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
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fingerprint_check(
    label: str, first: Callable[[Any], torch.Tensor], first_name: str, expected_first: float, tol: float,
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
