"""SRResNet training: pixel (L1) or pixel + selected-channel feature loss; resumable, deterministic, DDP-ready.

* **Loss** (`build_criterion`): `pixel` is the mean absolute error (L1) between SR and HR in [0, 1], the BasicSR
  convention for PSNR-oriented SR training (it converges to sharper, higher-PSNR models than L2 in practice; Lim et
  al. 2017, Zhao et al. 2017). The feature losses `all`, `top`, `bottom`, `random` are
  `psychofeat.loss.PerceptualLoss` = pixel term + λ·d_sel over all channels of `layers` or over the PE top-k,
  bottom-k or random-k channels of a selection file (k a fraction of each layer's channels).
* **Optimisation**: Adam (β = 0.9, 0.999), constant learning rate, one global batch of `batch` patch pairs per step,
  drawn by the stateless sampler of `psychofeat.sr.data` (patch i of step s depends only on (seed, s, i)).
* **AMP**: bf16 autocast on CUDA by default (no loss scaling needed); fp16 with a GradScaler on request; fp32 on CPU.
* **Checkpoints** every `ckpt_every` steps and at the end, atomically (`checkpoints/last.pt`, then `final.pt`), with
  model, optimizer, scaler, step, configs and RNG states. `resume=True` continues from `checkpoints/last.pt`; because
  sampling is stateless, a resumed run replays exactly the batches of an uninterrupted one, so on CPU (or with
  `deterministic=True` on CUDA) it reaches bit-identical weights.
* **Distributed**: launched by `torchrun`, every process trains a DDP replica (`env://` rendezvous; NCCL on CUDA,
  gloo on CPU); `batch` stays the *global* batch, rank r takes positions r, r+W, … of it. Rank 0 alone writes logs
  and checkpoints, reads the checkpoint to resume from and broadcasts it, so nodes need no shared file system for
  checkpoints (they do need the training data). At the end the ranks compare weight digests (`summary.json`).
  BatchNorm statistics are per rank (plain DDP), so with BN a W-process run is not bit-equal to a 1-process run.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from psychofeat.errors import InputError, OutputExistsError, PsychofeatError, WeightsError, unknown_name
from psychofeat.io import atomic_path, prepare_out_dir, provenance, write_json
from psychofeat.sr.checkpoint import (
    load_checkpoint,
    rng_states,
    save_checkpoint,
    set_rng_states,
    state_digest,
    unwrap,
)
from psychofeat.sr.data import TrainPairs
from psychofeat.sr.model import SRResNetConfig, build_srresnet

if dist.is_available():
    # Imported now, before any process group exists, on purpose. torch.distributed.nn.functional binds
    # `group=group.WORLD` as default arguments when first imported, and DDP's constructor imports it (through
    # torch._dynamo). First imported after init_process_group, those defaults hold the default group for the life of
    # the process: destroy_process_group() cannot free it, gloo's worker and I/O threads run on, and the group is torn
    # down only inside interpreter shutdown (Py_Finalize), racing the exit: the likely cause of the intermittent
    # SIGABRT of a rank under load. tests/test_sr_train.py checks that no gloo thread outlives training.
    import torch.distributed.nn  # noqa: F401

log = logging.getLogger(__name__)

LOSSES = ("pixel", "all", "top", "bottom", "random")
AMP_MODES = ("auto", "bf16", "fp16", "off")
#: fields that may differ between a checkpoint and the run that resumes it (they do not change the trajectory)
RESUMABLE_CHANGES = frozenset({"steps", "ckpt_every", "log_every", "device", "amp", "deterministic"})
LOG_COLUMNS = ("step", "loss", "lr", "elapsed_s", "steps_per_s")

T = TypeVar("T")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in `config.json` and in every checkpoint)."""

    loss: str = "pixel"
    steps: int = 1000
    batch: int = 16
    patch: int = 96
    learning_rate: float = 1e-4
    seed: int = 0
    # feature-loss options (ignored for loss="pixel")
    selection: str | None = None
    layers: list[str] | None = None
    lam: float = 1.0
    frac: float = 0.25
    selection_seed: int = 0
    feature_mode: str = "normalized"
    backbone: str = "vgg16"
    backbone_weights: str | None = None
    # model: None = default (or the --init checkpoint's architecture)
    n_blocks: int | None = None
    channels: int | None = None
    bn: bool | None = None
    init: str | None = None
    # data
    include_jpeg: bool = False
    train_pattern: str | None = None
    # run mechanics
    ckpt_every: int = 500
    log_every: int = 10
    device: str = "cpu"
    amp: str = "auto"
    deterministic: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise unknown_name("loss", self.loss, LOSSES)
        if self.amp not in AMP_MODES:
            raise unknown_name("AMP mode", self.amp, AMP_MODES)
        for name in ("steps", "batch", "patch", "ckpt_every", "log_every"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(self, name)}.")
        if self.patch % 4:
            raise InputError(f"--patch (HR patch size) must be a multiple of 4, got {self.patch}.")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise InputError(f"--lr must be a positive number, got {self.learning_rate}.")
        if self.loss in ("top", "bottom", "random") and not self.selection:
            raise InputError(f"--loss {self.loss} needs --selection selection.json (channel scores to select from).")
        if self.loss != "pixel" and not 0 < self.frac <= 1:
            raise InputError(f"--frac must be in (0, 1], got {self.frac}.")


