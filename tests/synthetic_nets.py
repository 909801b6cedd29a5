"""Synthetic 'networks' whose channel tuning is known exactly: the ground truth the scores must recover."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from psychofeat.backbones.base import IDENTITY, Backbone, WeightsInfo


def kernel_coords(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x right, y up, relative to the kernel centre (the stimuli's convention)."""
    c = (k - 1) / 2
    idx = torch.arange(k, dtype=torch.float64)
    return (idx - c).view(1, k).expand(k, k), (c - idx).view(k, 1).expand(k, k)


def gabor_kernel(k: int, cycles_per_px: float, theta_deg: float, sigma_px: float) -> torch.Tensor:
    """Zero-mean even Gabor: cos carrier along (cosθ, sinθ), Gaussian envelope."""
    x, y = kernel_coords(k)
    th = math.radians(theta_deg)
    d = x * math.cos(th) + y * math.sin(th)
    g = torch.exp(-(x**2 + y**2) / (2 * sigma_px**2)) * torch.cos(2 * math.pi * cycles_per_px * d)
    return g - g.mean()


def dog_kernel(k: int, s1: float, s2: float) -> torch.Tensor:
    x, y = kernel_coords(k)
    r2 = x**2 + y**2
    a = torch.exp(-r2 / (2 * s1**2))
    b = torch.exp(-r2 / (2 * s2**2))
    return a / a.sum() - b / b.sum()


@dataclass(frozen=True)
class GaborSpec:
    freq_cpd: float
    theta_deg: float


class GreyConv(nn.Module):
    """Grey = mean of RGB, then one conv layer ('valid'), then ReLU: every channel's filter is known."""

    def __init__(self, kernels: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        k = kernels.shape[-1]
        self.conv = nn.Conv2d(1, kernels.shape[0], k, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(kernels.unsqueeze(1).float())
            self.conv.bias.copy_(bias if bias is not None else torch.zeros(kernels.shape[0]))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x.mean(dim=1, keepdim=True)))


def gabor_bank_backbone(gabors: list[GaborSpec], ppd: float, k: int = 41, cycles_per_sigma: float = 1.0) -> Backbone:
    """Channels: the Gabors (σ = `cycles_per_sigma` periods: constant octave bandwidth), then a DoG, then DC.

    The DC channel has a bias so its rectifier never clips: it is linear, hence (with phase averaging) it
    responds to every grating exactly as to the uniform field.
    """
    kernels = []
    for g in gabors:
        cpp = g.freq_cpd / ppd
        kernels.append(gabor_kernel(k, cpp, g.theta_deg, min(cycles_per_sigma / cpp, k / 5)))
    kernels.append(dog_kernel(k, 1.5, 3.0) * 10)
    kernels.append(torch.full((k, k), 1.0 / (k * k), dtype=torch.float64))
    w = torch.stack(kernels)
    bias = torch.zeros(len(kernels))
    net = GreyConv(w, bias)
    return Backbone("gabor-bank", net, {"conv": "conv", "relu": "relu"}, IDENTITY,
                    WeightsInfo("synthetic", "Gabor filter bank with known tuning"), default_layers=["relu"])


def synthetic_selection(
    path: Path,
    layers: Mapping[str, int],
    model: str = "vgg16",
    weights: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """A selection.json with random PE scores (seed 0) for `layers` {name: channels}: its structure is what matters."""
    from psychofeat.selection import Selection

    rng = np.random.default_rng(0)
    rows = [{"layer": layer, "channel": c, "pe": float(rng.random()), "unresponsive": False}
            for layer, n in layers.items() for c in range(n)]
    return Selection.from_scores(pd.DataFrame(rows), model, weights, provenance=provenance).save(path)
