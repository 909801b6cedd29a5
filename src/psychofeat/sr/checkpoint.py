"""SR checkpoints: one self-describing file holding everything needed to rebuild, resume or evaluate a model.

Format (a dict saved with `torch.save`, loadable with `weights_only=True`, so opening a stranger's checkpoint never
runs code):

    format        "psychofeat-sr-checkpoint", version 1
    step          optimisation steps completed
    model         SRResNet state dict (unwrapped from DDP)
    model_config  SRResNetConfig as a dict (the architecture)
    optimizer     Adam state dict            (training checkpoints)
    scaler        GradScaler state dict      (training checkpoints; empty unless fp16 AMP)
    train_config  TrainConfig as a dict      (training checkpoints)
    rng           torch / CUDA / numpy / python RNG states of rank 0
    elapsed_s     training wall time so far, summed over resumes

Files are written atomically (temporary file + rename), so a run killed while saving leaves the previous
checkpoint intact. A bare SRResNet state dict is also accepted wherever a checkpoint is read (default architecture).
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from psychofeat.errors import DamagedWeightsError, DataMissingError, WeightsError
from psychofeat.io import atomic_path
from psychofeat.sr.model import SRResNet, SRResNetConfig, build_srresnet

FORMAT = "psychofeat-sr-checkpoint"
VERSION = 1


def rng_states() -> dict[str, Any]:
    """All global RNG states, in forms `torch.load(weights_only=True)` accepts."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict[str, Any]) -> None:
    """Restore what `rng_states` captured (CUDA states only when CUDA is in use)."""
    torch.set_rng_state(state["torch"])
    npd = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": npd["bit_generator"],
            "state": {"key": npd["key"].numpy().astype(np.uint32), "pos": npd["pos"]},
            "has_gauss": npd["has_gauss"],
            "gauss": npd["gauss"],
        }
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP (or DataParallel) wrapper."""
    inner = getattr(model, "module", model)
    return inner if isinstance(inner, nn.Module) else model


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write a checkpoint dict atomically, adding the format tag."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint (or a bare state dict, wrapped as {"model": ...}) onto the CPU, without running code."""
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"checkpoint {path} is a folder; give final.pt or checkpoints/last.pt in it.")
    if not path.is_file():
        raise DataMissingError(f"checkpoint {path} does not exist.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for corrupt or foreign files
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise DamagedWeightsError(
            f"cannot read checkpoint {path}: it is corrupt, truncated or not a checkpoint ({type(exc).__name__}: "
            f"{first}). Is it a file written by `psychofeat sr train`?"
        ) from exc
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj.get("version", 0) > VERSION:
            raise WeightsError(f"checkpoint {path} has format version {obj['version']}; upgrade psychofeat to read it.")
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"model": obj, "model_config": SRResNetConfig().to_dict(), "step": 0}
    raise WeightsError(f"{path} is neither a psychofeat SR checkpoint nor an SRResNet state dict.")


def model_from_checkpoint(ckpt: dict[str, Any] | str | os.PathLike[str]) -> SRResNet:
    """Rebuild the SRResNet a checkpoint describes and load its weights (eval mode, CPU)."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    model = build_srresnet(ckpt.get("model_config"))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise WeightsError(
            f"the checkpoint's weights do not fit SRResNet{model.config.to_dict()}: {str(exc).splitlines()[0]}"
        ) from exc
    return model.eval()


def state_digest(model: nn.Module) -> str:
    """sha256 of every parameter and buffer (names, dtypes, shapes, bytes): equal digests = bit-identical models."""
    h = hashlib.sha256()
    for name, t in sorted(unwrap(model).state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


__all__ = [
    "FORMAT",
    "VERSION",
    "load_checkpoint",
    "model_from_checkpoint",
    "rng_states",
    "save_checkpoint",
    "set_rng_states",
    "state_digest",
    "unwrap",
]
