"""`load_backbone`: a named architecture (or `torchvision:<name>` / `timm:<name>`) with the weights asked for.

It sits in its own module because it uses both the registry of named architectures (`psychofeat.backbones.registry`)
and the external ones (`psychofeat.backbones.external`), and `external` uses the registry's helpers: with
`load_backbone` in the registry the two imported each other. Weights are chosen as the registry's docstring says.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from psychofeat.backbones.base import Backbone
from psychofeat.backbones.controls import shuffle_weights
from psychofeat.backbones.external import load_external
from psychofeat.backbones.registry import ModelSpec, get_spec, load_state_into, parse_seeded, resolve_preprocessing
from psychofeat.errors import WeightsError, unknown_name
from psychofeat.io import sha256_file
from psychofeat.precision import check_device
from psychofeat.weights.base import Preprocessing, WeightsInfo, params_sha256
from psychofeat.weights.cache import sidecar_manifest
from psychofeat.weights.sources import obtain


def load_backbone(
    model: str | Backbone = "vgg16",
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    preprocessing: str | None = None,
) -> Backbone:
    """Build a named backbone with the requested weights, in eval mode with frozen parameters."""
    check_device(device)  # a device this machine lacks is an InputError, not torch's AssertionError
    if isinstance(model, Backbone):
        return model.to(device)
    if ":" in model and model.split(":", 1)[0] in ("torchvision", "timm"):
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
    try:
        return Preprocessing.from_dict(manifest["preprocessing"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WeightsError(f"the sidecar manifest of {path} has a malformed 'preprocessing' entry ({exc}); fix it, "
                           "or delete it and pass --preprocessing NAME.") from exc


def _load_weights(spec: ModelSpec, weights: str | Path | None) -> tuple[nn.Module, WeightsInfo, Preprocessing]:
    default = spec.sources[spec.default_source]
    w = str(weights) if weights is not None else spec.default_source
    if (seed := parse_seeded(w, "random")) is not None:
        torch.manual_seed(seed)
        net = spec.build()
        return net, WeightsInfo(f"random:{seed}", f"default PyTorch initialisation, seed {seed}"), default.preprocessing  # type: ignore[attr-defined]
    if (seed := parse_seeded(w, "shuffled")) is not None:
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
        sidecar = sidecar_manifest(path) if path.is_file() else None
        prep = _manifest_preprocessing(sidecar, path) if sidecar and "preprocessing" in sidecar \
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
