"""PerceptualLoss: finite gradients (fp32, bf16; constant and random images), frozen backbone, pixel term."""

from __future__ import annotations

import pytest
import torch

from psychofeat.loss import PerceptualLoss, perceptual_loss
from psychofeat.metric import PerceptualDistance


@pytest.fixture(scope="module")
def losses() -> dict[str, PerceptualLoss]:
    return {
        mode: PerceptualLoss("vgg16", "random", mode=mode, layers=["relu1_2", "relu2_2", "relu3_3"])
        for mode in ("normalized", "mse")
    }


@pytest.mark.parametrize("mode", ["normalized", "mse"])
@pytest.mark.parametrize("kind", ["constant", "random", "black"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gradients_are_finite(losses, mode: str, kind: str, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    if kind == "constant":
        pred, target = torch.full((2, 3, 32, 32), 0.5), torch.full((2, 3, 32, 32), 0.5)
    elif kind == "black":
        pred, target = torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32)
    else:
        pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    pred.requires_grad_(True)
    with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        loss = losses[mode](pred, target)
    loss.backward()
    assert torch.isfinite(loss) and pred.grad is not None and torch.isfinite(pred.grad).all()
    if kind == "random":
        assert pred.grad.abs().sum() > 0


def test_backbone_frozen_and_in_eval(losses) -> None:
    loss = losses["normalized"]
    loss.train()
    assert not loss.core.backbone.training
    assert all(not p.requires_grad for p in loss.parameters())


def test_gradient_descent_reduces_the_distance(losses) -> None:
    torch.manual_seed(3)
    target = torch.rand(1, 3, 32, 32)
    pred = torch.rand(1, 3, 32, 32, requires_grad=True)
    opt = torch.optim.Adam([pred], lr=0.02)
    first = None
    for _ in range(15):
        opt.zero_grad()
        v = losses["normalized"](pred, target)
        first = float(v.detach()) if first is None else first
        v.backward()
        opt.step()
    assert float(v.detach()) < 0.8 * first


@pytest.mark.numerics
def test_loss_equals_metric_plus_pixel_term() -> None:
    torch.manual_seed(1)
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    metric = PerceptualDistance("vgg16", "random", layers=["relu2_2"], reduction="mean")
    loss = PerceptualLoss("vgg16", "random", layers=["relu2_2"], pixel_weight=2.0, feature_weight=0.5)
    want = 0.5 * float(metric(pred, target)) + 2.0 * float((pred - target).abs().mean())
    assert float(loss(pred, target)) == pytest.approx(want, rel=1e-5)
    assert float(
        perceptual_loss(pred, target, weights="random", layers=["relu2_2"], pixel_weight=2.0, feature_weight=0.5)
    ) == pytest.approx(want, rel=1e-5)


# --- one rule with the metric (issue 20) ------------------------------------------------------------------------
def test_loss_and_metric_share_the_minimum_size(losses) -> None:
    """One minimum for both (psychofeat.distance.MIN_SIZE): 16 px, which the loss used to take, is refused with the
    metric's message; 32 px is taken by both."""
    from psychofeat.distance import MIN_SIZE
    from psychofeat.errors import InputError

    assert MIN_SIZE == 32 and PerceptualLoss.min_size == PerceptualDistance.min_size == MIN_SIZE
    small = torch.rand(1, 3, 16, 16)
    with pytest.raises(InputError, match="pred is 16×16 px; at least 32×32 px is required"):
        losses["mse"](small, small)
    with pytest.raises(InputError, match="target is 31×40 px"):
        losses["mse"](torch.rand(1, 3, 40, 40), torch.rand(1, 3, 31, 40))


def test_sr_training_patches_fit_the_loss() -> None:
    """Every SR preset's HR patch (what the feature loss compares) is at least the loss's minimum."""
    from psychofeat.sr.experiment import PRESETS, ExperimentConfig
    from psychofeat.sr.train import TrainConfig

    patches = [ExperimentConfig().patch, TrainConfig().patch] + [p["patch"] for p in PRESETS.values() if "patch" in p]
    assert min(patches) >= PerceptualLoss.min_size, patches


def test_model_is_the_first_argument_and_backbone_a_deprecated_alias() -> None:
    import inspect

    from psychofeat.backbones import from_module
    from psychofeat.errors import InputError

    firsts = {next(iter(inspect.signature(f).parameters)) for f in (PerceptualLoss, PerceptualDistance)}
    assert firsts == {"model"}
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    tiny = from_module(net, layers=["1"], name="tiny")
    torch.manual_seed(0)
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    want = PerceptualLoss(tiny)(pred, target)
    with pytest.warns(DeprecationWarning, match="model="):
        old = PerceptualLoss(backbone=tiny)
    assert torch.equal(old(pred, target), want) and old.core.backbone is tiny
    with pytest.raises(InputError, match="once"):
        PerceptualLoss("squeezenet1_1", backbone=tiny)


def test_functional_backbone_keyword_is_deprecated() -> None:
    torch.manual_seed(4)
    pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    want = perceptual_loss(pred, target, "vgg16", weights="random", layers=["relu2_2"])
    with pytest.warns(DeprecationWarning, match="model="):
        got = perceptual_loss(pred, target, backbone="vgg16", weights="random", layers=["relu2_2"])
    assert torch.equal(got, want)
