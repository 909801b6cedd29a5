"""Image I/O and input validation, following the ecosystem's convention: float tensors N×3×H×W in [0, 1].

One reader (`read_image`) for every file: every mode and bit depth Pillow opens is read and scaled by the format's
own bit depth, never by the file's content (a 16-bit file's white is 65535 even where its brightest pixel is 300);
16-bit files keep their 16 bits (`load_image` divides by 65535; `load_image_uint8` rounds to 8 bits). Greyscale
(1, L, LA, I;16, I) is replicated to three channels; palette, CMYK, YCbCr, LAB and HSV images are converted to RGB;
an alpha channel is dropped (composited on nothing) — documented conversions, never silent failures. Float images
(mode F) are read when their values lie in [0, 1]; signed or 32-bit integer images, and files that cannot be
decoded, are refused with the reason (`DataError`). An image is opened only after its size is checked: Pillow's
decompression-bomb limit and the memory available (`psychofeat.resources`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from psychofeat.errors import DataError, DataMissingError, InputError
from psychofeat.io import atomic_path, kind_of
from psychofeat.resources import check_memory, image_bytes

#: values within this much outside [0, 1] are accepted (interpolation overshoot) and not clipped
RANGE_TOLERANCE = 1e-3


#: file suffixes read as images when a folder is listed (case-insensitive)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Pillow's 16-bit greyscale modes
_GREY16 = ("I;16", "I;16L", "I;16B", "I;16N")
#: what Pillow raises for a file it cannot decode (SyntaxError: some plugins' header parsers; struct.error etc.)
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
                  KeyError, ZeroDivisionError, MemoryError)


def list_images(
    folder: str | os.PathLike[str], suffixes: Sequence[str] = IMAGE_SUFFIXES
) -> tuple[list[Path], list[Path]]:
    """(image files, other entries) of a folder, each sorted by name; hidden entries (".name") are left out.

    Other entries include dangling symbolic links (`skip_reason` says what each one is), so they are reported with
    the skipped entries rather than vanish."""
    entries = sorted(p for p in Path(folder).iterdir() if not p.name.startswith("."))
    images = [p for p in entries if p.is_file() and p.suffix.lower() in suffixes]
    return images, [p for p in entries if p not in images]


def skip_reason(path: Path) -> str:
    """Why a folder entry is not read as an image: a dangling symbolic link, a folder, or not an image file."""
    if path.is_symlink() and not path.exists():
        return "dangling symbolic link"
    if path.is_dir():
        return "folder"
    if path.exists() and not path.is_file():
        return f"{kind_of(os.stat(path)).removeprefix('a ')}, not a file"
    return "not an image file"


def _refuse(path: Path, why: str) -> DataError:
    return DataError(f"cannot read image {path}: {why}")


def _open(path: Path, check_size: bool = True) -> Image.Image:
    """Open (header only) with Pillow's decompression-bomb check and, with `check_size`, ours (the memory the pixels
    will need)."""
    if not path.is_file():
        if path.exists():
            raise InputError(f"image {path} is {kind_of(os.stat(path))}, not an image file.")
        raise DataMissingError(f"image file {path} does not exist.")
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise _refuse(path, f"{exc} Downscale it first (or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the "
                            "file).") from exc
    except _DECODE_ERRORS as exc:
        raise _refuse(path, f"{exc}. Is it a valid PNG/JPEG/BMP/TIFF file?") from exc
    w, h = im.size
    try:
        if w < 1 or h < 1:
            raise _refuse(path, f"it is {w}x{h} px.")
        if check_size:
            check_memory(image_bytes(w, h), f"image {path} ({w}x{h} px)", "downscale it first.")
    except Exception:
        im.close()
        raise
    return im


def _png16_rawmode(im: Image.Image) -> str | None:
    """'RGB;16B' / 'RGBA;16B' when `im` is a 16-bit colour PNG that Pillow would cut to its high bytes."""
    tile = getattr(im, "tile", [])  # Pillow's decoder tiles, not in its type stubs
    if im.format != "PNG" or len(tile) != 1:
        return None
    args = tile[0].args
    return args if args in ("RGB;16B", "RGBA;16B") else None


def _colour16(path: Path, im: Image.Image, rawmode: str) -> np.ndarray:
    """A 16-bit colour PNG at full precision: Pillow decodes it to 8 bits (the high byte of each sample); decoding
    it again with the little-endian unpacker yields the low bytes (same filter geometry, 6 or 8 bytes a pixel)."""
    im.load()
    hi = np.asarray(im, dtype=np.uint16)[..., :3]
    with Image.open(path) as again:
        again.tile = [again.tile[0]._replace(args=rawmode.replace("16B", "16L"))]
        again.load()
        lo = np.asarray(again, dtype=np.uint16)[..., :3]
    return (hi << 8) | lo


def _int_white(path: Path, im: Image.Image) -> int:
    """White level of a 32-bit-integer-mode ('I') image, from its format: 16-bit PNG and netpbm files (Pillow
    widens them to 'I'), unsigned TIFF samples of their BitsPerSample."""
    if im.format in ("PNG", "PPM"):
        return 65535
    if im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        bits = tags.get(258, (32,))
        bits = int(bits[0] if isinstance(bits, tuple) else bits)
        fmt = tags.get(339, 1)
        fmt = int(fmt[0] if isinstance(fmt, tuple) else fmt)
        if fmt == 1 and 1 <= bits <= 32:
            return (1 << bits) - 1
        raise _refuse(path, f"its samples are {bits}-bit {'signed' if fmt == 2 else 'non-integer'} integers, whose "
                            "white level is not defined. Save it as an 8- or 16-bit PNG.")
    raise _refuse(path, f"32-bit integer {im.format} images have no defined white level. Save it as an 8- or 16-bit "
                        "PNG.")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The one image reader: an H×W×3 RGB array, uint8 for 8-bit files and uint16 (white 65535) for deeper ones,
    scaled by the format's bit depth (module docstring); anything else is a `DataError` with the reason."""
    path = Path(path)
    im = _open(path)
    try:
        with im:
            mode = im.mode
            if (rawmode := _png16_rawmode(im)) is not None:
                return _colour16(path, im, rawmode)
            im.load()
            if mode in _GREY16:
                return np.repeat(np.asarray(im, dtype=np.uint16)[..., None], 3, axis=2)
            if mode == "I":
                white = _int_white(path, im)
                arr = np.asarray(im, dtype=np.int64)
                if arr.min(initial=0) < 0 or arr.max(initial=0) > white:
                    raise _refuse(path, f"values in [{arr.min()}, {arr.max()}] exceed its bit depth's range "
                                        f"[0, {white}]. Save it as an 8- or 16-bit PNG.")
                arr = arr if white == 65535 else np.round(arr * (65535.0 / white))
                return np.repeat(arr.astype(np.uint16)[..., None], 3, axis=2)
            if mode == "F":
                arr = np.asarray(im, dtype=np.float64)
                if not np.isfinite(arr).all() or arr.min(initial=0) < 0 or arr.max(initial=0) > 1:
                    raise _refuse(path, "a floating-point image must hold finite values in [0, 1] (found "
                                        f"[{np.nanmin(arr):.4g}, {np.nanmax(arr):.4g}]). Save it as an 8- or 16-bit "
                                        "PNG.")
                return np.repeat(np.round(arr * 65535.0).astype(np.uint16)[..., None], 3, axis=2)
            try:
                rgb = im.convert("RGB")
            except (ValueError, OSError) as exc:
                raise _refuse(path, f"Pillow cannot convert its mode {mode} to RGB ({exc}). Save it as an RGB "
                                    "PNG.") from exc
            return np.asarray(rgb, dtype=np.uint8).copy()
    except DataError:
        raise
    except _DECODE_ERRORS as exc:
        raise _refuse(path, f"{exc}. Is it a valid PNG/JPEG/BMP/TIFF file, complete?") from exc


