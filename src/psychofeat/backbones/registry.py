"""Named architectures and how their weights are chosen.

`load_backbone("vgg16")` gives VGG-16 with its default (original ImageNet) weights; `weights=` picks another
source: a named pretrained family ("imagenet", "torchvision"), a `.pth` path, `random[:SEED]` (the framework's
default initialisation, seeded) or `shuffled[:SEED]` (pretrained values permuted: same statistics, no structure).
Model modules register themselves with `register_model`; `torchvision:<name>` / `timm:<name>` are resolved
by `psychofeat.backbones.external` when those packages are installed.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from psychofeat.backbones.base import PREPROCESSINGS, Backbone, Preprocessing, WeightsInfo, params_sha256
from psychofeat.errors import InputError, unknown_name


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
    import psychofeat.backbones as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("base", "registry", "external", "controls"):
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
    from psychofeat.weights import check_state_dict, load_state_dict_file

    state = load_state_dict_file(path)
    if ignore_prefixes:
        state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    check_state_dict(net.state_dict(), state, f"{what} weights {path}")
    net.load_state_dict(state)


def load_backbone(
    model: str | Backbone = "vgg16",
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    preprocessing: str | None = None,
) -> Backbone:
    """Build a named backbone with the requested weights, in eval mode with frozen parameters."""
    from psychofeat.precision import check_device

    check_device(device)  # a device this machine lacks is an InputError, not torch's AssertionError
    if isinstance(model, Backbone):
        return model.to(device)
    if ":" in model and model.split(":", 1)[0] in ("torchvision", "timm"):
        from psychofeat.backbones.external import load_external

        return load_external(model, weights, device=device, preprocessing=preprocessing)
    spec = get_spec(model)
    net, info, prep = _load_weights(spec, weights)
    if preprocessing is not None:
        prep = resolve_preprocessing(preprocessing)
    info.params_sha256 = info.params_sha256 or params_sha256(net)
    return Backbone(
        spec.name, net, spec.layer_paths, prep, info, spec.default_layers, metric_layers=spec.metric_layers
    ).to(device)


def _manifest_preprocessing(manifest: Mapping[str, object], path: Path) -> Preprocessing:
    """The preprocessing a weights file's sidecar manifest records, refused clearly when malformed."""
    from psychofeat.errors import WeightsError

    try:
        return Preprocessing.from_dict(manifest["preprocessing"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WeightsError(f"the sidecar manifest of {path} has a malformed 'preprocessing' entry ({exc}); fix it, "
                           "or delete it and pass --preprocessing NAME.") from exc


def _load_weights(spec: ModelSpec, weights: str | Path | None) -> tuple[nn.Module, WeightsInfo, Preprocessing]:
    from psychofeat.io import sha256_file
    from psychofeat.weights import obtain
    from psychofeat.weights.cache import sidecar_manifest

    default = spec.sources[spec.default_source]
    w = str(weights) if weights is not None else spec.default_source
    if (seed := parse_seeded(w, "random")) is not None:
        torch.manual_seed(seed)
        net = spec.build()
        return net, WeightsInfo(f"random:{seed}", f"default PyTorch initialisation, seed {seed}"), default.preprocessing  # type: ignore[attr-defined]
    if (seed := parse_seeded(w, "shuffled")) is not None:
        from psychofeat.backbones.controls import shuffle_weights

        net, info, prep = _load_weights(spec, spec.default_source)
        shuffle_weights(net, seed)
        return net, WeightsInfo(
            f"shuffled:{seed}",
            f"{info.description}, values permuted across output channels and within filters (seed {seed})",
            sha256=info.sha256,
            path=info.path,
        ), prep
    if w in spec.sources:
        src = spec.sources[w]
        path, manifest = obtain(src)  # type: ignore[arg-type]
        prep = Preprocessing.from_dict(manifest["preprocessing"]) if "preprocessing" in manifest else src.preprocessing  # type: ignore[attr-defined]
        info = WeightsInfo(w, src.description, sha256=manifest.get("sha256"), path=str(path),  # type: ignore[attr-defined]
                           extra={k: v for k, v in manifest.items() if k.startswith("source")})
        verify = src.verify  # type: ignore[attr-defined]
    else:
        path = Path(w).expanduser()
        if not path.exists() and not w.endswith((".pth", ".pt", ".bin")):
            raise unknown_name(
                f"weights source for {spec.name}",
                w,
                [*spec.sources, "random[:SEED]", "shuffled[:SEED]", "<path to .pth>"],
            )
        manifest = sidecar_manifest(path) if path.is_file() else None
        prep = _manifest_preprocessing(manifest, path) if manifest and "preprocessing" in manifest \
            else spec.file_preprocessing
        info = WeightsInfo(
            "file", f"state dict from {path}", sha256=sha256_file(path) if path.is_file() else None, path=str(path)
        )
        verify = None
    net = spec.build()
    load_state_into(net, path, spec.name, spec.ignore_prefixes)
    info.params_sha256 = params_sha256(net)
    if verify is not None:
        verify(net, info.params_sha256)
    return net, info, prep
