"""`psychofeat invert`: what do PE top-k channels keep of an image, compared with bottom-k, random-k and all channels?

Protocol (docs/invert.md): for each layer set (by default relu1_2, relu2_2, relu3_3, relu4_3 one at a time, then
the four together) and each selection of it — PE top-k, bottom-k (responsive channels), random-k (several seeds)
and all channels, k = `fraction` of each layer's channels, from a `psychofeat analyze` selection.json — every image
is reconstructed by `psychofeat.experiments.invert.invert` from the same initial image with the same budget. The
reconstructions are quantised to 8 bits once (`psychofeat.images.quantize`), saved, and those very bytes are scored
against the originals (so `--resume`, which reads the PNGs back, scores the same bytes) with measures the
optimisation never saw: PSNR and SSIM on RGB, and the all-channel distances of SqueezeNet 1.1 and
EfficientNet-Lite0; VGG-16's all-channel distance is reported too, marked as the optimised network when it is.
Paired per-image differences (top − all, top − mean of the random seeds, top − bottom) get bootstrap 95 % CIs and
win shares from `psychofeat.stats.paired_comparisons` (as the SR experiment's).

This module runs the study and returns its `InvertResult` (`run_invert_study`); `invert_report` writes the tables,
the manifest and report.html (`write_outputs`), and `invert_report.run_invert` does both. `run_invert` here is a
deprecated alias of `invert_report.run_invert` (what it did before the report moved out).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm

from psychofeat import stats
from psychofeat.backbones import get_spec, load_backbone
from psychofeat.backbones.base import Backbone
from psychofeat.classic import psnr, ssim
from psychofeat.config import data_path
from psychofeat.distance import SelectedChannelDistance
from psychofeat.errors import DataMissingError, InputError, PsychofeatError, unknown_name
from psychofeat.experiments.invert import STATUS_ZERO_GRAD, Inversion, InversionBudget, initial_images, invert
from psychofeat.images import IMAGE_SUFFIXES, dequantize, list_images, load_image_uint8, quantize, save_image
from psychofeat.io import check_same_settings, prepare_out_dir, read_json, sha256_file, write_json
from psychofeat.precision import dtype_name, resolve_dtype
from psychofeat.selection import Selection, load_ranked
from psychofeat.sr.evaluate import perceptual_metrics

DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
DEFAULT_PERCEPTUAL = ("squeezenet1_1", "efficientnet_lite0", "vgg16")
#: Kodak24 as shipped in the shared SR training pool (500×500 crops of the 768×512 originals)
KODAK_PATTERN = "kodak24_*.png"
COMPARISONS = (("top", "all"), ("top", "random"), ("top", "bottom"))
#: the scores that grow with quality; every distance column shrinks
HIGHER_BETTER = ("psnr", "ssim")
INIT = "init"
#: settings that change the reconstructions; a resumed run must keep them
RUN_FIELDS = ("model", "weights", "selection_sha256", "layers", "combined", "fraction", "seeds", "mode", "steps",
              "lr", "param", "tv", "noise", "init_seed", "size", "n_images", "images", "dtype")


@dataclass
class InvertConfig:
    """Every setting of the experiment. Why the defaults are what they are: docs/invert.md."""

    selection: str = "out/analyze/selection.json"
    model: str = "vgg16"
    weights: str | None = None
    preprocessing: str | None = None
    layers: tuple[str, ...] = DEFAULT_LAYERS
    combined: bool = True
    fraction: float = 0.25
    seeds: int = 2
    mode: str = "mse"
    steps: int = 100
    lr: float = 0.1
    param: str = "clamp"
    tv: float = 0.0
    noise: float = 0.02
    init_seed: int = 0
    size: int = 96
    n_images: int = 8
    images: str | None = None
    dtype: str = "auto"
    device: str = "cpu"
    perceptual: tuple[str, ...] = DEFAULT_PERCEPTUAL
    n_boot: int = 2000
    report_images: int = 4
    selection_sha256: str = ""

    def budget(self) -> InversionBudget:
        return InversionBudget(steps=self.steps, lr=self.lr, param=self.param, tv=self.tv, dtype=self.dtype)

    def layer_sets(self) -> list[tuple[str, ...]]:
        sets: list[tuple[str, ...]] = [(lay,) for lay in self.layers]
        if self.combined and len(self.layers) > 1:
            sets.append(tuple(self.layers))
        return sets

    def validate(self) -> None:
        self.budget().validate()
        if not self.layers:
            raise InputError("--layers is empty: name at least one layer, e.g. relu2_2.")
        if not 0 < self.fraction <= 1:
            raise InputError(f"--fraction must be in (0, 1], got {self.fraction}.")
        if self.seeds < 1:
            raise InputError(f"--seeds must be ≥ 1 (random-k needs at least one seed), got {self.seeds}.")
        if self.mode not in ("mse", "normalized"):
            raise InputError(f"--mode must be mse or normalized, got {self.mode!r}.")
        if self.size < 32:
            raise InputError(f"--size must be ≥ 32 px (the metrics' minimum), got {self.size}.")
        if self.n_images < 1:
            raise InputError(f"--n-images must be ≥ 1, got {self.n_images}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: `--quick`: two images, one layer, few steps (the smoke test; under a minute on a CPU)
QUICK: dict[str, Any] = {"layers": ("relu2_2",), "n_images": 2, "steps": 10, "seeds": 1, "size": 64,
                         "n_boot": 200, "report_images": 2}


def make_config(quick: bool = False, **overrides: Any) -> InvertConfig:
    """The default settings, or `--quick`'s, with explicit overrides (None keeps the preset; unknown names raise)."""
    known = [f.name for f in dataclasses.fields(InvertConfig)]
    unknown = set(overrides) - set(known)
    if unknown:
        raise unknown_name("invert setting", min(unknown), known)
    base: dict[str, Any] = dict(QUICK) if quick else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    return InvertConfig(**base)


