"""The weights cache ($PSYCHOFEAT_HOME, default ~/.cache/psychofeat/weights).

Each entry is `<name>.pth` (a torch state dict) plus `<name>.json`, a manifest recording the source, the
sha256 of the source and of the result, and the preprocessing the weights expect.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import torch

from psychofeat.config import cache_home
from psychofeat.errors import DamagedWeightsError, WeightsError
from psychofeat.io import atomic_path, read_json, sha256_file, write_json


def weights_cache_dir() -> Path:
    return cache_home() / "weights"


def cache_entry(filename: str) -> Path:
    """Path of a cache entry (may not exist)."""
    return weights_cache_dir() / filename


def manifest_path(pth: Path) -> Path:
    return pth.with_suffix(".json")


def read_manifest(pth: Path) -> dict[str, Any] | None:
    return _read(manifest_path(pth), "cache manifest", "delete it and re-import the weights")


def sidecar_manifest(pth: Path) -> dict[str, Any] | None:
    """The manifest beside a user's weights file: `PATH.json` (e.g. `my.pth.json`, as docs/weights.md says), else
    `PATH` with its suffix replaced (`my.json`, the cache's own naming); None when there is neither."""
    for m in (pth.with_name(pth.name + ".json"), manifest_path(pth)):
        if m.is_file():
            return _read(m, "sidecar manifest", "fix or delete it")
    return None


def _read(m: Path, what: str, fix: str) -> dict[str, Any] | None:
    if not m.is_file():
        return None
    try:
        data = read_json(m)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedWeightsError(f"{what} {m} is corrupt ({exc}); {fix}.") from exc
    if not isinstance(data, dict):
        raise WeightsError(f"{what} {m} is not a JSON object; {fix}.")
    return data


def write_entry(
    pth: Path, state_dict: dict[str, torch.Tensor], manifest: dict[str, Any]
) -> dict[str, Any]:
    """Write a state dict and its manifest atomically; returns the manifest (with the result's sha256)."""
    pth.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(pth) as tmp:
        torch.save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, tmp)
    full = dict(manifest)
    full["sha256"] = sha256_file(pth)
    full["file"] = pth.name
    full["created_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    write_json(manifest_path(pth), full)
    return full


def verify_entry(pth: Path) -> dict[str, Any] | None:
    """The manifest of a valid cache entry, or None if the entry is absent.

    A present entry whose file does not match its manifest's sha256 is an error (corrupted cache).
    """
    if not pth.is_file():
        return None
    manifest = read_manifest(pth)
    if manifest is None:
        return None
    actual = sha256_file(pth)
    if manifest.get("sha256") != actual:
        raise DamagedWeightsError(
            f"cached weights {pth} are corrupt: sha256 {actual[:12]}… but the manifest records "
            f"{str(manifest.get('sha256'))[:12]}…. Delete {pth} and run `psychofeat weights import` again."
        )
    return manifest
