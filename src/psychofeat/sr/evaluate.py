"""x4 SR evaluation on Set5 / Set14 / BSD100, the way the SR literature reports it, plus user-facing upscaling.

For every benchmark image the provided LR_x4 file is upscaled by each model (eval mode, fp32, clamped to [0, 1],
rounded to 8 bits: exactly what a saved PNG would contain) and by the bicubic baseline (MATLAB `imresize(lr, 4)` on
uint8, `psychofeat.sr.resize.bicubic_upscale`). Scores:

* PSNR and SSIM on the BT.601 Y channel with 4 px shaved from each border (`psychofeat.classic.sr_psnr_ssim`);
* any number of extra metrics, passed in as `{column name: fn(sr, hr) -> tensor of N values}`. They receive the
  8-bit-rounded RGB images N×3×H×W in [0, 1], **with the same 4 px border shaved**, on the evaluation device.
  This is the hook for perceptual distances from networks not used in training;
  `perceptual_metrics(["squeezenet1_1", "efficientnet_lite0", "vgg16"], ...)` builds the standard set: each
  network's all-channel normalized distance (`psychofeat.metric.PerceptualDistance`, its default metric layers),
  in a column `<model>_all`, or `<model>_all (training net)` when that network's features were in a training loss
  of a compared model (then a low value is partly the loss's own target, not independent evidence).

Outputs (`write_eval_outputs`): `results.csv` (one row per image and method), `summary.csv` (mean per set and
method), `report.html` (tables and side-by-side crops: LR (nearest), bicubic, each model, HR) and `manifest.json`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from psychofeat import metric as metric_module  # looked up at call time: tests replace PerceptualDistance
from psychofeat.backbones import get_spec
from psychofeat.classic import quantize_uint8, shave_border, sr_psnr_ssim
from psychofeat.distance import ReferenceFeatures
from psychofeat.errors import DataMissingError, InputError, WeightsError
from psychofeat.images import load_image_uint8, save_image, tensor_to_uint8, uint8_to_tensor
from psychofeat.io import provenance, run_folder, write_json, write_table
from psychofeat.metric import PerceptualDistance
from psychofeat.report import HtmlReport
from psychofeat.sr.checkpoint import load_checkpoint, model_from_checkpoint
from psychofeat.sr.data import BenchmarkPair, benchmark_folder, load_benchmark
from psychofeat.sr.resize import bicubic_upscale

log = logging.getLogger(__name__)

MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
BICUBIC = "bicubic"
#: the columns that identify a row of the per-image table; every other column is a score
ID_COLUMNS = ("set", "name", "canonical_name", "method")
DEFAULT_SETS = ("set5", "set14", "bsd100")
#: networks whose all-channel distance `sr eval` reports by default (a missing optional one is skipped)
DEFAULT_PERCEPTUAL = ("squeezenet1_1", "efficientnet_lite0", "vgg16")
TRAINING_NET_MARK = " (training net)"


@dataclass
class Example:
    """Aligned crops (H×W×3 uint8) of one image: LR (nearest-upscaled), each method, HR."""

    set: str
    name: str
    box: tuple[int, int, int]  # top, left, size in HR pixels
    crops: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class EvalResult:
    per_image: pd.DataFrame
    summary: pd.DataFrame
    examples: list[Example]


def detail_box(hr: np.ndarray, size: int, stride: int = 8) -> tuple[int, int, int]:
    """The size×size window with the most gradient energy (where SR methods differ most visibly)."""
    h, w = hr.shape[:2]
    size = min(size, h, w)
    y = hr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    energy = np.zeros_like(y)
    energy[:, 1:] += np.diff(y, axis=1) ** 2
    energy[1:, :] += np.diff(y, axis=0) ** 2
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    tops = np.arange(0, h - size + 1, stride)
    lefts = np.arange(0, w - size + 1, stride)
    t, c = np.meshgrid(tops, lefts, indexing="ij")
    sums = integral[t + size, c + size] - integral[t, c + size] - integral[t + size, c] + integral[t, c]
    i, j = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(tops[i]), int(lefts[j]), size


def _crop(img: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    top, left, size = box
    return img[top : top + size, left : left + size]


def _score(
    sr: torch.Tensor, hr: torch.Tensor, shave: int, extra: Mapping[str, MetricFn], device: torch.device
) -> dict[str, float]:
    scores = {k: float(v[0]) for k, v in sr_psnr_ssim(sr, hr, shave=shave).items()}
    if extra:
        sr_s = shave_border(quantize_uint8(sr), shave).to(device)
        hr_s = shave_border(quantize_uint8(hr), shave).to(device)
        with torch.no_grad():
            for name, fn in extra.items():
                scores[name] = float(torch.as_tensor(fn(sr_s, hr_s)).reshape(-1)[0])
    return scores


class PerceptualColumn:
    """One network's distance as an `extra_metrics` function that computes each HR's features only once.

    `evaluate_models` scores every method against the same HR image in turn, so the reference features of the
    last HR are kept and reused while the HR is unchanged (checked by value, which costs far less than a forward
    pass). Inputs arrive as float64 8-bit-valued RGB; the network runs in float32.
    """

    def __init__(self, metric: PerceptualDistance) -> None:
        self.metric = metric
        self._hr: torch.Tensor | None = None
        self._ref: ReferenceFeatures | None = None

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        sr, hr = sr.float(), hr.float()
        if self._hr is None or self._hr.shape != hr.shape or not torch.equal(self._hr, hr):
            self._ref = self.metric.reference(hr)
            self._hr = hr
        out = self.metric(sr, ref=self._ref)
        assert isinstance(out, torch.Tensor)  # per_layer/spatial were not asked for
        return out


def perceptual_column_name(model: str, training_backbones: Collection[str] = ()) -> str:
    """`<model>_all`, marked `(training net)` when a compared model was trained on this network's features."""
    return f"{model}_all{TRAINING_NET_MARK if model in training_backbones else ''}"