@dataclass
class TrainResult:
    out: Path
    steps: int
    final_loss: float
    elapsed_s: float
    digest: str


# ---------------------------------------------------------------------------------------------------------------
# criterion


class PixelL1(nn.Module):
    """Mean absolute error over all pixels and channels, computed in fp32 even under autocast."""

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(sr.float(), hr.float())


def build_criterion(cfg: TrainConfig, device: str | torch.device = "cpu") -> nn.Module:
    """The training loss for `cfg.loss`: L1 for `pixel`, else `PerceptualLoss` = L1 + λ·d_sel.

    With a selection file, `all` means all channels of the *selection's* layers (restricted by `layers` if given),
    so the four feature losses differ only in which channels they keep. Without one, `all` uses `layers` or the
    backbone's default metric layers.
    """
    if cfg.loss == "pixel":
        return PixelL1().to(device)
    try:
        from psychofeat.loss import PerceptualLoss
        from psychofeat.selection import Selection
    except ImportError as exc:
        raise PsychofeatError(
            f"--loss {cfg.loss} needs psychofeat.loss.PerceptualLoss, which is unavailable: {exc}"
        ) from exc
    selection = None
    if cfg.selection:
        sel = Selection.load(cfg.selection)
        if cfg.loss == "all":
            selection = sel.select("all")
        elif cfg.loss == "top":
            selection = sel.top(cfg.frac)
        elif cfg.loss == "bottom":
            selection = sel.bottom(cfg.frac)
        else:
            selection = sel.random(cfg.frac, seed=cfg.selection_seed)
    return PerceptualLoss(
        model=cfg.backbone,
        weights=cfg.backbone_weights,
        selection=selection,
        layers=cfg.layers,
        mode=cfg.feature_mode,
        pixel_weight=1.0,
        feature_weight=cfg.lam,
        pixel_loss="l1",
        device=device,
    )


# ---------------------------------------------------------------------------------------------------------------
# distributed plumbing


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str) -> DistContext:
    """Join the process group that `torchrun` describes in the environment (WORLD_SIZE > 1), else run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine; use --device cpu.")
    if world <= 1:
        return DistContext(device=dev)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        if dev.index not in (None, local_rank):
            log.warning("ignoring the index of --device %s under torchrun: rank uses cuda:%d", device, local_rank)
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://")
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def _main_then_broadcast(ctx: DistContext, fn: Callable[[], T]) -> T:
    """Run `fn` on rank 0 and hand its result (or its PsychofeatError) to every rank, so no rank hangs on an error."""
    if not ctx.distributed:
        return fn()
    box: list[Any] = [None]
    if ctx.is_main:
        try:
            box[0] = ("ok", fn())
        except PsychofeatError as exc:
            box[0] = ("err", exc)
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "err":
        raise value
    return value


def _mean_over_ranks(ctx: DistContext, value: torch.Tensor) -> float:
    if ctx.distributed:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= ctx.world_size
    return float(value)


# ---------------------------------------------------------------------------------------------------------------
# run folder


class RunPaths:
    """The files of a training folder."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.config = out / "config.json"
        self.log = out / "log.csv"
        self.last = out / "checkpoints" / "last.pt"
        self.final = out / "final.pt"
        self.summary = out / "summary.json"
        self.manifest = out / "manifest.json"


