"""Training: SIGKILL + resume reaches bit-identical weights, 2-process gloo DDP, criterion factory, run-folder rules.

Runs use a tiny SRResNet (2 blocks, 16 channels), 32 px patches and two training images so each takes well under a
second of compute. Runs that must be separate processes (the SIGKILLed one, torchrun) are CLI subprocesses pinned to
one thread; in-process runs use one thread too, so every run does identical floating-point work.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from synthetic_nets import synthetic_selection

from psychofeat.errors import InputError, OutputExistsError
from psychofeat.sr.checkpoint import load_checkpoint, model_from_checkpoint
from psychofeat.sr.train import PixelL1, TrainConfig, build_criterion, train

TINY = ["--batch", "4", "--patch", "32", "--blocks", "2", "--channels", "16",
        "--train-pattern", "kodak24_kodim0[12]*", "--log-every", "1"]


def _env(data_root: Path) -> dict[str, str]:
    env = dict(os.environ, PSYCHOFEAT_DATA_ROOT=str(data_root), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


# One torchrun rank: the CLI, then a check that training tore its process group down. A group that outlives
# destroy_process_group() (something still references it) keeps gloo's threads running into interpreter shutdown, where
# it is destroyed at last, racing the exit (the likely cause of a rank's intermittent SIGABRT under load).
RANK_ENTRY = """
import os
import sys

from psychofeat.cli import main

status = main()
names = []
for tid in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else []:
    try:
        with open(f"/proc/self/task/{tid}/comm") as fh:
            names.append(fh.read().strip())
    except OSError:  # the thread ended meanwhile
        pass
left = sorted(n for n in names if "gloo" in n)
if left:
    print(f"the process group outlived training: gloo threads still run after it: {left}", file=sys.stderr)
    status = status or 3
