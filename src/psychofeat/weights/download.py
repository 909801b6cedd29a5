"""Download a file from a URL (http(s) or file://) into place, checking its sha256 before it is kept."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from psychofeat.errors import WeightsError
from psychofeat.io import atomic_path


def download(url: str, dest: Path, sha256: str, timeout: float = 30.0, progress: bool = True) -> Path:
    """Fetch `url` to `dest`. `sha256` may be the full digest or a prefix (torchvision names carry 8 hex digits).

    Raises `WeightsError` on a checksum mismatch (the partial file is discarded) and `OSError` subclasses on
    network failure, so callers can fall back to the next source.
    """
    if len(sha256) < 8:
        raise WeightsError(f"refusing to download {url} without a checksum of at least 8 hex digits.")
    h = hashlib.sha256()
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:  # noqa: S310
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=f"download {dest.name}", disable=not progress or None
            ) as bar:
                while block := resp.read(1 << 20):
                    fh.write(block)
                    h.update(block)
                    bar.update(len(block))
        digest = h.hexdigest()
        if not digest.startswith(sha256.lower()):
            raise WeightsError(
                f"download of {url} has sha256 {digest[:16]}…, expected {sha256[:16]}…; the file was discarded."
            )
    return dest


NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, OSError)
