"""Feature inversion (`psychofeat invert`): the optimiser, the experiment's bookkeeping and its paired statistics.

Fast by construction: a seeded random-weight VGG-16 cut at relu1_2 on a 32 px image, and a 1-layer, 8-channel
network with two channels that never respond (weights 0, bias −1: ReLU output 0 for every image).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from psychofeat.backbones import load_backbone
from psychofeat.backbones.base import IDENTITY, Backbone, from_module
from psychofeat.classic import psnr
from psychofeat.distance import SelectedChannelDistance
from psychofeat.errors import InputError
from psychofeat.experiments.invert import STATUS_ZERO_GRAD, InversionBudget, initial_images, invert
from psychofeat.experiments.invert_experiment import InvertConfig, paired_table
from psychofeat.experiments.invert_report import run_invert  # the study, then its tables and report
from psychofeat.images import save_image
from psychofeat.selection import Selection

#: numerically sensitive: CI reruns these under other CPUs' kernels (docs/developing.md, "Every CPU")
pytestmark = pytest.mark.numerics

DEAD = (6, 7)


def smooth_image(size: int, seed: int = 0) -> torch.Tensor:
    """A natural-looking test image: low-pass noise (bilinearly upsampled 6×6 noise) plus a sharp diagonal edge."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((1, 3, 6, 6), generator=g)
    img = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (0.7 * img + 0.3 * (xx > yy).float()).clamp(0, 1)