def _prepare_run_folder(paths: RunPaths, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """Create/check the output folder; return the checkpoint to resume from (None: fresh start). Rank 0 only."""
    if resume and paths.last.is_file():
        return load_checkpoint(paths.last)
    if resume and paths.out.is_dir() and any(paths.out.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"--resume: {paths.last} does not exist, but {paths.out} is not empty. Point --out at the folder of the "
            "interrupted run, or pass --overwrite to start afresh there."
        )
    if resume:
        log.info("--resume: no checkpoint in %s yet; starting from step 0", paths.out)
    prepare_out_dir(paths.out, overwrite, keep=resume, owned=("log.csv", "checkpoints", "final.pt"))
    for stale in (paths.last, paths.final, paths.summary):  # an --overwrite'd run must not resume from these
        stale.unlink(missing_ok=True)
    return None


def _check_resume_config(saved: dict[str, Any], cfg: TrainConfig) -> None:
    """Refuse to resume with settings that would silently change the trajectory."""
    now = cfg.to_dict()
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r} vs now {now[k]!r}"
        for k in now
        if k not in RESUMABLE_CHANGES and saved.get(k) != now[k]
    ]
    if diffs:
        raise InputError(
            "--resume with different settings than the interrupted run: " + "; ".join(diffs)
            + ". Use the original options (only --steps, --ckpt-every, --log-every, --device, --amp, --deterministic"
            " may change)."
        )