def perceptual_metrics(
    models: Sequence[str],
    device: str | torch.device = "cpu",
    training_backbones: Collection[str] = (),
) -> tuple[dict[str, MetricFn], dict[str, str]]:
    """All-channel normalized distances of `models`, as `extra_metrics` for `evaluate_models`.

    Returns ({column: fn}, {model: why it was skipped}). A network whose weights cannot be had (an optional
    package not installed, no shared weights, offline) is skipped with a logged warning rather than failing a
    long evaluation; an unknown name is a typo and raises. Each network uses its default metric layers
    (VGG-16: relu1_2 … relu5_3, as LPIPS) and ImageNet weights; nothing is fitted to SR data.
    """
    def canonical(name: str) -> str:  # raises with close matches on a typo; aliases -> the registry name
        return name if ":" in name else get_spec(name).name

    trained = {canonical(b) for b in training_backbones}
    metrics: dict[str, MetricFn] = {}
    skipped: dict[str, str] = {}
    for model in dict.fromkeys(canonical(m) for m in models):  # de-duplicated, order kept
        try:
            metric = metric_module.PerceptualDistance(model, reduction="none", mode="normalized", device=device)
        except (WeightsError, DataMissingError, ImportError) as exc:
            skipped[model] = str(exc)
            log.warning("perceptual distance %s skipped (its network is unavailable): %s", model, exc)
            continue
        metrics[perceptual_column_name(model, trained)] = PerceptualColumn(metric)
    return metrics, skipped


def evaluate_models(
    models: Mapping[str, nn.Module],
    sets: Sequence[str] = DEFAULT_SETS,
    *,
    extra_metrics: Mapping[str, MetricFn] | None = None,
    device: str | torch.device = "cpu",
    bicubic: bool = True,
    shave: int = 4,
    examples_per_set: int = 1,
    crop_size: int = 96,
    limit: int | None = None,
    progress: bool = True,
) -> EvalResult:
    """Score every model (and the bicubic baseline) on each benchmark set; see the module docstring.

    The models are moved to `device` and put in eval mode. `limit` keeps the first N images of each set.
    """
    extra = dict(extra_metrics or {})
    reserved = {*ID_COLUMNS, "psnr", "ssim"}
    if reserved & extra.keys():
        raise InputError(f"extra metric names must not reuse the columns {sorted(reserved & extra.keys())}.")
    if BICUBIC in models:
        raise InputError(f"{BICUBIC!r} is the baseline's name; label the model differently.")
    if not models and not bicubic:
        raise InputError("nothing to evaluate: give at least one model or keep the bicubic baseline.")
    dev = torch.device(device)
    for m in models.values():
        m.to(dev).eval()
    pairs: list[BenchmarkPair] = []
    for s in sets:
        pairs += load_benchmark(s, limit=limit)
    rows: list[dict[str, Any]] = []
    examples: list[Example] = []
    shown: dict[str, int] = {}
    for pair in tqdm(pairs, desc="sr eval", unit="img", disable=None if progress else True):
        hr = uint8_to_tensor(pair.hr).double()
        outputs: dict[str, torch.Tensor] = {}
        if bicubic:
            outputs[BICUBIC] = uint8_to_tensor(bicubic_upscale(pair.lr)).double()
        lr = uint8_to_tensor(pair.lr).to(dev)
        for label, model in models.items():
            with torch.no_grad():
                sr = model(lr).float().clamp_(0.0, 1.0)
            if sr.shape != hr.shape:
                raise InputError(f"model {label!r} produced {tuple(sr.shape)} for {pair.set}/{pair.name}, "
                                 f"HR is {tuple(hr.shape)}: is it an x4 model?")
            outputs[label] = sr.cpu().double()
        for label, sr in outputs.items():
            rows.append({"set": pair.set, "name": pair.name, "canonical_name": pair.canonical_name, "method": label,
                         **_score(sr, hr, shave, extra, dev)})
        if shown.get(pair.set, 0) < examples_per_set:
            shown[pair.set] = shown.get(pair.set, 0) + 1
            examples.append(_example(pair, outputs, crop_size))
    per_image = pd.DataFrame(rows)
    return EvalResult(per_image=per_image, summary=summarize(per_image), examples=examples)


