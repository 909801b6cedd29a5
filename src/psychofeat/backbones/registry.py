"""Named architectures and how their weights are chosen.

`load_backbone("vgg16")` gives VGG-16 with its default (original ImageNet) weights; `weights=` picks another
source: a named pretrained family ("imagenet", "torchvision"), a `.pth` path, `random[:SEED]` (the framework's
default initialisation, seeded) or `shuffled[:SEED]` (pretrained values permuted: same statistics, no structure).
Model modules register themselves with `register_model`; `torchvision:<name>` / `timm:<name>` are resolved
by `psychofeat.backbones.external` when those packages are installed. `load_backbone` itself lives in
`psychofeat.backbones.load` (it uses both this registry and `external`, which uses this registry's helpers).
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from psychofeat.errors import InputError, unknown_name
from psychofeat.weights.base import PREPROCESSINGS, Preprocessing
from psychofeat.weights.state_dict import check_state_dict, load_state_dict_file


@dataclass
class ModelSpec:
    """How to build one architecture and where its weights come from."""

    name: str
    description: str
    build: Callable[[], nn.Module]  # fresh network with the framework's default initialisation
    layer_paths: Mapping[str, str]  # human name -> dotted module path, in forward order
    default_layers: Sequence[str]
    sources: Mapping[str, object]  # name -> PretrainedSource; the first is the default
    file_preprocessing: Preprocessing  # assumed for a bare .pth without a manifest
    aliases: Sequence[str] = field(default_factory=tuple)
    ignore_prefixes: tuple[str, ...] = ()  # keys of full-model files that the trunk does not use (e.g. classifier.)
    metric_layers: Sequence[str] | None = None  # default layers of the all-channel metric (LPIPS' choice for VGG)

    @property
    def default_source(self) -> str:
        return next(iter(self.sources))


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}
_DISCOVERED = False


def register_model(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.name] = spec
    for a in spec.aliases:
        _ALIASES[a] = spec.name
    return spec


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):  # this package's folder
        if info.name not in ("base", "registry", "external", "controls", "load"):
            importlib.import_module(f"psychofeat.backbones.{info.name}")
    _DISCOVERED = True


def available_models() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    _discover()
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise unknown_name(
            "model",
            name,
            available_models(),
            hint="Any torchvision or timm model works as torchvision:<name> or timm:<name> with --weights PATH.",
        )
    return _REGISTRY[key]


def known_preprocessings() -> dict[str, Preprocessing]:
    """The generic preprocessings plus those of every registered weight source, by name."""
    known = dict(PREPROCESSINGS)
    for name in available_models():
        for src in get_spec(name).sources.values():
            prep = getattr(src, "preprocessing", None)
            if isinstance(prep, Preprocessing):
                known.setdefault(prep.name, prep)
    return known


def parse_seeded(spec: str, kind: str) -> int | None:
    """'random' -> 0, 'random:7' -> 7; anything else -> None."""
    if spec == kind:
        return 0
    if spec.startswith(kind + ":"):
        try:
            return int(spec.split(":", 1)[1])
        except ValueError:
            raise InputError(f"bad weights spec {spec!r}: expected {kind}:<integer seed>.") from None
    return None


def resolve_preprocessing(name: str) -> Preprocessing:
    """A preprocessing by name (generic, or any registered weight source's); unknown names list the known ones."""
    known = known_preprocessings()
    if name not in known:
        raise unknown_name("preprocessing", name, known)
    return known[name]


def load_state_into(net: nn.Module, path: Path, what: str, ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Load a state-dict file into `net`, checked parameter by parameter (keys under `ignore_prefixes` dropped)."""
    state = load_state_dict_file(path)
    if ignore_prefixes:
        state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    check_state_dict(net.state_dict(), state, f"{what} weights {path}")
    net.load_state_dict(state)


def __getattr__(name: str) -> Any:
    """`load_backbone` moved to `psychofeat.backbones.load` (also `psychofeat.backbones.load_backbone`)."""
    if name == "load_backbone":
        warnings.warn("psychofeat.backbones.registry.load_backbone moved to psychofeat.backbones.load_backbone "
                      "(psychofeat.backbones.load); the old name will be removed.", DeprecationWarning, stacklevel=2)
        # imported by name, not by an import statement: `load` imports this module, and the package's import
        # graph (walked with `ast`) stays free of circles
        return importlib.import_module("psychofeat.backbones.load").load_backbone
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