class CsvLog:
    """Append-only CSV training log; on resume, rows past the checkpoint are dropped (they will be redone)."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        if resume_step is not None and path.is_file():
            with open(path, newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.DictReader(fh) if r.get("step", "").isdigit() and int(r["step"]) <= resume_step]
            with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
                w.writeheader()
                w.writerows({k: r.get(k, "") for k in LOG_COLUMNS} for r in rows)
        else:  # a fresh run starts a fresh log (an --overwrite'd folder's old rows go)
            with atomic_path(path) as tmp:
                tmp.write_text(",".join(LOG_COLUMNS) + "\n", encoding="utf-8")

    def append(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=LOG_COLUMNS).writerow(row)
            fh.flush()


# ---------------------------------------------------------------------------------------------------------------
# training


def _resolve_model_config(cfg: TrainConfig, init_ckpt: dict[str, Any] | None) -> SRResNetConfig:
    saved = init_ckpt.get("model_config") if init_ckpt else None
    base = SRResNetConfig(**saved) if saved else SRResNetConfig()
    overrides = {k: getattr(cfg, k) for k in ("n_blocks", "channels", "bn") if getattr(cfg, k) is not None}
    if init_ckpt is not None:
        clash = {k: v for k, v in overrides.items() if getattr(base, k) != v}
        if clash:
            raise InputError(f"--init checkpoint has architecture {base.to_dict()}, which conflicts with {clash}.")
    return dataclasses.replace(base, **overrides)


def _autocast(cfg: TrainConfig, device: torch.device) -> Any:
    mode = cfg.amp if cfg.amp != "auto" else ("bf16" if device.type == "cuda" else "off")
    if mode == "off":
        return nullcontext()
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def train_step(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    lr_batch: torch.Tensor,
    hr_batch: torch.Tensor,
    autocast: Any,
) -> torch.Tensor:
    """One optimisation step (forward under `autocast`, scaled backward, optimizer step); returns the loss.

    The training loop and the SR-step benchmark both call this, so what is timed is what is trained.
    """
    with autocast:
        sr = model(lr_batch)
        loss = criterion(sr, hr_batch)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss


def _set_determinism(cfg: TrainConfig, device: torch.device) -> None:
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)  # warn, not fail, on ops with no such kernel
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cudnn.deterministic = cfg.deterministic


@contextmanager
def _distributed_session(device: str) -> Iterator[DistContext]:
    ctx = init_distributed(device)
    try:
        yield ctx
        if ctx.distributed:
            dist.barrier()  # every rank leaves together: none closes its connections while rank 0 still writes
    finally:
        if ctx.distributed and dist.is_initialized():
            # frees the group and joins gloo's threads while the interpreter is whole (see the import of
            # torch.distributed.nn at the top: nothing else may hold the group past this point)
            dist.destroy_process_group()


def train(
    cfg: TrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    _kill_after: int | None = None,
) -> TrainResult:
    """Train (or resume) an SRResNet into `out`. Under torchrun every rank calls this with the same arguments.

    `_kill_after` (tests only) SIGKILLs the process right after that step, simulating a crash with no cleanup.
    """
    cfg.validate()
    paths = RunPaths(Path(out))
    with _distributed_session(cfg.device) as ctx:
        return _train(cfg, paths, ctx, resume, overwrite, progress, _kill_after)


def _train(
    cfg: TrainConfig, paths: RunPaths, ctx: DistContext, resume: bool, overwrite: bool, progress: bool,
    kill_after: int | None,
) -> TrainResult:
    from tqdm.auto import tqdm

    if cfg.batch % ctx.world_size:
        raise InputError(f"--batch {cfg.batch} (global) must be divisible by the {ctx.world_size} processes.")
    _set_determinism(cfg, ctx.device)
    ckpt = _main_then_broadcast(ctx, lambda: _prepare_run_folder(paths, resume, overwrite))
    if ckpt is not None:
        _check_resume_config(ckpt["train_config"], cfg)
        if int(ckpt["step"]) > cfg.steps:
            raise InputError(
                f"--steps {cfg.steps} is below the checkpoint's step {ckpt['step']}; training cannot be undone."
            )
    init_ckpt = None
    if ckpt is None and cfg.init:
        init_path = cfg.init  # a narrowed local: the lambda below sees a str
        init_ckpt = _main_then_broadcast(ctx, lambda: load_checkpoint(init_path))

    data = TrainPairs.from_data_root(include_jpeg=cfg.include_jpeg, pattern=cfg.train_pattern)
    if data.min_lr_size() < cfg.patch // data.scale:
        raise InputError(f"--patch {cfg.patch} is larger than the smallest training image.")

    model_cfg = SRResNetConfig(**ckpt["model_config"]) if ckpt else _resolve_model_config(cfg, init_ckpt)
    torch.manual_seed(cfg.seed)  # same initial weights on every rank and in every rerun
    model: nn.Module = build_srresnet(model_cfg)
    if init_ckpt is not None:
        try:
            model.load_state_dict(init_ckpt["model"])
        except RuntimeError as exc:
            first_line = str(exc).splitlines()[0]
            raise WeightsError(f"--init {cfg.init}: weights do not fit {model_cfg}: {first_line}") from exc
    model.to(ctx.device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.999))
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=cfg.amp == "fp16")
    start, elapsed0 = 0, 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_states(ckpt["rng"])
        start, elapsed0 = int(ckpt["step"]), float(ckpt.get("elapsed_s", 0.0))
    criterion = build_criterion(cfg, ctx.device)
    if ctx.distributed:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
        )

    train_log = None
    if ctx.is_main:
        if ckpt is None:
            run_info = {"train": cfg.to_dict(), "model": model_cfg.to_dict(), "world_size": ctx.world_size}
            write_json(paths.config, run_info)
        write_json(paths.manifest, provenance(kind="sr-train", config=cfg.to_dict(), resumed_from_step=start,
                                              world_size=ctx.world_size, device=str(ctx.device)))
        train_log = CsvLog(paths.log, resume_step=start if ckpt is not None else None)
        if start:
            log.info("resuming from step %d (%s)", start, paths.last)

    def checkpoint(step: int, path: Path) -> None:
        # every rank checks (replicas are identical), so a diverged run fails everywhere instead of being saved
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise PsychofeatError(f"non-finite weights at step {step}; lower --lr, or try --amp off.")
        if not ctx.is_main:
            return
        save_checkpoint(path, {
            "step": step, "model": unwrap(model).state_dict(), "model_config": model_cfg.to_dict(),
            "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "train_config": cfg.to_dict(),
            "rng": rng_states(), "elapsed_s": elapsed0 + (time.perf_counter() - t0), "world_size": ctx.world_size,
        })

    on_cuda = ctx.device.type == "cuda"
    t0 = time.perf_counter()
    t_window, steps_window = t0, 0
    loss_sum = torch.zeros((), device=ctx.device)
    last_loss = float("nan")
    bar = tqdm(total=cfg.steps, initial=start, desc=f"sr train ({cfg.loss})", unit="step",
               disable=None if (progress and ctx.is_main) else True)
    for step in range(start, cfg.steps):
        lr_batch, hr_batch = data.batch(cfg.seed, step, cfg.batch, cfg.patch, ctx.rank, ctx.world_size)
        if on_cuda:  # pinned + non-blocking: the copy overlaps the previous step's kernels
            lr_batch = lr_batch.pin_memory().to(ctx.device, non_blocking=True)
            hr_batch = hr_batch.pin_memory().to(ctx.device, non_blocking=True)
        loss = train_step(model, criterion, optimizer, scaler, lr_batch, hr_batch, _autocast(cfg, ctx.device))
        done = step + 1
        loss_sum += loss.detach().float()
        steps_window += 1
        bar.update(1)
        if done % cfg.log_every == 0 or done == cfg.steps:
            last_loss = _mean_over_ranks(ctx, loss_sum / steps_window)  # the only host sync of the loop
            if not math.isfinite(last_loss):
                raise PsychofeatError(
                    f"the loss became {last_loss} by step {done}; lower --lr, or try --amp off."
                )
            now = time.perf_counter()
            if train_log is not None:
                train_log.append({
                    "step": done, "loss": f"{last_loss:.6g}", "lr": optimizer.param_groups[0]["lr"],
                    "elapsed_s": f"{elapsed0 + now - t0:.3f}", "steps_per_s": f"{steps_window / (now - t_window):.3f}",
                })
            bar.set_postfix(loss=f"{last_loss:.4g}")
            loss_sum.zero_()
            t_window, steps_window = now, 0
        if done % cfg.ckpt_every == 0 and done < cfg.steps:
            checkpoint(done, paths.last)
        if kill_after is not None and done == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    bar.close()

    elapsed = elapsed0 + time.perf_counter() - t0
    if ctx.distributed:
        # BN running statistics were last updated from each rank's own patches; adopt rank 0's (what DDP
        # broadcasts before every forward, and what the checkpoint holds). Parameters are left alone: their
        # equality across ranks is what the digests below verify.
        for buf in unwrap(model).buffers():
            dist.broadcast(buf, src=0)
    digest = state_digest(model)
    digests = [digest]
    if ctx.distributed:
        digests = [None] * ctx.world_size  # type: ignore[list-item]
        dist.all_gather_object(digests, digest)
    if ctx.is_main:
        checkpoint(cfg.steps, paths.last)
        checkpoint(cfg.steps, paths.final)
        write_json(paths.summary, {
            "steps": cfg.steps, "final_loss": last_loss, "elapsed_s": elapsed, "world_size": ctx.world_size,
            "rank_weight_digests": digests, "ranks_identical": len(set(digests)) == 1,
        })
    if len(set(digests)) != 1:
        raise PsychofeatError(f"DDP replicas diverged: weight digests per rank {digests}.")
    return TrainResult(out=paths.out, steps=cfg.steps, final_loss=last_loss, elapsed_s=elapsed, digest=digest)


__all__ = [
    "LOSSES",
    "DistContext",
    "PixelL1",
    "TrainConfig",
    "TrainResult",
    "build_criterion",
    "init_distributed",
    "train",
    "train_step",
]