sys.exit(status)
"""


def _cli(
    args: list[str], data_root: Path, torchrun: int = 0, entry: Path | None = None
) -> subprocess.CompletedProcess[str]:
    launcher = [sys.executable]
    if torchrun:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}"]
    cmd = [*launcher, *([str(entry)] if entry else ["-m", "psychofeat"]), "sr", "train", *args]
    return subprocess.run(cmd, env=_env(data_root), capture_output=True, text=True, timeout=300, check=False)


def _cfg_from_cli(args: list[str]) -> TrainConfig:
    """The TrainConfig the CLI builds from these options (the real parser and mapping)."""
    from psychofeat.cli import build_parser
    from psychofeat.cli.commands.sr import train_config_from_args

    return train_config_from_args(build_parser().parse_args(["sr", "train", *args, "--out", "unused"]))


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def _log_steps(path: Path) -> list[int]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [int(r["step"]) for r in csv.DictReader(fh)]


@pytest.mark.numerics
def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path: Path, data_root: Path) -> None:
    common = [*TINY, "--steps", "10", "--ckpt-every", "3", "--seed", "5"]
    killed = _cli([*common, "--out", str(tmp_path / "a"), "--test-kill-after", "7"], data_root)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["step"] == 6
    assert _log_steps(tmp_path / "a" / "log.csv") == list(range(1, 8))  # steps 7 logged but not checkpointed
    assert not (tmp_path / "a" / "final.pt").exists()

    # resumed and uninterrupted runs in this process (the same single-threaded kernels as the subprocess)
    train(_cfg_from_cli(common), tmp_path / "a", resume=True, progress=False)
    train(_cfg_from_cli(common), tmp_path / "b", progress=False)

    ra, rb = load_checkpoint(tmp_path / "a" / "final.pt"), load_checkpoint(tmp_path / "b" / "final.pt")
    assert ra["step"] == rb["step"] == 10
    _assert_same_state(ra["model"], rb["model"])  # weights and BN buffers, bit for bit
    for sa, sb in zip(ra["optimizer"]["state"].values(), rb["optimizer"]["state"].values()):
        _assert_same_state(sa, sb)
    assert _log_steps(tmp_path / "a" / "log.csv") == list(range(1, 11))  # replayed rows dropped, none doubled
    la = pd.read_csv(tmp_path / "a" / "log.csv")["loss"].to_numpy()
    lb = pd.read_csv(tmp_path / "b" / "log.csv")["loss"].to_numpy()
    np.testing.assert_array_equal(la, lb)


def _ddp_run(out: Path, data_root: Path, extra: list[str]) -> None:
    entry = out.parent / "rank_entry.py"
    entry.write_text(RANK_ENTRY, encoding="utf-8")
    ddp = _cli([*TINY, "--steps", "4", "--ckpt-every", "2", *extra, "--out", str(out)], data_root, torchrun=2,
               entry=entry)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    digests = summary["rank_weight_digests"]  # each rank hashed its own replica
    assert summary["world_size"] == 2 and len(digests) == 2 and digests[0] == digests[1]
    assert _log_steps(out / "log.csv") == [1, 2, 3, 4]  # rank 0 alone logs


def test_ddp_two_processes_gloo_ranks_identical(tmp_path: Path, data_root: Path) -> None:
    _ddp_run(tmp_path / "ddp", data_root, [])  # the paper's model, with BatchNorm


def test_ddp_two_processes_equal_one_process(tmp_path: Path, data_root: Path) -> None:
    """Without BN (no per-rank batch statistics) 2 ranks × 2 patches must equal 1 process × 4 patches."""
    common = [*TINY, "--steps", "4", "--ckpt-every", "2", "--no-bn"]
    _ddp_run(tmp_path / "ddp", data_root, ["--no-bn"])
    train(_cfg_from_cli(common), tmp_path / "one", progress=False)
    a = model_from_checkpoint(tmp_path / "ddp" / "final.pt").state_dict()
    b = model_from_checkpoint(tmp_path / "one" / "final.pt").state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
    assert not torch.equal(a["tail.weight"], _initial_tail_weight(tmp_path / "one"))  # training moved the weights


def _initial_tail_weight(run: Path) -> torch.Tensor:
    """The seeded initial weights of a run (what step 0 started from)."""
    from psychofeat.sr.model import build_srresnet

    cfg = json.loads((run / "config.json").read_text())
    torch.manual_seed(cfg["train"]["seed"])
    return build_srresnet(cfg["model"]).state_dict()["tail.weight"]


def _tiny_cfg(**kw: object) -> TrainConfig:
    base = dict(steps=2, batch=2, patch=32, n_blocks=1, channels=8, train_pattern="kodak24_kodim01*",
                ckpt_every=1, log_every=1)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_run_folder_rules(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "run"
    train(_tiny_cfg(), out, progress=False)
    with pytest.raises(OutputExistsError):
        train(_tiny_cfg(), out, progress=False)
    with pytest.raises(InputError, match="learning_rate"):
        train(_tiny_cfg(learning_rate=1e-3), out, resume=True, progress=False)
    res = train(_tiny_cfg(steps=3), out, resume=True, progress=False)  # extending a finished run is allowed
    assert res.steps == 3 and _log_steps(out / "log.csv") == [1, 2, 3]
    with pytest.raises(InputError, match="--selection"):
        train(_tiny_cfg(loss="top"), tmp_path / "x", progress=False)


def test_pixel_criterion_is_l1() -> None:
    crit = build_criterion(TrainConfig(loss="pixel"))
    assert isinstance(crit, PixelL1)
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    assert crit(a, b).item() == pytest.approx((a - b).abs().mean().item())


@pytest.mark.parametrize("loss", ["top", "all"])
def test_feature_loss_branch(tmp_path: Path, data_root: Path, loss: str) -> None:
    from psychofeat.selection import Selection

    sel_path = synthetic_selection(tmp_path / "selection.json", {"relu1_2": 64, "relu2_2": 128})
    cfg = _tiny_cfg(loss=loss, selection=str(sel_path), backbone_weights="random:0", lam=0.5, frac=0.25)
    crit = build_criterion(cfg)
    got = crit.core.selection.channels
    full = Selection.load(sel_path)
    want = full.top(0.25).channels if loss == "top" else full.select("all").channels
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)
    res = train(cfg, tmp_path / "run", progress=False)
    assert np.isfinite(res.final_loss)
