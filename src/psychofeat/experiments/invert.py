"""Feature inversion: reconstruct images from the features of a channel selection by optimising the pixels.

A loss is a good optimisation target for visual quality when minimising it moves an image towards what people see
as the target (SCIENCE.md, "Feature inversion"). This module is the optimiser; `invert_experiment` compares
selections with it and `invert_report` draws the results.

The objective is the project's own loss core (`psychofeat.distance.SelectedChannelDistance`, what
`PerceptualDistance` and `PerceptualLoss` run), per image i and selected layer k:

    J_i(x) = Σ_k w_k · d_k(x_i, y_i) / d_k(x0_i, y_i)    (+ tv · TV(x_i), optional)

with x0 the shared initial image and w_k the core's layer weights (1/#layers). Dividing every layer's distance by
its value at the start makes every selection, and every layer of a combined selection, start at J = 1, so a
selection with more feature energy neither dominates a combination nor (with a scale-sensitive optimiser) takes
larger steps. Adam is invariant to a constant scale of the objective except through its ε, so with the default
optimiser the division mostly makes the loss curves comparable. A term whose start value is 0 (the selected
channels are silent for both images) is dropped; an image whose gradient at the start is exactly zero cannot move
and is reported with status "zero-gradient".

Pixels stay in [0, 1] by one of two parametrisations:
* "clamp" (default): Adam on the pixels, each step followed by a projection onto [0, 1] (projected gradient).
  Gradients are never attenuated, so a selection's pull is what the features give.
* "sigmoid": Adam on z with x = sigmoid(z), z0 = logit(x0). Smooth, but the sigmoid's slope shrinks gradients of
  dark and bright pixels, which slows exactly the saturated regions.

Images are independent (the backbone is in eval mode and the objective is a sum over images), and Adam works
element-wise, so optimising a batch gives each image the result it would get alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from psychofeat.distance import SelectedChannelDistance
from psychofeat.errors import InputError
from psychofeat.precision import check_dtype, compute_context, resolve_dtype

PARAMETRISATIONS = ("clamp", "sigmoid")
STATUS_OK = "ok"
STATUS_ZERO_GRAD = "zero-gradient"


@dataclass(frozen=True)
class InversionBudget:
    """What every selection gets: optimiser (Adam), steps, learning rate and its schedule (cosine to 0)."""

    steps: int = 200
    lr: float = 0.05
    param: str = "clamp"
    tv: float = 0.0
    dtype: str = "float32"

    def validate(self) -> None:
        if self.steps < 1:
            raise InputError(f"--steps must be ≥ 1, got {self.steps}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"--lr must be a positive number, got {self.lr}.")
        if self.param not in PARAMETRISATIONS:
            raise InputError(f"--param must be one of {', '.join(PARAMETRISATIONS)}, got {self.param!r}.")
        if self.tv < 0:
            raise InputError(f"--tv must be ≥ 0, got {self.tv}.")
        check_dtype(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"optimizer": "adam", "schedule": "cosine to 0", "steps": self.steps, "lr": self.lr,
                "param": self.param, "tv": self.tv, "dtype": self.dtype}


@dataclass
class Inversion:
    """The reconstructions and how the optimisation went, per image."""

    images: torch.Tensor  # N×3×H×W in [0, 1], on the CPU
    curve: np.ndarray  # steps × N: the scaled objective J before each step
    final_objective: np.ndarray  # N: J after the last step
    init_distance: np.ndarray  # N × layers: d_k(x0, y), the per-layer scales
    grad_norm0: np.ndarray  # N: ‖∂J/∂x‖ at the start
    status: list[str] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)


def initial_images(n: int, size: tuple[int, int], seed: int = 0, noise: float = 0.02) -> torch.Tensor:
    """Mid grey plus seeded Gaussian noise of s.d. `noise`, clipped to [0, 1]: the start every selection shares.

    The noise only breaks the symmetry of a uniform field (whose features are identical at every position); it is
    drawn once from its own generator, so the same (n, size, seed, noise) always gives the same images.
    """
    if noise < 0:
        raise InputError(f"--noise must be ≥ 0, got {noise}.")
    g = torch.Generator().manual_seed(int(seed))
    x = 0.5 + noise * torch.randn((n, 3, *size), generator=g, dtype=torch.float32)
    return x.clamp_(0.0, 1.0)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of horizontally and vertically neighbouring pixels, per image (N)."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).square().flatten(1).mean(1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).square().flatten(1).mean(1)
    return dh + dw


class _Pixels:
    """The optimised variable and its map to images in [0, 1]."""

    def __init__(self, x0: torch.Tensor, param: str) -> None:
        self.param = param
        if param == "sigmoid":
            self.var = torch.logit(x0.clamp(1e-4, 1 - 1e-4)).clone().requires_grad_(True)
        else:
            self.var = x0.clone().requires_grad_(True)

    def image(self) -> torch.Tensor:
        return torch.sigmoid(self.var) if self.param == "sigmoid" else self.var

    def project(self) -> None:
        if self.param == "clamp":
            with torch.no_grad():
                self.var.clamp_(0.0, 1.0)


def invert(
    core: SelectedChannelDistance,
    target: torch.Tensor,
    init: torch.Tensor,
    budget: InversionBudget,
    progress: Callable[[int], None] | None = None,
) -> Inversion:
    """Minimise the scaled selected-channel distance to `target`'s features, starting from `init`.

    `target` and `init` are N×3×H×W in [0, 1] of the same shape; they are moved to the core's device. `progress`
    is called after each step with the step number (for a progress bar).
    """
    budget.validate()
    if target.shape != init.shape:
        raise InputError(f"target {tuple(target.shape)} and init {tuple(init.shape)} differ in shape.")
    p = next(core.backbone.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = resolve_dtype(budget.dtype, device)
    core.eval()
    cl = torch.channels_last
    target = target.to(device).contiguous(memory_format=cl)
    with compute_context(device, dtype):
        ref = core.reference(target)
    pixels = _Pixels(init.to(device).contiguous(memory_format=cl), budget.param)

    def per_layer(x: torch.Tensor) -> dict[str, torch.Tensor]:
        with compute_context(device, dtype):
            maps = core.maps(x, ref=ref)
        return core.per_layer(maps)

    with torch.no_grad():
        d0 = per_layer(pixels.image())
    init_d = torch.stack([d0[k].float() for k in core.layers], dim=1)  # N × L
    scale = torch.where(init_d > 0, 1.0 / init_d.clamp_min(torch.finfo(torch.float32).tiny), torch.zeros_like(init_d))
    w = torch.tensor([core.layer_weights[k] for k in core.layers], device=device)

    def objective(x: torch.Tensor) -> torch.Tensor:
        d = per_layer(x)
        j = (torch.stack([d[k].float() for k in core.layers], dim=1) * scale * w).sum(1)
        return j + budget.tv * total_variation(x.float()) if budget.tv > 0 else j

    opt = torch.optim.Adam([pixels.var], lr=budget.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=budget.steps, eta_min=0.0)
    n = target.shape[0]
    curve = np.empty((budget.steps, n), dtype=np.float64)
    grad0 = np.zeros(n)
    for step in range(budget.steps):
        opt.zero_grad(set_to_none=True)
        j = objective(pixels.image())
        j.sum().backward()  # a sum: each image's gradient is its own, whatever the batch
        curve[step] = j.detach().double().cpu().numpy()
        if step == 0:
            assert pixels.var.grad is not None
            grad0 = pixels.var.grad.detach().flatten(1).norm(dim=1).double().cpu().numpy()
        opt.step()
        sched.step()
        pixels.project()
        if progress is not None:
            progress(step + 1)
    with torch.no_grad():
        final = pixels.image().detach()
        j_final = objective(final).double().cpu().numpy()
    status = [STATUS_OK if g > 0 else STATUS_ZERO_GRAD for g in grad0]
    return Inversion(final.float().cpu().contiguous(), curve, j_final, init_d.double().cpu().numpy(), grad0, status,
                     budget.to_dict())


__all__ = [
    "PARAMETRISATIONS",
    "STATUS_OK",
    "STATUS_ZERO_GRAD",
    "Inversion",
    "InversionBudget",
    "initial_images",
    "invert",
    "total_variation",
]
