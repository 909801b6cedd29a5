"""Any torchvision or timm architecture as a Backbone: `torchvision:<name>` and `timm:<name>`.

psychofeat does not download or guess weights for these: the user passes `--weights PATH` (a state dict saved
from that architecture, checked parameter by parameter) or `random[:SEED]` (the library's own initialisation,
seeded). Neither package is a dependency; a missing one is reported with the pip command that installs it.

Layers are dotted module paths (`layer3.1`, `features.15`). The probe-able ones are found by one forward pass
at 224 px: modules that run exactly once and output one N×C×H×W tensor with H, W > 1 (a module reused within a
block, such as torchvision ResNet's shared ReLU, has no single output and is left out). Default analysis layers
are the children of the model's top-level containers (e.g. `layer1.0` … `layer4.1`, or `features.0` …), which is
a reasonable sweep for most CNNs; pass layers explicitly for anything finer.
Preprocessing defaults to torchvision's ImageNet mean/std, or to the mean/std in a timm model's `pretrained_cfg`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from psychofeat.backbones.base import Backbone
from psychofeat.backbones.registry import load_state_into, parse_seeded, resolve_preprocessing
from psychofeat.errors import InputError, PsychofeatError, unknown_name
from psychofeat.io import sha256_file
from psychofeat.weights.base import TORCHVISION, Preprocessing, WeightsInfo, params_sha256

LIBRARIES: dict[str, str] = {"torchvision": "pip install torchvision", "timm": "pip install timm"}
TRACE_SIZE = 224


class MissingPackageError(PsychofeatError, ImportError):
    """An optional package needed for the requested model is not installed."""


@dataclass(frozen=True)
class TracedLayer:
    """What one module produced during a single forward pass."""

    path: str
    type: str
    calls: int
    shape: tuple[int, ...] | None  # of the first output; None when it is not a single tensor

    @property
    def probeable(self) -> bool:
        return self.calls == 1 and self.shape is not None and len(self.shape) == 4 and self.shape[2] * self.shape[3] > 1


def parse_external(model: str) -> tuple[str, str]:
    """'torchvision:resnet18' -> ('torchvision', 'resnet18')."""
    library, sep, name = model.partition(":")
    if not sep or library not in LIBRARIES or not name:
        raise InputError(f"bad external model {model!r}: expected torchvision:<name> or timm:<name>.")
    return library, name


def import_library(library: str) -> ModuleType:
    try:
        return importlib.import_module(library)
    except ImportError as exc:
        raise MissingPackageError(
            f"{library}:<name> models need the {library} package, which is not installed: {LIBRARIES[library]}"
        ) from exc


def build_external(library: str, name: str) -> nn.Module:
    """A freshly initialised (untrained) network from torchvision or timm; unknown names list close matches."""
    lib = import_library(library)
    if library == "torchvision":
        known = list(lib.models.list_models())
        if name not in known:
            raise unknown_name("torchvision model", name, known)
        return lib.models.get_model(name, weights=None)
    known = list(lib.list_models())
    if name not in known:
        raise unknown_name("timm model", name, known)
    return lib.create_model(name, pretrained=False)


def default_preprocessing(library: str, net: nn.Module) -> Preprocessing:
    """torchvision's ImageNet normalisation, or the mean/std timm records for the architecture."""
    cfg = getattr(net, "pretrained_cfg", None) if library == "timm" else None
    if isinstance(cfg, dict) and "mean" in cfg and "std" in cfg:
        mean, std = tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"])
        if (mean, std) != (TORCHVISION.mean, TORCHVISION.std):
            return Preprocessing("timm-cfg", "RGB", 1.0, mean, std)  # type: ignore[arg-type]
    return TORCHVISION


@torch.no_grad()
def trace_layers(net: nn.Module, size: int = TRACE_SIZE) -> dict[str, TracedLayer]:
    """Run one `size`×`size` forward pass and record every named module's call count and first output shape."""
    calls: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...] | None] = {}
    handles = []

    def make_hook(path: str):  # type: ignore[no-untyped-def]
        def hook(_m: nn.Module, _inp: object, out: object) -> None:
            calls[path] = calls.get(path, 0) + 1
            if path not in shapes:
                shapes[path] = tuple(out.shape) if isinstance(out, torch.Tensor) else None

        return hook

    modules = {p: m for p, m in net.named_modules() if p}
    for path, module in modules.items():
        handles.append(module.register_forward_hook(make_hook(path)))
    param = next(net.parameters(), None)
    x = torch.zeros(1, 3, size, size, device=param.device if param is not None else "cpu")
    was_training = net.training
    try:
        net.eval()
        net(x)
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    return {p: TracedLayer(p, type(m).__name__, calls.get(p, 0), shapes.get(p)) for p, m in modules.items()}


def default_layer_paths(net: nn.Module, traced: dict[str, TracedLayer]) -> list[str]:
    """Children of the top-level containers (else the top-level module itself), if probe-able."""
    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    out: list[str] = []
    for name, child in net.named_children():
        if isinstance(child, containers):
            out += [f"{name}.{sub}" for sub, _ in child.named_children()]
        else:
            out.append(name)
    return [p for p in out if p in traced and traced[p].probeable]


def _load_weights(model: str, net: nn.Module, weights: str | Path | None) -> WeightsInfo:
    if weights is None:
        raise InputError(
            f"{model} has no default weights in psychofeat: pass --weights PATH (a state dict saved from this "
            "architecture) or --weights random[:SEED]."
        )
    w = str(weights)
    if (seed := parse_seeded(w, "random")) is not None:
        return WeightsInfo(f"random:{seed}", f"{model} default initialisation, seed {seed}")
    path = Path(w).expanduser()
    if not path.is_file():
        raise InputError(f"weights {w!r} for {model}: no such file. Expected a .pth path or random[:SEED].")
    load_state_into(net, path, model)
    return WeightsInfo("file", f"state dict from {path}", sha256=sha256_file(path), path=str(path))


def load_external(
    model: str,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    preprocessing: str | None = None,
    layers: Sequence[str] | None = None,
) -> Backbone:
    """Build `torchvision:<name>` / `timm:<name>` with weights from a file or `random[:SEED]`."""
    library, name = parse_external(model)
    if weights is not None and (seed := parse_seeded(str(weights), "random")) is not None:
        torch.manual_seed(seed)
    net = build_external(library, name)
    info = _load_weights(model, net, weights)
    info.params_sha256 = params_sha256(net)
    if preprocessing is not None:
        prep = resolve_preprocessing(preprocessing)
    else:
        prep = default_preprocessing(library, net)
    traced = trace_layers(net)
    paths = {p: p for p, t in traced.items() if t.probeable}
    defaults = list(layers) if layers is not None else default_layer_paths(net, traced)
    return Backbone(model, net, paths, prep, info, defaults or None).to(device)
