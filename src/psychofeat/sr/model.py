"""SRResNet x4 (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a GAN", CVPR 2017).

Architecture as in the paper's Figure 4 (generator): 9×9 conv + PReLU; B residual blocks
(3×3 conv, BN, PReLU, 3×3 conv, BN, skip); 3×3 conv + BN and a long skip; two ×2 upsampling stages
(3×3 conv to 4·C channels, PixelShuffle(2), PReLU); 9×9 conv to RGB. Defaults: B = 16, C = 64 (1.55 M parameters).
PReLU slopes are learned per channel.

Range convention: input LR and target HR are both RGB in [0, 1] (the paper mapped HR to [−1, 1]; with a linear
output the two are equivalent up to an affine rescale of the last layer). `forward` does **not** clamp, so the
loss sees (and can correct) overshoot and gradients are never cut; `upscale()` clamps to [0, 1] for inference,
and evaluation additionally rounds to 8 bits (see `psychofeat.classic.sr_psnr_ssim`).

`bn=False` drops the batch norms (the EDSR/MSRResNet variant); the tests use it because without per-batch
statistics a DDP run and a single-process run of the same global batch compute the same gradient.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from psychofeat.errors import InputError


@dataclass(frozen=True)
class SRResNetConfig:
    """Architecture hyper-parameters; stored in every checkpoint so a model can be rebuilt from it alone."""

    scale: int = 4
    n_blocks: int = 16
    channels: int = 64
    bn: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ResidualBlock(nn.Module):
    """conv3×3 – BN – PReLU – conv3×3 – BN, plus identity (Ledig et al. 2017, Fig. 4)."""

    def __init__(self, channels: int, bn: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=not bn),
            nn.BatchNorm2d(channels) if bn else nn.Identity(),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=not bn),
            nn.BatchNorm2d(channels) if bn else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleBlock(nn.Module):
    """conv3×3 to 4·C channels – PixelShuffle(2) – PReLU: one ×2 sub-pixel upsampling stage."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """SRResNet: LR RGB N×3×h×w in [0, 1] → SR RGB N×3×(s·h)×(s·w), unclamped (see module docstring)."""

    def __init__(self, config: SRResNetConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = config or SRResNetConfig()
        if overrides:
            cfg = SRResNetConfig(**{**cfg.to_dict(), **overrides})
        if cfg.scale not in (2, 4, 8):
            raise InputError(f"SRResNet scale must be 2, 4 or 8 (a power of two), got {cfg.scale}.")
        if cfg.n_blocks < 1 or cfg.channels < 1:
            raise InputError(f"n_blocks and channels must be ≥ 1, got {cfg.n_blocks} and {cfg.channels}.")
        self.config = cfg
        c = cfg.channels
        self.head = nn.Sequential(nn.Conv2d(3, c, 9, padding=4), nn.PReLU(c))
        self.body = nn.Sequential(*[ResidualBlock(c, cfg.bn) for _ in range(cfg.n_blocks)])
        self.body_tail = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=not cfg.bn), nn.BatchNorm2d(c) if cfg.bn else nn.Identity()
        )
        n_up = cfg.scale.bit_length() - 1
        self.upsample = nn.Sequential(*[UpsampleBlock(c) for _ in range(n_up)])
        self.tail = nn.Conv2d(c, 3, 9, padding=4)

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        feat = self.head(lr)
        feat = feat + self.body_tail(self.body(feat))
        return self.tail(self.upsample(feat))

    @torch.no_grad()
    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        """Inference: eval-mode forward clamped to [0, 1] (restores the previous train/eval mode)."""
        was_training = self.training
        self.eval()
        try:
            return self(lr).clamp_(0.0, 1.0)
        finally:
            self.train(was_training)


def build_srresnet(config: SRResNetConfig | dict[str, Any] | None = None) -> SRResNet:
    """An SRResNet from a config object or its dict form (as stored in checkpoints)."""
    if isinstance(config, dict):
        config = SRResNetConfig(**config)
    return SRResNet(config)


__all__ = ["ResidualBlock", "SRResNet", "SRResNetConfig", "UpsampleBlock", "build_srresnet"]
