"""Load state-dict files defensively and check them against an architecture, naming the first mismatch."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from psychofeat.errors import DamagedWeightsError, WeightsError


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a `.pth` state dict (weights only; no code is executed). A file that is missing, corrupt, truncated or
    not a state dict at all (an image, a text file, a pickle of something else) is refused clearly, whatever
    exception `torch.load` raises for it (it raises KeyError, for one, on plain text)."""
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"weights file {path} is a folder; give the .pth file itself.")
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist.")
    if path.stat().st_size == 0:
        raise DamagedWeightsError(f"weights file {path} is empty.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError,
            IndexError, TypeError, AttributeError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise DamagedWeightsError(
            f"cannot read weights file {path}: it is corrupt, truncated or not a torch state dict "
            f"({type(exc).__name__}: {first}). Expected a .pth file saved with torch.save(state_dict)."
        ) from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DamagedWeightsError(f"weights file {path} does not hold a state dict (a mapping of names to tensors); "
                                  "expected a .pth file saved with torch.save(model.state_dict()).")
    meta = [k for k, v in obj.items() if v.is_meta]
    if meta:
        raise DamagedWeightsError(f"weights file {path} holds meta tensors (shapes without values), e.g. {meta[0]!r}; "
                                  "save the state dict of a materialised model.")
    return dict(obj)


def check_state_dict(
    expected: Mapping[str, torch.Tensor],
    got: Mapping[str, torch.Tensor],
    what: str,
    allow_unexpected_prefixes: tuple[str, ...] = (),
) -> None:
    """Raise `WeightsError` naming the first parameter that is missing, unexpected or of the wrong shape."""
    for name, ref in expected.items():
        if name not in got:
            raise WeightsError(
                f"{what}: parameter {name!r} (shape {tuple(ref.shape)}) is missing from the weights file; "
                f"is it for another architecture? First keys in the file: {list(got)[:4]}"
            )
        if tuple(got[name].shape) != tuple(ref.shape):
            raise WeightsError(
                f"{what}: parameter {name!r} has shape {tuple(got[name].shape)} in the weights file, "
                f"expected {tuple(ref.shape)}; the file is for another architecture."
            )
        if not got[name].is_floating_point() and ref.is_floating_point():
            raise WeightsError(f"{what}: parameter {name!r} has dtype {got[name].dtype}, expected floating point.")
        if got[name].is_floating_point() and not torch.isfinite(got[name]).all():
            raise DamagedWeightsError(f"{what}: parameter {name!r} contains NaN or infinite values; the file is "
                                      "corrupt.")
    extra = [k for k in got if k not in expected and not k.startswith(allow_unexpected_prefixes)]
    if extra:
        raise WeightsError(
            f"{what}: the weights file has unexpected parameter {extra[0]!r}; is it for another architecture?"
        )