def load_image_uint8(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as an H×W×3 uint8 RGB array (16-bit files rounded to 8 bits by their bit depth)."""
    arr = read_image(path)
    if arr.dtype == np.uint16:
        return np.round(arr.astype(np.float64) / 65535.0 * 255.0).astype(np.uint8)
    return arr


def load_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file as a 1×3×H×W float32 tensor in [0, 1] (16-bit files at their 16-bit precision)."""
    arr = read_image(path)
    if arr.dtype == np.uint16:
        x = torch.from_numpy(arr.astype(np.float64) / 65535.0).to(torch.float32)
        return x.permute(2, 0, 1).unsqueeze(0).contiguous()
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


def save_image(x: torch.Tensor | np.ndarray, path: str | os.PathLike[str], overwrite: bool = True) -> Path:
    """Write an image atomically (created exclusively without `overwrite`); the format follows the suffix (PNG
    recommended: lossless)."""
    arr = x if isinstance(x, np.ndarray) else tensor_to_uint8(x)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(arr).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path


def check_images(x: torch.Tensor, name: str = "input", min_size: int = 1, channels: int | None = 3,
                 in_range: bool = True, *, data_range: float = 1.0) -> None:
    """Validate an image batch: N×C×H×W floating tensor with data (not on the meta device), finite, values in
    [0, 1] (unless `in_range=False`: a loss's predictions may stray outside while training, and PSNR/SSIM take any
    range; `data_range` is only the range their dtype message names), spatial size ≥ `min_size`, `channels`
    channels (None: any). The one validator of the inputs of the metric, the loss and the classic metrics.

    Raises `InputError` naming the problem and the fix; never lets a wrong input through to torch.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.is_meta:
        raise InputError(f"{name} is on the meta device (a shape without data); give a tensor with values, e.g. "
                         "on the CPU or a GPU.")
    if x.ndim != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.ndim == 3 else ""
        raise InputError(f"{name} must have shape N×{channels or 'C'}×H×W, got {tuple(x.shape)}.{hint}")
    if channels is not None and x.shape[1] != channels:
        hint = " Convert greyscale with x.expand(-1, 3, -1, -1)." if x.shape[1] == 1 else ""
        raise InputError(f"{name} must have {channels} channels (RGB), got {x.shape[1]}.{hint}")
    if not x.is_floating_point():
        scale = " / 255" if data_range == 1 else ""
        raise InputError(f"{name} has dtype {x.dtype}; expected a float tensor in [0, {data_range:g}]. For uint8 "
                         f"images use x.float(){scale}.")
    if min(x.shape[-2:]) < min_size:
        raise InputError(f"{name} is {x.shape[-2]}×{x.shape[-1]} px; at least {min_size}×{min_size} px is required.")
    if x.numel() == 0:
        raise InputError(f"{name} is empty.")
    with torch.no_grad():
        if not torch.isfinite(x).all():
            raise InputError(f"{name} contains NaN or infinite values.")
        if not in_range:
            return
        lo, hi = float(x.min()), float(x.max())
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        hint = " It looks like 0-255 data: divide by 255." if hi > 2 else " Clamp or rescale it to [0, 1]."
        raise InputError(f"{name} has values in [{lo:.4g}, {hi:.4g}]; images must be in [0, 1].{hint}")


def check_pair(x: torch.Tensor, y: torch.Tensor, min_size: int = 1, names: tuple[str, str] = ("x", "y"),
               first_in_range: bool = True, *, channels: int | None = 3, in_range: bool = True,
               data_range: float = 1.0) -> None:
    """Validate two image batches that are compared position by position (the first may stray outside [0, 1] when
    `first_in_range=False`: a loss's prediction; neither is range-checked with `in_range=False`: PSNR/SSIM)."""
    check_images(x, names[0], min_size, channels, in_range and first_in_range, data_range=data_range)
    check_images(y, names[1], min_size, channels, in_range, data_range=data_range)
    if x.device != y.device:
        raise InputError(f"{names[0]} is on {x.device} but {names[1]} on {y.device}; move both to one device.")
    if x.shape != y.shape:
        raise InputError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}. "
            "Resize or crop one of them first."
        )


#: how a metric turns its per-pair values into its output: one per pair, or the batch's mean or sum
REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: str) -> str:
    """`reduction` if it is one of `REDUCTIONS` (an `InputError` otherwise)."""
    if reduction not in REDUCTIONS:
        raise InputError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}.")
    return reduction


def reduce_batch(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """The one reduction of per-pair values (N) of the metric, the loss and the classic metrics."""
    if check_reduction(reduction) == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def image_header(path: str | os.PathLike[str]) -> tuple[tuple[int, int], str]:
    """(width, height) and PIL mode of an image file, from its header only (no pixel decoding)."""
    with _open(Path(path), check_size=False) as im:
        return im.size, im.mode


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
