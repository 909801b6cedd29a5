"""The super-resolution experiment of SCIENCE.md: does a loss over high-PE channels beat the all-channel VGG loss?

Protocol (`psychofeat sr experiment`, docs/sr.md "The experiment"):

1. **Stage 1** ("pixel"): SRResNet x4 trained from scratch with L1.
2. **Stage 2**: four fine-tunings from stage 1's final weights with L1 + λ·d_sel, d_sel over (a) *all* channels of
   the feature layers (the usual VGG loss), (b) the PE *top*-k, (c) *bottom*-k and (d) *random*-k channels of each
   layer (k = frac · channels). λ, steps, learning rate, seed, layers and distance mode are identical, and the
   stateless sampler gives every run the same patches in the same order: the four runs differ only in which
   channels the loss sees.
3. **Evaluation** of the five models and bicubic on Set5, Set14 and BSD100: PSNR/SSIM (Y, 4 px shave) and the
   all-channel distances of networks *not* in the loss (SqueezeNet 1.1, EfficientNet-Lite0), with VGG-16's
   reported but marked as the training network. Paired per-image differences with bootstrap intervals compare
   top-k with the all-channel loss and with the two controls.

The channel ranking is a `psychofeat analyze` selection.json: it comes from grating stimuli and a CSF alone. Nothing
here looks at SR results to choose channels, λ, layers or step counts (the choices and their reasons are in
`ExperimentConfig` and docs/sr.md). One training seed per loss: the intervals reflect the choice of test images, not
training noise.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from psychofeat import stats
from psychofeat.distance import MIN_SIZE
from psychofeat.errors import InputError, OutputExistsError, unknown_name
from psychofeat.io import check_same_settings, prepare_out_dir, read_json, sha256_file, write_json, write_table
from psychofeat.report import HtmlReport
from psychofeat.selection import load_ranked
from psychofeat.sr.checkpoint import model_from_checkpoint
from psychofeat.sr.evaluate import (
    DEFAULT_PERCEPTUAL,
    DEFAULT_SETS,
    EvalResult,
    evaluate_models,
    perceptual_metrics,
    perceptual_note,
    score_columns,
    write_eval_outputs,
)
from psychofeat.sr.train import TrainConfig, train

log = logging.getLogger(__name__)

PIXEL = "pixel"
FEATURE_LOSSES = ("all", "top", "bottom", "random")
METHODS = (PIXEL, *FEATURE_LOSSES)
#: (method, reference) pairs whose per-image differences are tested: the claim, then the two controls
COMPARISONS = (("top", "all"), ("top", "random"), ("top", "bottom"), ("bottom", "all"), ("random", "all"))
#: settings that change what is trained; a resumed experiment must keep them
TRAINING_FIELDS = ("selection_sha256", "stage1_steps", "stage2_steps", "batch", "patch", "stage1_lr", "stage2_lr",
                   "lam", "layers", "feature_mode", "frac", "selection_seed", "seed", "backbone", "n_blocks",
                   "channels", "train_pattern")
N_BOOT = 2000


@dataclass
class ExperimentConfig:
    """Every setting of the experiment. The defaults are the GPU run; `CPU` and `TINY` override some of them.

    Why these values:
    * steps: ≤ 10 min on one H100/H200 at ≈ 45 steps/s (SRResNet + VGG-16 loss, batch 16): 4 × 2500 stage-2 steps
      ≈ 225 s, 5000 stage-1 steps ≤ 110 s (pixel steps are cheaper), leaving ≈ 4 min for start-up, five loss
      networks and the evaluation of six methods on 119 images with three networks.
    * learning rates: stage 1 at 2e-4 (BasicSR's MSRResNet x4 setting; a short run benefits from the larger step),
      stage 2 at 1e-4 (SRGAN's fine-tuning rate, half of stage 1: it adjusts a trained model). Adam, constant.
    * layers relu2_2, relu3_3, relu4_3: mid-level VGG-16 features as in Johnson et al. (2016) and LPIPS. relu1_2 is
      left to the pixel term; relu5_3 is a 6×6 map on a 96 px patch, mostly border.
    * distance mode "normalized": the unit-normalised distance the PE selection is meant for (LPIPS without the
      learned weights); in this mode a subset's distance has the same scale as the full layer's.
    * λ = 0.1: on bicubic-upscaled 96 px training patches L1 ≈ 0.027 and d_sel ≈ 0.48 (all), 0.55 (top), 0.50
      (bottom), 0.51 (random), so λ·d_sel ≈ 2× L1: the feature term leads without drowning the pixel term, and the
      four selections get nearly the same weight. Measured before any SR model was trained, not tuned on results.
    * frac 0.25: the selection fraction of `psychofeat analyze` (k = 25 % of each layer's channels).
    """

    selection: str = ""
    stage1_steps: int = 5000
    stage2_steps: int = 2500
    batch: int = 16
    patch: int = 96
    stage1_lr: float = 2e-4
    stage2_lr: float = 1e-4
    lam: float = 0.1
    layers: list[str] = field(default_factory=lambda: ["relu2_2", "relu3_3", "relu4_3"])
    feature_mode: str = "normalized"
    frac: float = 0.25
    selection_seed: int = 0
    seed: int = 0
    backbone: str = "vgg16"
    n_blocks: int | None = None  # None: the standard SRResNet (16 blocks, 64 channels)
    channels: int | None = None
    train_pattern: str | None = None
    sets: list[str] = field(default_factory=lambda: list(DEFAULT_SETS))
    limit: int | None = None
    perceptual: list[str] = field(default_factory=lambda: list(DEFAULT_PERCEPTUAL))
    device: str = "cpu"
    amp: str = "auto"
    examples: int = 1
    log_every: int = 50
    ckpt_every: int = 500
    selection_sha256: str = ""  # filled in by `resolve`

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        if not self.selection:
            raise InputError("the experiment needs --selection selection.json (from `psychofeat analyze`).")
        for name in ("stage1_steps", "stage2_steps", "batch", "patch", "examples", "log_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(self, name)}.")
        if self.lam <= 0:
            raise InputError(f"--lambda must be positive (with λ = 0 the four feature losses coincide), "
                             f"got {self.lam}.")
        if not self.sets:
            raise InputError("--sets is empty: name at least one of set5, set14, bsd100.")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit must be ≥ 1, got {self.limit}.")
        if self.patch < MIN_SIZE:  # stage 2's feature losses compare HR patches
            raise InputError(f"--patch must be ≥ {MIN_SIZE} px (the feature loss's smallest input), got {self.patch}.")

    def stage_configs(self, runs: Path) -> dict[str, TrainConfig]:
        """The five `sr train` configurations; the four stage-2 ones differ only in `loss`."""
        common: dict[str, Any] = {
            "batch": self.batch, "patch": self.patch, "seed": self.seed, "n_blocks": self.n_blocks,
            "channels": self.channels, "bn": None, "train_pattern": self.train_pattern, "device": self.device,
            "amp": self.amp, "log_every": self.log_every, "ckpt_every": self.ckpt_every,
        }
        stages = {PIXEL: TrainConfig(loss=PIXEL, steps=self.stage1_steps, learning_rate=self.stage1_lr, **common)}
        init = str((runs / PIXEL / "final.pt").resolve())
        common.update(n_blocks=None, channels=None)  # the architecture comes from the stage-1 checkpoint
        for loss in FEATURE_LOSSES:
            stages[loss] = TrainConfig(
                loss=loss, steps=self.stage2_steps, learning_rate=self.stage2_lr, init=init,
                selection=str(Path(self.selection).resolve()), layers=list(self.layers), lam=self.lam,
                frac=self.frac, selection_seed=self.selection_seed, feature_mode=self.feature_mode,
                backbone=self.backbone, **common,
            )
        return stages


#: the CPU smoke setting (`--tiny`): the standard SRResNet and loss, far fewer and smaller patches, Set5 only.
TINY: dict[str, Any] = {"stage1_steps": 50, "stage2_steps": 10, "batch": 4, "patch": 48, "sets": ["set5"],
                        "log_every": 5, "ckpt_every": 1000}

#: The budgeted CPU run (`--preset cpu`): the GPU protocol (same losses, λ, layers, learning rates, batch, seed and
#: selection) on a budget of about one CPU-hour, chosen before any result was seen (docs/sr.md "CPU preset"):
#: * SRResNet with 8 residual blocks instead of 16 and 64 px HR patches instead of 96 (LR 16 px): a pixel step costs
#:   ≈ 0.3 core-s and a feature-loss step ≈ 1 core-s on a quiet machine (≈ 1 s and ≈ 3 s of wall time with one
#:   thread on a machine shared with two other jobs), so 2500 stage-1 steps and 4 × 400 stage-2 steps are
#:   ≈ 12 + 27 core-min, and at most ≈ 100 min of wall time when the machine is busy;
#: * 2500 stage-1 steps at lr 2e-4: the part of an L1 SRResNet's training curve where it passes bicubic on Set5;
#: * 400 stage-2 steps at lr 1e-4: 6400 patches seen by each fine-tuning, enough for the feature term to change
#:   textures (it leads the loss, λ·d ≈ 2× L1) while keeping four fine-tunings affordable;
#: * evaluation on the first 30 images of each set (Set5 5, Set14 14, BSD100 30) with the two held-out networks only:
#:   the VGG-16 column is the training network's own distance (not evidence) and would cost as much as the rest;
#: * checkpoints every 250 steps so that `--resume` loses at most a few minutes.
CPU: dict[str, Any] = {"stage1_steps": 2500, "stage2_steps": 400, "patch": 64, "n_blocks": 8,
                       "limit": 30, "perceptual": ["squeezenet1_1", "efficientnet_lite0"], "log_every": 50,
                       "ckpt_every": 250}

#: named presets of `psychofeat sr experiment --preset`; "gpu" is the dataclass defaults
PRESETS: dict[str, dict[str, Any]] = {"gpu": {}, "cpu": CPU, "tiny": TINY}


def make_config(selection: str, tiny: bool = False, preset: str | None = None, **overrides: Any) -> ExperimentConfig:
    """The configuration of a preset (`gpu` default, `cpu`, `tiny`), with explicit overrides (None = "keep")."""
    if tiny and preset not in (None, "tiny"):
        raise InputError(f"--tiny is the 'tiny' preset; it cannot be combined with --preset {preset}.")
    name = "tiny" if tiny else (preset or "gpu")
    if name not in PRESETS:
        raise unknown_name("experiment preset", name, list(PRESETS))
    base: dict[str, Any] = {"selection": str(selection), **copy.deepcopy(PRESETS[name])}
    known = [f.name for f in dataclasses.fields(ExperimentConfig)]
    unknown = set(overrides) - set(known)
    if unknown:
        raise unknown_name("experiment setting", min(unknown), known)
    base.update({k: v for k, v in overrides.items() if v is not None})
    cfg = ExperimentConfig(**base)
    cfg.validate()
    return cfg


def check_selection(cfg: ExperimentConfig) -> dict[str, Any]:
    """Fail before any training if the selection cannot serve the loss; return facts for the manifest.

    The selection must rank the channels of the loss network (`backbone`) in every feature layer. Its weights are
    checked against the loaded network when the loss is built.
    """
    path = Path(cfg.selection)
    sel = load_ranked(path, cfg.layers, model=cfg.backbone, role="the loss network")
    manifest = path.parent / "manifest.json"
    return {"path": str(path.resolve()), "sha256": sha256_file(path), "model": sel.model, "weights": sel.weights,
            "analysis_command": read_json(manifest).get("command") if manifest.is_file() else None}


def _check_resume(out: Path, cfg: ExperimentConfig) -> None:
    saved_path = out / "experiment.json"
    if not saved_path.is_file():
        return
    check_same_settings(read_json(saved_path).get("config", {}), {k: getattr(cfg, k) for k in TRAINING_FIELDS},
                        f"training settings than the experiment in {out}")


@dataclass
class ExperimentResult:
    out: Path
    evaluation: EvalResult
    paired: pd.DataFrame
    timing_s: dict[str, float]


def run_experiment(cfg: ExperimentConfig, out: str | os.PathLike[str], *, resume: bool = False,
                   overwrite: bool = False, progress: bool = True) -> ExperimentResult:
    """Train the five models into `out/runs/`, evaluate them and write the tables and report into `out`.

    `resume=True` continues an interrupted experiment: each run resumes from its last checkpoint (a finished run
    costs only a reload) and the evaluation is redone. Without it `out` must be empty (or `overwrite`).
    """
    cfg.validate()
    sel_info = check_selection(cfg)
    cfg = dataclasses.replace(cfg, selection_sha256=sel_info["sha256"])
    out = Path(out)
    if resume:
        _check_resume(out, cfg)
    elif out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"output directory {out} is not empty. Pass --resume to continue the experiment "
                                "there, --overwrite to start it afresh, or choose another --out.")
    out = prepare_out_dir(out, overwrite, keep=resume, owned=("experiment.json",))  # fresh: the old run goes
    runs = out / "runs"
    stages = cfg.stage_configs(runs)
    write_json(out / "experiment.json", {"config": cfg.to_dict(), "selection": sel_info,
                                         "stages": {k: v.to_dict() for k, v in stages.items()}})
    timing: dict[str, float] = {}
    t_all = time.perf_counter()
    for label, tcfg in stages.items():
        t0 = time.perf_counter()
        log.info("stage %s: %d steps", label, tcfg.steps)
        train(tcfg, runs / label, resume=resume, overwrite=overwrite, progress=progress)
        timing[f"train_{label}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluation, columns, skipped = _evaluate(cfg, runs, progress)
    timing["evaluate"] = time.perf_counter() - t0
    paired = paired_comparisons(evaluation.per_image)
    timing["total"] = time.perf_counter() - t_all
    _write_outputs(out, cfg, sel_info, evaluation, paired, timing, columns, skipped)
    return ExperimentResult(out, evaluation, paired, timing)


def _evaluate(cfg: ExperimentConfig, runs: Path, progress: bool) -> tuple[EvalResult, list[str], dict[str, str]]:
    """Score the five final models and bicubic; returns the result, the perceptual columns and skipped networks."""
    models = {label: model_from_checkpoint(runs / label / "final.pt") for label in METHODS}
    metrics, skipped = perceptual_metrics(cfg.perceptual, cfg.device, training_backbones={cfg.backbone})
    result = evaluate_models(models, cfg.sets, extra_metrics=metrics, device=cfg.device, limit=cfg.limit,
                             examples_per_set=cfg.examples, progress=progress)
    return result, list(metrics), skipped


# ---------------------------------------------------------------------------------------------------------------
# paired comparisons


def higher_is_better(metric: str) -> bool:
    """PSNR and SSIM grow with quality; every distance column shrinks."""
    return metric in ("psnr", "ssim")


def paired_comparisons(per_image: pd.DataFrame, comparisons: Sequence[tuple[str, str]] = COMPARISONS,
                       n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per set and score: mean of (method − reference) over images, its bootstrap 95 % interval and the win rate.

    `psychofeat.stats.paired_comparisons` on the per-image table of `evaluate_models` (sets, image names, every
    score column; PSNR and SSIM grow with quality, distances shrink). Pairs whose models are missing are left out;
    infinite PSNRs (a perfect image) are left out of the PSNR rows.
    """
    scores = score_columns(per_image)
    return stats.paired_comparisons(per_image, comparisons, scores=scores,
                                    higher_better=[s for s in scores if higher_is_better(s)], group="set",
                                    unit="name", n_boot=n_boot, seed=seed)


# ---------------------------------------------------------------------------------------------------------------
# outputs


def _write_outputs(out: Path, cfg: ExperimentConfig, sel_info: dict[str, Any], evaluation: EvalResult,
                   paired: pd.DataFrame, timing: dict[str, float], columns: list[str],
                   skipped: dict[str, str]) -> None:
    write_table(out / "paired.csv", paired)
    info = {"experiment": "sr-experiment", "config": cfg.to_dict(), "selection": sel_info, "timing_s": timing,
            "perceptual_skipped": skipped, "runs": {m: str(out / "runs" / m) for m in METHODS}}
    notes = [_protocol_note(cfg), perceptual_note(columns, skipped)]
    write_eval_outputs(evaluation, out, info, title="x4 SR: pixel vs all / top-k / bottom-k / random-k feature losses",
                       notes=notes, sections=lambda rep: _report_sections(rep, out, paired, timing))


def _protocol_note(cfg: ExperimentConfig) -> str:
    return (
        f"Methods: pixel = SRResNet trained {cfg.stage1_steps} steps with L1 (lr {cfg.stage1_lr:g}); all / top / "
        f"bottom / random = pixel fine-tuned {cfg.stage2_steps} steps (lr {cfg.stage2_lr:g}) with L1 + "
        f"{cfg.lam:g}·d, d the {cfg.feature_mode} distance of {cfg.backbone} {', '.join(cfg.layers)} over all "
        f"channels, or the PE top, bottom or random {cfg.frac:g} of each layer's channels (selection from "
        "grating stimuli only). Same seed, patches, λ and steps in all four. Batch "
        f"{cfg.batch} of {cfg.patch} px HR patches. One training seed per loss."
    )


def _report_sections(rep: HtmlReport, out: Path, paired: pd.DataFrame, timing: dict[str, float]) -> None:
    rep.heading("Paired differences per image (method − reference)")
    rep.paragraph(
        "Mean difference over a set's images with a bootstrap 95 % interval (images resampled); wins = share of "
        "images where the method is better (higher PSNR/SSIM, lower distance). The interval covers the choice of "
        "test images only: each loss was trained once, so training noise is not in it. With few images (Set5 has "
        "5) the percentile bootstrap is too narrow; read those rows as descriptive."
    )
    rep.table(paired, float_format="{:.4f}", max_rows=400)
    fig = _loss_curves(out / "runs")
    if fig is not None:
        rep.heading("Training loss")
        rep.figure(fig, caption="log.csv of each run (stage-2 losses include λ·d over different channel sets, "
                                "so their levels are not comparable across runs)")
    rep.heading("Wall time (s)")
    rep.table(pd.DataFrame([timing]), float_format="{:.1f}")


def _loss_curves(runs: Path) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = {m: runs / m / "log.csv" for m in METHODS if (runs / m / "log.csv").is_file()}
    if not logs:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for method, path in logs.items():
        df = pd.read_csv(path)
        ax = axes[0] if method == PIXEL else axes[1]
        ax.plot(df["step"], df["loss"], label=method)
    axes[0].set_title("stage 1: L1")
    axes[1].set_title("stage 2: L1 + λ·d")
    for ax in axes:
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def format_summary(summary: pd.DataFrame) -> str:
    """The summary table as fixed-width text (what the CLI prints and docs/sr.md quotes)."""
    return summary.to_string(index=False, float_format=lambda v: f"{v:.4f}")


__all__ = [
    "COMPARISONS",
    "CPU",
    "FEATURE_LOSSES",
    "METHODS",
    "PRESETS",
    "TINY",
    "ExperimentConfig",
    "ExperimentResult",
    "check_selection",
    "format_summary",
    "make_config",
    "paired_comparisons",
    "run_experiment",
]