def dead_channel_backbone() -> Backbone:
    """conv 3→8 (3×3) + ReLU; channels 6 and 7 have zero weights and bias −1, so their response is always 0."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    with torch.no_grad():
        net[0].weight[list(DEAD)] = 0.0
        net[0].bias[list(DEAD)] = -1.0
    return from_module(net, layers=["1"], preprocessing=IDENTITY, name="deadnet")


def test_all_channels_of_relu1_2_recover_the_image() -> None:
    """Bound: PSNR > 30 dB and at least 15 dB above the start (measured: 43.5 dB vs 13.0 dB at 60 steps)."""
    bb = load_backbone("vgg16", "random:0")
    y = smooth_image(32)
    x0 = initial_images(1, (32, 32), seed=0)
    core = SelectedChannelDistance(bb, Selection.all_channels("vgg16", bb.layer_channels(["relu1_2"])), "mse")
    inv = invert(core, y, x0, InversionBudget(steps=60, lr=0.05))
    before, after = float(psnr(x0, y)), float(psnr(inv.images, y))
    assert after > 30.0 and after > before + 15.0, (before, after)
    assert inv.status == ["ok"]
    assert inv.curve[0, 0] == pytest.approx(1.0)  # every objective starts at 1
    assert inv.final_objective[0] < 1e-2
    assert 0.0 <= float(inv.images.min()) and float(inv.images.max()) <= 1.0


def test_silent_channels_cannot_move_the_image() -> None:
    bb = dead_channel_backbone()
    sel = Selection("deadnet", {"1": np.array(DEAD)}, {"1": 8}, method="custom")
    y = smooth_image(32)
    x0 = initial_images(2, (32, 32), seed=1)
    for param in ("clamp", "sigmoid"):
        inv = invert(SelectedChannelDistance(bb, sel, "mse"), y.expand(2, -1, -1, -1), x0,
                     InversionBudget(steps=5, lr=0.1, param=param))
        assert inv.status == [STATUS_ZERO_GRAD] * 2
        assert np.all(inv.grad_norm0 == 0) and np.all(inv.init_distance == 0)
        assert np.all(np.isfinite(inv.curve)) and np.all(inv.final_objective == 0)
        assert torch.allclose(inv.images, x0, atol=1e-6)  # (sigmoid: logit/sigmoid round trip)


def test_batch_equals_one_image_at_a_time() -> None:
    bb = dead_channel_backbone()
    core = SelectedChannelDistance(bb, Selection.all_channels("deadnet", {"1": 8}), "mse")
    y = torch.cat([smooth_image(32, s) for s in range(3)])
    x0 = initial_images(3, (32, 32), seed=2)
    budget = InversionBudget(steps=20, lr=0.05)
    batch = invert(core, y, x0, budget).images
    alone = torch.cat([invert(core, y[i : i + 1], x0[i : i + 1], budget).images for i in range(3)])
    assert torch.allclose(batch, alone, atol=1e-5)


def _synthetic_selection(path: Path) -> Path:
    """PE ranks the two silent channels highest, so top-25 % (k = 2) is exactly the silent pair."""
    pe = np.linspace(0.1, 0.5, 8)
    pe[list(DEAD)] = [0.9, 1.0]
    sel = Selection("deadnet", {"1": np.array(DEAD)}, {"1": 8}, method="top", fraction=0.25, pe={"1": pe},
                    unresponsive={"1": np.zeros(8, bool)})
    return sel.save(path)


def test_experiment_reports_silent_selection_with_identical_start_and_budget(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    for s in range(3):
        save_image(smooth_image(40, s), folder / f"im{s}.png")
    cfg = InvertConfig(selection=str(_synthetic_selection(tmp_path / "sel.json")), model="deadnet", layers=("1",),
                       seeds=2, steps=6, size=32, n_images=3, images=str(folder), dtype="float32", perceptual=(),
                       n_boot=100, report_images=2)
    res = run_invert(cfg, tmp_path / "out", backbone=dead_channel_backbone(), progress=False)
    runs = res.info["runs"]
    assert [r["selection"] for r in runs] == ["top", "bottom", "random0", "random1", "all"]
    assert len({r["init_sha256"] for r in runs}) == 1 and runs[0]["init_sha256"] == res.info["init_sha256"]
    assert all(r["budget"] == runs[0]["budget"] for r in runs)
    assert runs[0]["budget"]["steps"] == 6 and {r["n_channels"] for r in runs[:4]} == {2}
    r = res.results
    top = r[r["selection"] == "top"]
    assert (top["status"] == STATUS_ZERO_GRAD).all()
    init = r[r["method"] == "init"].set_index("image")
    assert np.allclose(top.set_index("image")["psnr"], init["psnr"])  # the silent selection left the start as is
    assert (r[r["selection"].isin(["bottom", "all"])]["status"] == "ok").all()
    for name in ("results.csv", "summary.csv", "paired.csv", "curves.csv", "manifest.json", "report.html",
                 "recon/1/top/im0.png", "images/original/im2.png"):
        assert (tmp_path / "out" / name).is_file(), name
    assert set(res.paired["reference"]) == {"all", "random", "bottom"}
    # resume reuses every finished inversion and reproduces the tables
    again = run_invert(cfg, tmp_path / "out", backbone=dead_channel_backbone(), progress=False, resume=True)
    pd.testing.assert_frame_equal(again.results, res.results)
    with pytest.raises(InputError, match="other settings"):
        run_invert(InvertConfig(**{**cfg.to_dict(), "steps": 7}), tmp_path / "out", backbone=dead_channel_backbone(),
                   progress=False, resume=True)


def test_paired_statistics_match_a_direct_computation() -> None:
    rng = np.random.default_rng(5)
    images = [f"im{i}" for i in range(9)]
    rows = []
    truth: dict[tuple[str, str], np.ndarray] = {}
    for sel in ("top", "bottom", "random0", "random1", "all"):
        vals = rng.normal(size=(len(images), 2))
        truth[(sel, "psnr")], truth[(sel, "d")] = vals[:, 0], vals[:, 1]
        method, seed = ("random", int(sel[-1])) if sel.startswith("random") else (sel, None)
        rows += [{"layers": "L", "selection": sel, "method": method, "seed": seed, "n_channels": 2, "image": im,
                  "status": "ok", "final_objective": 0.0, "psnr": vals[i, 0], "d": vals[i, 1]}
                 for i, im in enumerate(images)]
    n_boot = 500
    paired = paired_table(pd.DataFrame(rows), n_boot=n_boot, seed=0).set_index(["score", "reference"])
    idx = np.random.default_rng(0).integers(0, len(images), size=(n_boot, len(images)))
    for score, sign in (("psnr", 1.0), ("d", -1.0)):
        for ref in ("all", "random", "bottom"):
            if ref == "random":
                other = (truth[("random0", score)] + truth[("random1", score)]) / 2
            else:
                other = truth[(ref, score)]
            diff = truth[("top", score)] - other
            row = paired.loc[(score, ref)]
            assert row["mean_diff"] == pytest.approx(diff.mean())
            assert row["wins"] == pytest.approx(np.mean(sign * diff > 0))
            lo, hi = np.percentile(diff[idx].mean(1), [2.5, 97.5])
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
            assert row["n_images"] == len(images)


def test_paired_table_equals_the_sr_route_it_replaced() -> None:
    """`stats.paired_comparisons` on the invert table's own columns gives, to the bit, what renaming it into the SR
    table's columns, SR's `paired_comparisons` and renaming back gave."""
    from psychofeat.experiments.invert_experiment import COMPARISONS, per_image_methods
    from psychofeat.sr.experiment import paired_comparisons

    rng = np.random.default_rng(8)
    rows = [{"layers": lay, "selection": sel, "method": sel.rstrip("01"), "seed": None, "n_channels": 2,
             "image": f"im{i}", "status": "ok", "final_objective": 0.0, "psnr": rng.normal(), "ssim": rng.random(),
             "squeezenet1_1_all": rng.random()}
            for lay in ("L1", "L1+L2") for sel in ("top", "bottom", "random0", "random1", "all") for i in range(6)]
    results = pd.DataFrame(rows)
    old = paired_comparisons(per_image_methods(results).rename(columns={"layers": "set", "image": "name"}),
                             COMPARISONS, n_boot=200, seed=1).rename(columns={"set": "layers"})
    pd.testing.assert_frame_equal(paired_table(results, n_boot=200, seed=1), old, check_exact=True)


def test_the_study_writes_no_report_and_the_report_module_does(tmp_path: Path) -> None:
    from psychofeat.experiments import invert_experiment, invert_report

    folder = tmp_path / "imgs"
    save_image(smooth_image(32), folder / "im0.png")
    cfg = InvertConfig(selection=str(_synthetic_selection(tmp_path / "sel.json")), model="deadnet", layers=("1",),
                       seeds=1, steps=1, size=32, n_images=1, images=str(folder), dtype="float32", perceptual=(),
                       n_boot=10, report_images=1)
    out = tmp_path / "out"
    res = invert_experiment.run_invert_study(cfg, out, backbone=dead_channel_backbone(), progress=False)
    assert (out / "recon/1/top/im0.png").is_file() and (out / "settings.json").is_file()
    assert not any((out / n).exists() for n in ("results.csv", "paired.csv", "manifest.json", "report.html"))
    assert res.config is not None and res.config.dtype == "float32" and res.config.selection_sha256
    invert_report.write_outputs(res)
    for name in ("results.csv", "summary.csv", "paired.csv", "curves.csv", "manifest.json", "report.html"):
        assert (out / name).is_file(), name


def test_the_old_run_invert_is_the_whole_verb_and_warns() -> None:
    """`invert_experiment.run_invert` wrote the tables and report before they moved to `invert_report`: the old name
    is a deprecated alias of the whole verb, not of the study alone."""
    from psychofeat.experiments import invert_experiment, invert_report

    with pytest.warns(DeprecationWarning, match="invert_report.run_invert"):
        old = invert_experiment.run_invert
    assert old is invert_report.run_invert
