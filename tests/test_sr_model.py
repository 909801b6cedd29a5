"""SRResNet: the paper's architecture (layer counts, parameter count derived by hand), shapes and range handling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from psychofeat.errors import InputError, WeightsError
from psychofeat.sr.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, state_digest
from psychofeat.sr.model import SRResNet, SRResNetConfig


def _expected_params(b: int = 16, c: int = 64) -> int:
    conv = lambda cin, cout, k, bias=True: cin * cout * k * k + (cout if bias else 0)  # noqa: E731
    head = conv(3, c, 9) + c  # + PReLU(c)
    block = 2 * (conv(c, c, 3, bias=False) + 2 * c) + c  # two conv+BN, one PReLU(c)
    body_tail = conv(c, c, 3, bias=False) + 2 * c
    up = 2 * (conv(c, 4 * c, 3) + c)
    tail = conv(c, 3, 9)
    return head + b * block + body_tail + up + tail


def test_default_architecture_matches_the_paper() -> None:
    m = SRResNet()
    assert sum(p.numel() for p in m.parameters()) == _expected_params() == 1_548_547
    assert len(m.body) == 16
    assert sum(isinstance(x, nn.PixelShuffle) for x in m.modules()) == 2
    assert sum(isinstance(x, nn.BatchNorm2d) for x in m.modules()) == 2 * 16 + 1
    assert sum(isinstance(x, nn.PReLU) for x in m.modules()) == 1 + 16 + 2


def test_shapes_and_gradients() -> None:
    m = SRResNet(n_blocks=2, channels=8)
    lr = torch.rand(2, 3, 7, 9)
    out = m(lr)
    assert out.shape == (2, 3, 28, 36)
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_forward_is_unclamped_and_upscale_clamps() -> None:
    m = SRResNet(n_blocks=1, channels=4, bn=False)
    with torch.no_grad():
        m.tail.bias.fill_(5.0)  # push the output far above 1
    assert m(torch.rand(1, 3, 4, 4)).min() > 1.0
    m.train()
    up = m.upscale(torch.rand(1, 3, 4, 4))
    assert torch.all(up == 1.0) and m.training  # clamped, and the train/eval mode is restored


def test_no_bn_variant_and_bad_config() -> None:
    m = SRResNet(bn=False, n_blocks=2, channels=8)
    assert not any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    assert SRResNet(scale=2, n_blocks=1, channels=4)(torch.rand(1, 3, 5, 5)).shape == (1, 3, 10, 10)
    with pytest.raises(InputError, match="scale"):
        SRResNet(scale=3)


def test_checkpoint_roundtrip_and_errors(tmp_path) -> None:  # noqa: ANN001
    m = SRResNet(n_blocks=1, channels=8)
    path = save_checkpoint(tmp_path / "c.pt", {"model": m.state_dict(), "model_config": m.config.to_dict(), "step": 3})
    m2 = model_from_checkpoint(path)
    assert m2.config == SRResNetConfig(n_blocks=1, channels=8) and state_digest(m2) == state_digest(m)
    torch.save(SRResNet().state_dict(), tmp_path / "bare.pt")  # a bare state dict means the default architecture
    assert load_checkpoint(tmp_path / "bare.pt")["model_config"] == SRResNetConfig().to_dict()
    torch.save(m.state_dict(), tmp_path / "wrong.pt")
    with pytest.raises(WeightsError, match="do not fit"):
        model_from_checkpoint(tmp_path / "wrong.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")