def layer_label(layers: Sequence[str]) -> str:
    return "+".join(layers)


# ---------------------------------------------------------------------------------------------------------- images
def _square(arr: np.ndarray, size: int) -> np.ndarray:
    """The centre square of an H×W×3 uint8 image, resized to size×size (PIL bicubic, antialiased when shrinking)."""
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = Image.fromarray(arr[top : top + s, left : left + s])
    if s != size:
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def image_files(folder: str | os.PathLike[str] | None, n: int) -> list[Path]:
    """`n` images: the given folder's first `n` (sorted by name), or `n` evenly spaced Kodak24 images."""
    if folder is not None:
        root = Path(folder)
        if not root.is_dir():
            raise InputError(f"--images {root} is not a folder; give a folder of PNG/JPEG images.")
        files, _ = list_images(root)
        if not files:
            raise InputError(f"--images {root} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        return files[:n]
    pool = data_path("sr_train", "images")
    files = sorted(pool.glob(KODAK_PATTERN))
    if not files:
        raise DataMissingError(f"no Kodak24 images ({KODAK_PATTERN}) in {pool}; set PSYCHOFEAT_DATA_ROOT to the shared "
                               "data folder, or give your own with --images FOLDER.")
    pick = np.unique(np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int))
    return [files[i] for i in pick]


def load_image_set(files: Sequence[Path], size: int) -> tuple[list[str], torch.Tensor]:
    """Names (file stems) and an N×3×size×size uint8 tensor of the centre squares (`dequantize` for [0, 1])."""
    arrays = [_square(load_image_uint8(f), size) for f in files]
    return [f.stem for f in files], torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


# ------------------------------------------------------------------------------------------------------ selections
def selections_for(base: Selection, layers: Sequence[str], fraction: float, seeds: int) -> dict[str, Selection]:
    """{label: selection} for one layer set: top, bottom, random0..random{seeds-1}, all."""
    sub = base.restrict(list(layers))
    out = {"top": sub.select("top", fraction), "bottom": sub.select("bottom", fraction)}
    out.update({f"random{s}": sub.select("random", fraction, s) for s in range(seeds)})
    out["all"] = sub.select("all")
    return out


def method_of(label: str) -> tuple[str, int | None]:
    """'random3' -> ('random', 3); 'top' -> ('top', None)."""
    if label.startswith("random"):
        return "random", int(label[len("random"):])
    return label, None


