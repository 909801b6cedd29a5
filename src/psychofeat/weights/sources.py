"""Obtain pretrained weights: cache first, then the published URL (sha256-checked), then an offline importer.

A named source ("imagenet", "torchvision") is one family of weights; psychofeat never falls back from one
family to another (torchvision's VGG-16 was trained separately from the original and gives other numbers).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psychofeat.errors import WeightsError
from psychofeat.io import sha256_file
from psychofeat.weights.base import Preprocessing
from psychofeat.weights.cache import cache_entry, verify_entry, write_entry
from psychofeat.weights.download import NETWORK_ERRORS, download
from psychofeat.weights.state_dict import load_state_dict_file

log = logging.getLogger(__name__)

#: importer(dest, from_file) writes the cache entry `dest` (+ manifest) from an offline source (or the given
#: file) and returns the manifest
Importer = Callable[[Path, "Path | None"], dict[str, Any]]


@dataclass(frozen=True)
class PretrainedSource:
    """One family of pretrained weights for one architecture, and the ways to get it."""

    name: str
    cache_file: str
    preprocessing: Preprocessing
    description: str
    url: str | None = None
    url_sha256: str | None = None  # full digest or the prefix the publisher puts in the file name
    importer: Importer | None = None
    import_hint: str = ""  # the command that imports it by hand
    verify: Callable[..., None] | None = None  # verify(net, params_sha256=None): recognises these weights once loaded


def obtain(
    source: PretrainedSource, allow_download: bool = True, allow_import: bool = True
) -> tuple[Path, dict[str, Any]]:
    """Return (path of a verified cache entry, its manifest), fetching or importing it when absent."""
    pth = cache_entry(source.cache_file)
    manifest = verify_entry(pth)
    if manifest is not None:
        return pth, manifest
    tried: list[str] = [f"cache: {pth} (absent)"]
    if source.url and allow_download:
        try:
            return pth, _download_entry(source, pth)
        except NETWORK_ERRORS as exc:
            tried.append(f"download {source.url}: {exc}")
            log.warning("could not download %s (%s); trying the next source", source.url, exc)
    if source.importer and allow_import:
        try:
            return pth, source.importer(pth, None)
        except WeightsError:
            raise
        except (OSError, RuntimeError) as exc:
            tried.append(f"offline import: {exc}")
    hint = f" Import them with `{source.import_hint}`." if source.import_hint else ""
    raise WeightsError(
        f"could not obtain the {source.name!r} weights ({source.description}). Tried: " + "; ".join(tried) + "." + hint
        + " Commands with a --weights option also take a .pth state dict there (--weights PATH)."
    )


def _download_entry(source: PretrainedSource, pth: Path) -> dict[str, Any]:
    assert source.url and source.url_sha256
    with tempfile.TemporaryDirectory(dir=_mkdir(pth.parent)) as tmpdir:
        tmp = Path(tmpdir) / Path(source.url).name
        download(source.url, tmp, source.url_sha256)
        return _entry_from_file(source, pth, tmp, source.url, sha256_file(tmp))


def _entry_from_file(source: PretrainedSource, pth: Path, file: Path, origin: str, digest: str) -> dict[str, Any]:
    """Write the cache entry `pth` of `source` from a state-dict file (already checked against its checksum)."""
    return write_entry(
        pth,
        load_state_dict_file(file),
        {
            "source": origin,
            "source_sha256": digest,
            "preprocessing": source.preprocessing.to_dict(),
            "weights": source.name,
            "description": source.description,
        },
    )


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def import_source(source: PretrainedSource, from_file: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the cache entry of `source` now: from `from_file` when given, else from its offline importer/URL.

    A file given for a source with a published checksum must match that checksum.
    """
    pth = cache_entry(source.cache_file)
    if from_file is not None and source.importer is None:
        from_file = Path(from_file)
        if not from_file.is_file():
            raise WeightsError(f"{from_file} does not exist.")
        digest = sha256_file(from_file)
        if source.url_sha256 and not digest.startswith(source.url_sha256):
            raise WeightsError(
                f"{from_file} has sha256 {digest[:16]}…, expected {source.url_sha256[:16]}… for the "
                f"{source.name!r} weights ({source.description})."
            )
        return pth, _entry_from_file(source, pth, from_file, str(from_file), digest)
    if source.importer is not None:
        return pth, source.importer(pth, Path(from_file) if from_file else None)
    return obtain(source)
