"""Features of named layers, with the forward pass stopped as soon as the deepest requested layer is done.

Works for any `nn.Module` (hooks, not a re-implementation of its forward), so the same code serves VGG-16,
SqueezeNet, EfficientNet or a user's model. A layer's output is handed to a callback the moment it exists,
which lets the metric reduce it at once instead of keeping every feature map alive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import torch
from torch import nn

from psychofeat.errors import InputError


class LayeredNetwork(Protocol):
    """What the extractor needs from a network: its named layers, its preprocessing and its trunk.

    `psychofeat.backbones.Backbone` is the one in use; it is described here by shape rather than imported, because
    the backbones use this extractor (to count their channels) and must not be imported back.
    """

    @property
    def name(self) -> str: ...

    @property
    def net(self) -> nn.Module: ...

    @property
    def preprocess(self) -> Callable[[torch.Tensor], torch.Tensor]: ...

    def canonical_layer(self, layer: str) -> str: ...

    def resolve_layer(self, layer: str) -> str: ...

    def module(self, layer: str) -> nn.Module: ...


class _StopForward(Exception):
    """Raised from a hook once every requested layer has produced its output."""


@contextlib.contextmanager
def _no_grad_outside_inference() -> Iterator[None]:
    with torch.inference_mode(False), torch.no_grad():
        yield


class FeatureExtractor(nn.Module):
    """Capture the outputs of `layers` of a backbone for [0, 1] RGB input.

    If a module runs several times in one forward pass (shared modules), its first output is used.
    """

    def __init__(self, backbone: LayeredNetwork, layers: Sequence[str], preprocess: bool = True) -> None:
        super().__init__()
        if not layers:
            raise InputError("at least one layer is required.")
        self.backbone = backbone
        self.keys: list[str] = []
        self.paths: list[str] = []
        for layer in layers:
            key = backbone.canonical_layer(layer)
            if key in self.keys:
                continue
            self.keys.append(key)
            self.paths.append(backbone.resolve_layer(layer))
        # a plain list, so the hooked modules are not registered as submodules a second time
        self._hooked: list[nn.Module] = [backbone.module(p) for p in self.paths]
        self.preprocess = preprocess
        self._clone = False  # switched on if an in-place op is found to modify a captured output

    def _run(
        self, x: torch.Tensor, sink: Callable[[str, torch.Tensor], None], track_versions: bool = False
    ) -> list[tuple[str, torch.Tensor, int]]:
        captured: dict[str, torch.Tensor] = {}
        versions: list[tuple[str, torch.Tensor, int]] = []
        handles = []
        n = len(self.keys)

        def make_hook(key: str) -> Callable[..., None]:
            def hook(_module: nn.Module, _inp: object, out: torch.Tensor) -> None:
                if key in captured:
                    return
                if not isinstance(out, torch.Tensor):
                    raise InputError(f"layer {key!r} does not output a single tensor ({type(out).__name__}).")
                t = out.clone() if self._clone else out
                captured[key] = t
                if track_versions:
                    versions.append((key, t, t._version))
                sink(key, t)
                if len(captured) == n:
                    raise _StopForward

            return hook

        for key, module in zip(self.keys, self._hooked):
            handles.append(module.register_forward_hook(make_hook(key)))
        try:
            inp = self.backbone.preprocess(x) if self.preprocess else x
            self.backbone.net(inp)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [k for k in self.keys if k not in captured]
        if missing:
            raise InputError(f"layers {missing} were never executed by {self.backbone.name}'s forward pass.")
        return versions

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return {layer: feature map} for the requested layers (keys are human names when known)."""
        out: dict[str, torch.Tensor] = {}
        # inference tensors carry no version counter; run as plain no-grad tensors so in-place ops are detected
        ctx = (
            _no_grad_outside_inference()
            if torch.is_inference_mode_enabled()
            else contextlib.nullcontext()
        )
        with ctx:
            versions = self._run(x, out.__setitem__, track_versions=not self._clone)
            if not self._clone and any(t._version != v for _, t, v in versions):
                # an in-place op (e.g. ReLU(inplace=True)) changed a captured map after capture: redo with copies
                self._clone = True
                out.clear()
                self._run(x, out.__setitem__)
        return {k: out[k] for k in self.keys}

    def stream(self, x: torch.Tensor, sink: Callable[[str, torch.Tensor], None]) -> None:
        """Call `sink(layer, feature)` as each layer's output appears; nothing is kept afterwards.

        The sink must consume the tensor immediately (later in-place ops in the network may reuse it).
        """
        self._run(x, sink)
