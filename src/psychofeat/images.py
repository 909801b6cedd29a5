"""Image I/O and input validation, following the ecosystem's convention: float tensors N×3×H×W in [0, 1].

Greyscale files (mode L/LA/I;16) are converted to RGB by replicating the channel; an alpha channel is
dropped (composited on nothing). Both are documented conversions, never silent failures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from psychofeat.errors import DataMissingError, InputError

#: values within this much outside [0, 1] are accepted (interpolation overshoot) and not clipped
RANGE_TOLERANCE = 1e-3


#: file suffixes read as images when a folder is listed (case-insensitive)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(
    folder: str | os.PathLike[str], suffixes: Sequence[str] = IMAGE_SUFFIXES
) -> tuple[list[Path], list[Path]]:
    """(image files, other entries) of a folder, each sorted by name; hidden entries (".name") are left out."""
    entries = sorted(p for p in Path(folder).iterdir() if not p.name.startswith("."))
    images = [p for p in entries if p.is_file() and p.suffix.lower() in suffixes]
    return images, [p for p in entries if p not in images]


def load_image_uint8(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as an H×W×3 uint8 RGB array (greyscale replicated to 3 channels)."""
    path = Path(path)
    if not path.is_file():
        raise DataMissingError(f"image file {path} does not exist.")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I"):
                arr = np.asarray(im, dtype=np.float64)
                arr = np.round(arr / (65535.0 if arr.max() > 255 else 255.0) * 255.0).astype(np.uint8)
                return np.repeat(arr[..., None], 3, axis=2)
            rgb = im.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image {path}: {exc}. Is it a valid PNG/JPEG/BMP file?") from exc


def load_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file as a 1×3×H×W float32 tensor in [0, 1]."""
    arr = load_image_uint8(path)
    return uint8_to_tensor(arr)


def uint8_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 -> 1×3×H×W float32 in [0, 1]."""
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return dequantize(torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0))


def quantize(x: torch.Tensor) -> torch.Tensor:
    """The one 8-bit quantisation: float images in [0, 1] -> uint8 of the same shape (clamped, rounded half to even).

    Everything that is both written as an image and scored goes through this function once, and the score is taken
    from its output, so a run and its `--resume` (which reads the saved PNGs back) score identical bytes. The
    product x·255 is formed in float64, where it is exact for float32 x, so no CPU's kernels can round it otherwise.
    """
    return x.detach().to(torch.float64).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


def dequantize(q: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 levels -> floats in [0, 1] (level / 255, one correctly rounded division per value)."""
    if q.dtype != torch.uint8:
        raise InputError(f"dequantize expects uint8 levels, got {q.dtype}; quantize float images first.")
    return q.to(dtype).div(255.0)


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """1×3×H×W or 3×H×W float in [0, 1] (or uint8 levels) -> H×W×3 uint8, through `quantize`."""
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise InputError(f"expected a single image, got a batch of {x.shape[0]}.")
        x = x[0]
    q = x.detach() if x.dtype == torch.uint8 else quantize(x)
    return q.permute(1, 2, 0).cpu().numpy()


def save_image(x: torch.Tensor | np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an image atomically; the format follows the suffix (PNG recommended: lossless)."""
    from psychofeat.io import atomic_path

    arr = x if isinstance(x, np.ndarray) else tensor_to_uint8(x)
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path


def check_images(x: torch.Tensor, name: str = "input", min_size: int = 1, channels: int | None = 3) -> None:
    """Validate an image batch: N×C×H×W floating tensor, finite, values in [0, 1], spatial size ≥ `min_size`.

    Raises `InputError` naming the problem and the fix; never lets a wrong input through to torch.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.ndim == 3 else ""
        raise InputError(f"{name} must have shape N×3×H×W, got {tuple(x.shape)}.{hint}")
    if channels is not None and x.shape[1] != channels:
        hint = " Convert greyscale with x.expand(-1, 3, -1, -1)." if x.shape[1] == 1 else ""
        raise InputError(f"{name} must have {channels} channels (RGB), got {x.shape[1]}.{hint}")
    if not x.is_floating_point():
        raise InputError(
            f"{name} has dtype {x.dtype}; expected a float tensor in [0, 1]. For uint8 images use x.float() / 255."
        )
    if min(x.shape[-2:]) < min_size:
        raise InputError(f"{name} is {x.shape[-2]}×{x.shape[-1]} px; at least {min_size}×{min_size} px is required.")
    if x.numel() == 0:
        raise InputError(f"{name} is empty.")
    with torch.no_grad():
        if not torch.isfinite(x).all():
            raise InputError(f"{name} contains NaN or infinite values.")
        lo, hi = float(x.min()), float(x.max())
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        hint = " It looks like 0-255 data: divide by 255." if hi > 2 else " Clamp or rescale it to [0, 1]."
        raise InputError(f"{name} has values in [{lo:.4g}, {hi:.4g}]; images must be in [0, 1].{hint}")


def check_pair(x: torch.Tensor, y: torch.Tensor, min_size: int = 1, names: tuple[str, str] = ("x", "y")) -> None:
    """Validate two image batches that are compared position by position."""
    check_images(x, names[0], min_size)
    check_images(y, names[1], min_size)
    if x.shape != y.shape:
        raise InputError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}. "
            "Resize or crop one of them first."
        )


def image_header(path: str | os.PathLike[str]) -> tuple[tuple[int, int], str]:
    """(width, height) and PIL mode of an image file, from its header only (no pixel decoding)."""
    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image {path}: {exc}. Is it a valid PNG/JPEG/BMP file?") from exc


def check_pair_sizes(
    pairs: Sequence[tuple[Path, Path]],
    min_size: int,
    resize: int | None,
    *,
    subject: str = "pairs",
    relation: str = "",
    second: str = "",
    fix: str = "crop or resize one of each",
) -> dict[Path, str]:
    """Read every file's header; refuse all size mismatches of the (first, second) pairs at once, then every pair
    below `min_size`; return {path: PIL mode} of the files that are not RGB (they will be converted).

    Too-small images pass when `resize` (the short side they will be resized to) is given. One message lists up to
    50 offending files, so a whole folder or dataset is fixed in one go rather than one error at a time.
    """
    headers = {p: image_header(p) for pair in pairs for p in pair}
    mismatched, small = [], []
    for a, b in pairs:
        (aw, ah), (bw, bh) = headers[a][0], headers[b][0]
        if (aw, ah) != (bw, bh):
            mismatched.append(f"  {a} is {aw}x{ah} px but {second}{b} is {bw}x{bh} px")
        elif resize is None and min(aw, ah) < min_size:
            small.append(f"  {a} is {aw}x{ah} px")
    if mismatched:
        raise InputError(f"{len(mismatched)} {subject} differ in size{relation} (a full-reference metric compares "
                         f"them pixel by pixel; {fix}):\n" + "\n".join(mismatched[:50]))
    if small:
        raise InputError(f"{len(small)} {subject} are smaller than {min_size} px on a side; pass --resize "
                         f"{min_size} or larger:\n" + "\n".join(small[:50]))
    return {p: mode for p, (_, mode) in headers.items() if mode != "RGB"}
