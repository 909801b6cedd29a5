"""Upscale image files and folders with an SR checkpoint (`psychofeat sr upscale`).

Everything is checked before the first image is written: that the checkpoint is an SRResNet of the scale asked for,
that every input decodes as an image, and that no output would be overwritten by accident. A folder's files with
other suffixes are skipped and listed, never silently fed to the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from psychofeat.errors import InputError, OutputExistsError, WeightsError
from psychofeat.images import IMAGE_SUFFIXES, list_images, skip_reason
from psychofeat.io import check_output_file
from psychofeat.sr.checkpoint import load_checkpoint, model_from_checkpoint
from psychofeat.sr.evaluate import upscale_file
from psychofeat.sr.model import SRResNet


@dataclass
class UpscalePlan:
    """Input → output files, and the folder entries that were left out (with the reason)."""

    jobs: list[tuple[Path, Path]]
    skipped: list[str] = field(default_factory=list)
    overwrite: bool = False  # without it each output is created exclusively (never replaces a file made meanwhile)


def _check_decodable(path: Path) -> None:
    try:
        with Image.open(path) as im:
            im.verify()  # reads the header and structure, no pixel decoding
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"{path} is not a readable image ({exc}); upscale takes PNG, JPEG, BMP, TIFF or WebP "
                         "files. Remove or convert it.") from exc


def plan_upscale(src: str | os.PathLike[str], dst: str | os.PathLike[str], overwrite: bool = False) -> UpscalePlan:
    """The files to write: IN a file (OUT a file, or an existing folder) or IN a folder (OUT a folder, PNG names)."""
    src, dst = Path(src), Path(dst)
    skipped: list[str] = []
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise InputError(f"IN {src} is a folder, so OUT must be a folder too, but {dst} is a file.")
        images, others = list_images(src)
        skipped = [f"{p.name} ({skip_reason(p)})" for p in others]
        if not images:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {src}"
                             + (f"; it holds {', '.join(s.split(' ')[0] for s in skipped[:5])}" if skipped else "")
                             + ".")
        jobs = [(p, dst / f"{p.stem}.png") for p in images]
        stems = [d.name for _, d in jobs]
        dupes = sorted({s for s in stems if stems.count(s) > 1})
        if dupes:
            raise InputError(f"several inputs in {src} would be written to the same file {dupes[0]} (same name, "
                             "different suffix); rename one of them.")
    elif src.is_file():
        if src.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(f"IN {src} is not an image file (expected one of {', '.join(IMAGE_SUFFIXES)}).")
        jobs = [(src, dst / f"{src.stem}.png" if dst.is_dir() else dst)]
    else:
        raise InputError(f"IN {src} is neither an image file nor a folder.")
    for s, _ in jobs:
        _check_decodable(s)
    clash = [str(d) for _, d in jobs if d.exists()]
    if clash and not overwrite:
        raise OutputExistsError(f"{len(clash)} output file(s) exist, e.g. {clash[0]}; pass --overwrite to replace "
                                "them.")
    for _, d in jobs:
        check_output_file(d, overwrite)  # a folder, device, link or fifo in the way; an unwritable place
    return UpscalePlan(jobs, skipped, overwrite)


def load_upscaler(checkpoint: str | os.PathLike[str], scale: int | None = 4) -> SRResNet:
    """The SRResNet of a checkpoint, refusing one of another scale (`scale=None` accepts any)."""
    ckpt = load_checkpoint(checkpoint)
    if not isinstance(ckpt.get("model_config"), dict):
        raise WeightsError(f"{checkpoint} holds no SRResNet configuration; use a checkpoint written by "
                           "`psychofeat sr train` (final.pt or checkpoints/last.pt).")
    have = int(ckpt["model_config"].get("scale", 4))
    if scale is not None and have != scale:
        raise WeightsError(f"{checkpoint} is a ×{have} model but ×{scale} was asked for; use a ×{scale} checkpoint "
                           f"or pass --scale {have}.")
    return model_from_checkpoint(ckpt)


def upscale_files(model: torch.nn.Module, plan: UpscalePlan, device: str | torch.device = "cpu",
                  progress: bool = True) -> list[Path]:
    """Run the model on every planned file (one image at a time, so any size fits); returns the written paths."""
    written = []
    for s, d in tqdm(plan.jobs, desc="upscale", unit="img", disable=None if progress else True):
        written.append(upscale_file(model, s, d, device=device, overwrite=plan.overwrite))
    return written


__all__ = ["IMAGE_SUFFIXES", "UpscalePlan", "load_upscaler", "plan_upscale", "upscale_files"]