def load_selection(cfg: InvertConfig) -> Selection:
    return load_ranked(cfg.selection, cfg.layers)


# --------------------------------------------------------------------------------------------------------- scoring
def score_images(recon: torch.Tensor, target: torch.Tensor, metrics: dict[str, Callable[..., torch.Tensor]],
                 device: str | torch.device) -> dict[str, np.ndarray]:
    """PSNR and SSIM on 8-bit RGB, plus each perceptual column, per image.

    `recon` and `target` are the uint8 levels that are (or were) saved as PNG: a table scores exactly what the run
    wrote, so a resumed run, which reads the PNGs back, reproduces it bit for bit.
    """
    r, t = dequantize(recon, torch.float64), dequantize(target, torch.float64)
    out = {"psnr": psnr(r, t).numpy(), "ssim": ssim(r, t).numpy()}
    r32, t32 = dequantize(recon).to(device), dequantize(target).to(device)
    with torch.no_grad():
        for name, fn in metrics.items():
            out[name] = torch.as_tensor(fn(r32, t32)).double().cpu().numpy()
    return out


def perceptual_columns(cfg: InvertConfig, backbone: Backbone) -> tuple[dict[str, Callable[..., torch.Tensor]],
                                                                       dict[str, str]]:
    """The SR evaluation's all-channel distance columns; VGG-16 is marked when it is the optimised network.

    The columns use each network's ImageNet weights, so with another weights source (the random-weight control)
    the VGG-16 column is a held-out network and is not marked.
    """
    try:
        default_source = get_spec(backbone.name).default_source
    except PsychofeatError:  # a custom backbone: no column uses its weights
        default_source = None
    trained = {backbone.name} if backbone.weights_info.source == default_source else set()
    return perceptual_metrics(list(cfg.perceptual), cfg.device, training_backbones=trained)


# -------------------------------------------------------------------------------------------------------- the run
@dataclass
class InvertResult:
    out: Path
    results: pd.DataFrame  # one row per layer set, selection and image (+ the init rows)
    paired: pd.DataFrame
    curves: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    config: InvertConfig | None = None  # the settings as run ("auto" dtype resolved, the selection's checksum)


def fingerprint(init: torch.Tensor) -> str:
    """sha256 of the initial images' bytes: the proof that every selection started from the same pixels."""
    return hashlib.sha256(init.contiguous().numpy().tobytes()).hexdigest()


def _run_dir(out: Path, layers: Sequence[str], label: str) -> Path:
    return out / "recon" / layer_label(layers) / label