def _example(pair: BenchmarkPair, outputs: Mapping[str, torch.Tensor], crop_size: int) -> Example:
    box = detail_box(pair.hr, crop_size)
    scale = pair.hr.shape[0] // pair.lr.shape[0]
    crops = {"LR (nearest)": _crop(np.repeat(np.repeat(pair.lr, scale, 0), scale, 1), box)}
    crops.update({label: _crop(tensor_to_uint8(sr), box) for label, sr in outputs.items()})
    crops["HR"] = _crop(pair.hr, box)
    return Example(pair.set, pair.canonical_name, box, crops)


def score_columns(per_image: pd.DataFrame) -> list[str]:
    """The score columns of a per-image table (everything but the identifying columns)."""
    return [c for c in per_image.columns if c not in ID_COLUMNS]


def summarize(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean of every score per (set, method), with the image count; sets in benchmark order."""
    g = per_image.groupby(["set", "method"], sort=False)
    summary = g[score_columns(per_image)].mean().reset_index()
    summary.insert(2, "n_images", g.size().to_numpy())
    return summary


def _side_by_side(crops: Mapping[str, np.ndarray], gap: int = 4) -> np.ndarray:
    h = max(c.shape[0] for c in crops.values())
    parts: list[np.ndarray] = []
    for c in crops.values():
        if parts:
            parts.append(np.full((h, gap, 3), 255, np.uint8))
        parts.append(np.pad(c, ((0, h - c.shape[0]), (0, 0), (0, 0)), constant_values=255))
    return np.concatenate(parts, axis=1)


def write_eval_outputs(
    result: EvalResult,
    out: str | os.PathLike[str],
    info: Mapping[str, Any] | None = None,
    title: str = "x4 super-resolution: Set5, Set14, BSD100",
    *,
    notes: Sequence[str] = (),
    sections: Callable[[HtmlReport], None] | None = None,
) -> Path:
    """Write results.csv, summary.csv, report.html and manifest.json into an (already prepared) folder.

    `notes` are extra paragraphs under the conventions note (e.g. what the perceptual columns are); `sections`
    adds report sections after the summary table (the experiment's protocol, training curves, paired tests).
    """
    out = Path(out)
    write_table(out / "results.csv", result.per_image)
    write_table(out / "summary.csv", result.summary)
    meta = provenance(kind="sr-eval", **dict(info or {}))
    write_json(out / "manifest.json", meta)
    rep = HtmlReport(title)
    rep.paragraph(
        "PSNR (dB) and SSIM on the ITU-R BT.601 Y channel of 8-bit images with a 4-pixel border shaved; SSIM with an "
        "11×11 Gaussian window (σ = 1.5), valid region. Bicubic = MATLAB imresize(LR, 4). LR inputs are the "
        "benchmark's own LR_x4 files. Note: Set5 butterfly is a crop of Set14 monarch and Set5 head a crop of "
        "Set14 face; do not pool sets.",
        css_class="note",
    )
    for note in notes:
        rep.paragraph(note, css_class="note")
    rep.heading("Mean per set")
    rep.table(result.summary, float_format="{:.4f}")
    if sections is not None:
        sections(rep)
    for ex in result.examples:
        rep.heading(f"{ex.set} / {ex.name}", level=3)
        top, left, size = ex.box
        caption = (f"left to right: {', '.join(ex.crops)} — HR rows {top}–{top + size - 1}, "
                   f"columns {left}–{left + size - 1}")
        strip = _side_by_side(ex.crops)
        rep.image(strip, caption=caption, width=min(1100, 2 * strip.shape[1]))
    rep.heading("Per image")
    rep.table(result.per_image, float_format="{:.4f}", max_rows=400)
    rep.provenance(meta)
    return rep.write(out / "report.html")


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    sets: Sequence[str] = DEFAULT_SETS,
    *,
    label: str = "srresnet",
    overwrite: bool = False,
    extra_metrics: Mapping[str, MetricFn] | None = None,
    perceptual: Sequence[str] = (),
    **kwargs: Any,
) -> EvalResult:
    """`psychofeat sr eval`: evaluate one checkpoint against bicubic and write the outputs into `out`.

    `perceptual` names networks whose all-channel distance is added (`perceptual_metrics`); the checkpoint's own
    loss network, if it had one, is marked as the training net.
    """
    for s in sets:
        benchmark_folder(s)  # fail on a typo before any work
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt)
    with run_folder(out, overwrite) as run:  # built beside `out`, swapped in whole at the end
        trained_on = training_backbones(ckpt.get("train_config"))
        metrics, skipped = perceptual_metrics(perceptual, kwargs.get("device", "cpu"), trained_on)
        notes = [perceptual_note(list(metrics), skipped)] if perceptual else []
        metrics.update(extra_metrics or {})
        result = evaluate_models({label: model}, sets, extra_metrics=metrics, **kwargs)
        write_eval_outputs(result, run.path, {"checkpoint": str(checkpoint), "sets": list(sets),
                                              "model_config": model.config.to_dict(), "perceptual": list(perceptual),
                                              "perceptual_skipped": skipped},
                           notes=notes)
    return result


def training_backbones(train_config: Mapping[str, Any] | None) -> set[str]:
    """The loss network of a training config (empty for a pixel-loss or unknown run), for `(training net)` marks.

    Only the run's own loss is seen: a model fine-tuned from a feature-loss model (`--init`) also owes something
    to the earlier loss network, which this does not follow.
    """
    if not train_config or train_config.get("loss", "pixel") == "pixel":
        return set()
    return {str(train_config.get("backbone", "vgg16"))}


def perceptual_note(columns: Sequence[str], skipped: Mapping[str, str]) -> str:
    """The report's explanation of the perceptual columns (and of any network that was skipped)."""
    cols = list(columns)
    text = (
        "Perceptual columns (lower is better): all-channel normalized deep-feature distance (unit-normalised "
        "channels, squared differences summed over channels, averaged over positions and over the network's "
        "default metric layers; ImageNet weights, nothing fitted) on the same 8-bit, 4 px-shaved RGB images: "
        + (", ".join(cols) or "none") + "."
    )
    if any(c.endswith(TRAINING_NET_MARK) for c in cols):
        text += (" A column marked (training net) uses the network whose features were in a compared model's "
                 "training loss: it is reported for reference but is not independent evidence.")
    if skipped:
        text += " Skipped (network unavailable): " + ", ".join(sorted(skipped)) + "."
    return text


def upscale_file(model: nn.Module, src: str | os.PathLike[str], dst: str | os.PathLike[str],
                 device: str | torch.device = "cpu", overwrite: bool = True) -> Path:
    """Upscale one image file (greyscale is read as RGB) and save the 8-bit result (PNG recommended)."""
    dev = torch.device(device)
    lr = uint8_to_tensor(load_image_uint8(src)).to(dev)
    with torch.no_grad():
        sr = model.to(dev).eval()(lr).float().clamp_(0.0, 1.0)
    return save_image(sr.cpu(), dst, overwrite=overwrite)


__all__ = [
    "BICUBIC",
    "DEFAULT_PERCEPTUAL",
    "DEFAULT_SETS",
    "TRAINING_NET_MARK",
    "EvalResult",
    "Example",
    "MetricFn",
    "PerceptualColumn",
    "detail_box",
    "evaluate_checkpoint",
    "evaluate_models",
    "perceptual_column_name",
    "perceptual_metrics",
    "perceptual_note",
    "summarize",
    "training_backbones",
    "upscale_file",
    "write_eval_outputs",
]