def _save_pngs(folder: Path, names: Sequence[str], levels: torch.Tensor) -> None:
    """Write N×3×H×W uint8 levels (the output of `quantize`) as PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in zip(names, levels):
        save_image(img.unsqueeze(0), folder / f"{name}.png")


def _cached(folder: Path, cfg_key: dict[str, Any], names: Sequence[str]) -> tuple[torch.Tensor, dict[str, Any]] | None:
    """A finished selection run of the same settings (for --resume): its 8-bit reconstructions (uint8) and record."""
    rec_path = folder / "run.json"
    if not rec_path.is_file():
        return None
    rec = read_json(rec_path)
    if rec.get("settings") != cfg_key or any(not (folder / f"{n}.png").is_file() for n in names):
        return None
    levels = np.stack([load_image_uint8(folder / f"{n}.png") for n in names])
    return torch.from_numpy(levels).permute(0, 3, 1, 2).contiguous(), rec


def run_invert_study(cfg: InvertConfig, out: str | os.PathLike[str], *, backbone: Backbone | None = None,
               resume: bool = False, overwrite: bool = False, progress: bool = True,
               log: Callable[[str], None] | None = None) -> InvertResult:
    """Run every (layer set, selection) inversion into `out` (its images and per-run records: what `resume` reuses),
    score and compare them. The tables, manifest and report are written by `invert_report.write_outputs`
    (`invert_report.run_invert` does both)."""
    say = log or (lambda s: None)
    cfg.validate()
    sel = load_selection(cfg)
    # "auto" becomes what this machine computes natively (bf16 only with native bf16): recorded, and resumed, as such
    dtype_requested = cfg.dtype
    cfg = dataclasses.replace(cfg, selection_sha256=sha256_file(cfg.selection),
                              dtype=dtype_name(resolve_dtype(cfg.dtype, cfg.device)))
    out = Path(out)
    settings = _settings(cfg)
    if resume and (out / "settings.json").is_file():
        check_same_settings(read_json(out / "settings.json"), settings, f"settings than the run in {out}")
    t_start = time.perf_counter()
    files = image_files(cfg.images, cfg.n_images)
    names, target_levels = load_image_set(files, cfg.size)
    targets = dequantize(target_levels)
    if backbone is None:
        backbone = load_backbone(cfg.model, cfg.weights, preprocessing=cfg.preprocessing, device=cfg.device)
    backbone.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # faster convolutions
    # another network or other weights than the selection's: refused before any output is written
    sel.check_backbone(backbone)
    out = prepare_out_dir(out, overwrite, keep=resume, owned=("settings.json",))  # a fresh run: the old one goes
    write_json(out / "settings.json", settings)
    init = initial_images(len(names), (cfg.size, cfg.size), cfg.init_seed, cfg.noise)
    init_sha = fingerprint(init)
    _save_pngs(out / "images" / "original", names, target_levels)
    init_levels = quantize(init)
    _save_pngs(out / "images" / INIT, names, init_levels)
    metrics, skipped = perceptual_columns(cfg, backbone)
    budget = cfg.budget()
    rows: list[dict[str, Any]] = []
    curves: list[pd.DataFrame] = []
    runs: list[dict[str, Any]] = []
    timing: dict[str, float] = {}
    init_scores = score_images(init_levels, target_levels, metrics, cfg.device)
    for i, name in enumerate(names):
        rows.append({"layers": "", "selection": INIT, "method": INIT, "seed": None, "n_channels": 0, "image": name,
                     "status": "", "final_objective": np.nan, **{k: float(v[i]) for k, v in init_scores.items()}})
    plan = [(layers, label, s) for layers in cfg.layer_sets()
            for label, s in selections_for(sel, layers, cfg.fraction, cfg.seeds).items()]
    say(f"{len(plan)} inversions of {len(names)} images ({cfg.size} px, {cfg.steps} steps each)")
    bar = tqdm(total=len(plan) * cfg.steps, desc="invert", unit="step", disable=None if progress else True)
    for layers, label, s in plan:
        folder = _run_dir(out, layers, label)
        key = {**settings, "layer_set": list(layers), "label": label, "init_sha256": init_sha}
        cached = _cached(folder, key, names) if resume else None
        t0 = time.perf_counter()
        if cached is not None:
            recon, rec = cached
            bar.update(cfg.steps)
        else:
            core = SelectedChannelDistance(backbone, s, cfg.mode).to(cfg.device)
            done = [0]

            def tick(step: int, done: list[int] = done) -> None:
                bar.update(step - done[0])
                done[0] = step

            inv = invert(core, targets, init, budget, progress=tick)
            recon = quantize(inv.images)  # the one quantisation: these bytes are saved and scored
            rec = _record(inv, key, s, init_sha)
            _save_pngs(folder, names, recon)
            write_json(folder / "run.json", rec)
        timing[f"{layer_label(layers)}/{label}"] = time.perf_counter() - t0
        runs.append({"layers": layer_label(layers), "selection": label, "init_sha256": rec["init_sha256"],
                     "budget": rec["budget"], "n_channels": rec["n_channels"]})
        scores = score_images(recon, target_levels, metrics, cfg.device)
        method, seed = method_of(label)
        for i, name in enumerate(names):
            rows.append({"layers": layer_label(layers), "selection": label, "method": method, "seed": seed,
                         "n_channels": rec["n_channels"], "image": name, "status": rec["status"][i],
                         "final_objective": rec["final_objective"][i], **{k: float(v[i]) for k, v in scores.items()}})
        c = np.asarray(rec["curve"], dtype=np.float64)
        curves.append(pd.DataFrame({"layers": layer_label(layers), "selection": label, "step": np.arange(len(c)),
                                    "objective_mean": c.mean(1), "objective_median": np.median(c, 1)}))
    bar.close()
    results = pd.DataFrame(rows)
    paired = paired_table(results, cfg.n_boot)
    timing["total"] = time.perf_counter() - t_start
    info = {"config": cfg.to_dict(), "dtype_requested": dtype_requested, "budget": budget.to_dict(),
            "images": [str(f) for f in files], "image_names": names, "init_sha256": init_sha,
            "perceptual_columns": list(metrics), "perceptual_skipped": skipped, "runs": runs, "timing_s": timing,
            "selection": {"path": str(Path(cfg.selection).resolve()), "sha256": cfg.selection_sha256,
                          "model": sel.model, "weights": sel.weights},
            "backbone": {"name": backbone.name, "weights": backbone.weights_info.source,
                         "params_sha256": backbone.weights_info.params_sha256},
            "threads": torch.get_num_threads()}
    return InvertResult(out, results, paired, pd.concat(curves, ignore_index=True), info, cfg)


def _settings(cfg: InvertConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    return {k: list(d[k]) if isinstance(d[k], tuple) else d[k] for k in RUN_FIELDS}


def _record(inv: Inversion, key: dict[str, Any], sel: Selection, init_sha: str) -> dict[str, Any]:
    return {"settings": key, "init_sha256": init_sha, "budget": inv.budget, "n_channels": sel.n_selected(),
            "channels": {k: v.tolist() for k, v in sel.channels.items()}, "status": inv.status,
            "final_objective": inv.final_objective.tolist(), "init_distance": inv.init_distance.tolist(),
            "grad_norm0": inv.grad_norm0.tolist(), "curve": inv.curve.tolist()}


# ----------------------------------------------------------------------------------------------------- statistics
def score_names(results: pd.DataFrame) -> list[str]:
    """The score columns: PSNR, SSIM and the perceptual distances."""
    fixed = {"layers", "selection", "method", "seed", "n_channels", "image", "status", "final_objective"}
    return [c for c in results.columns if c not in fixed]


def per_image_methods(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (layer set, image, method), random-k averaged over its seeds: columns layers, image, method and
    the scores."""
    scores = score_names(results)
    rows = results[results["method"] != INIT]
    return rows.groupby(["layers", "image", "method"], sort=False)[scores].mean().reset_index()


def paired_table(results: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Top − all, top − random (seed mean) and top − bottom per layer set and score (`stats.paired_comparisons`)."""
    scores = score_names(results)
    return stats.paired_comparisons(per_image_methods(results), COMPARISONS, scores=scores,
                                    higher_better=[s for s in scores if s in HIGHER_BETTER], group="layers",
                                    unit="image", n_boot=n_boot, seed=seed)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean score per layer set and method (random-k: over seeds and images), plus the init row."""
    scores = score_names(results)
    g = results.groupby(["layers", "method"], sort=False)
    s = g[scores].mean().reset_index()
    s.insert(2, "n_channels", g["n_channels"].first().to_numpy())
    s.insert(3, "zero_gradient", g["status"].apply(lambda v: int((v == STATUS_ZERO_GRAD).sum())).to_numpy())
    return s


__all__ = [
    "COMPARISONS",
    "DEFAULT_LAYERS",
    "QUICK",
    "InvertConfig",
    "InvertResult",
    "image_files",
    "make_config",
    "load_image_set",
    "paired_table",
    "per_image_methods",
    "run_invert_study",
    "selections_for",
    "summary_table",
]


def __getattr__(name: str) -> Any:
    """`run_invert` (the whole verb: study, tables and report) moved to `psychofeat.experiments.invert_report`.
    Resolved by name at call time (importlib), so that this study does not import its report."""
    if name != "run_invert":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import warnings

    warnings.warn("psychofeat.experiments.invert_experiment.run_invert is deprecated; use "
                  "psychofeat.experiments.invert_report.run_invert (the study and its outputs) or run_invert_study "
                  "(the study alone).", DeprecationWarning, stacklevel=2)
    return importlib.import_module("psychofeat.experiments.invert_report").run_invert
