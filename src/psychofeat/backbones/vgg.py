"""VGG-16's convolutional trunk (Simonyan & Zisserman 2015) with torchvision's parameter names.

Layer names follow the paper/Caffe convention: conv{B}_{C}, relu{B}_{C}, pool{B}. The default analysis
layers are the 13 ReLU outputs. Weights: "imagenet" (default) is the original release with Caffe
preprocessing; "torchvision" is torchvision's separately trained `vgg16-397923af.pth` with its preprocessing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from psychofeat.backbones.registry import ModelSpec, register_model
from psychofeat.weights.base import CAFFE_VGG, TORCHVISION, fingerprint_check
from psychofeat.weights.sources import PretrainedSource
from psychofeat.weights.vgg16_import import FIRST_BIAS, import_vgg16

CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]

TORCHVISION_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
TORCHVISION_SHA256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"
#: params_sha256 of the trunk after importing the original ImageNet weights (see psychofeat.weights.base)
IMAGENET_PARAMS_SHA256 = "ac0a901d030434268e4ef5287f2320c86987c2cbab0323b2ab3c93cc2cbdbab3"


class VGG16Trunk(nn.Module):
    """The 13 convolutions, ReLUs and 5 max-pools of VGG-16 (`features.0` … `features.30`)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_c = 3
        for v in CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_c, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_c = int(v)
        self.features = nn.Sequential(*layers)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.features(x)


def layer_paths() -> dict[str, str]:
    """conv1_1 -> features.0, relu1_1 -> features.1, …, pool5 -> features.30 (forward order)."""
    names: dict[str, str] = {}
    idx, block, conv = 0, 1, 1
    for v in CFG:
        if v == "M":
            names[f"pool{block}"] = f"features.{idx}"
            idx += 1
            block += 1
            conv = 1
        else:
            names[f"conv{block}_{conv}"] = f"features.{idx}"
            names[f"relu{block}_{conv}"] = f"features.{idx + 1}"
            idx += 2
            conv += 1
    return names


RELU_LAYERS = [n for n in layer_paths() if n.startswith("relu")]


def _import_imagenet(dest: Path, source: Path | None = None) -> dict:  # type: ignore[type-arg]
    with torch.device("meta"):  # shapes only, nothing allocated: what the imported file must hold
        expected = VGG16Trunk().state_dict()
    return import_vgg16(dest, source, expected=expected)


#: the original weights are recognised by conv1_1's first bias and the checksum of all parameters
verify_imagenet = fingerprint_check(
    "VGG-16", lambda net: net.features[0].bias[0], "conv1_1 bias[0]", FIRST_BIAS, 1e-6, IMAGENET_PARAMS_SHA256
)


SPEC = register_model(
    ModelSpec(
        name="vgg16",
        description="VGG-16 convolutional trunk (ImageNet); 13 conv layers",
        build=VGG16Trunk,
        layer_paths=layer_paths(),
        default_layers=RELU_LAYERS,
        sources={
            "imagenet": PretrainedSource(
                name="imagenet",
                cache_file="vgg16_imagenet_caffe.pth",
                preprocessing=CAFFE_VGG,
                description="original VGG-16 ImageNet weights (Simonyan & Zisserman; Caffe/Keras release)",
                importer=_import_imagenet,
                import_hint="psychofeat weights import vgg16",
                verify=verify_imagenet,
            ),
            "torchvision": PretrainedSource(
                name="torchvision",
                cache_file="vgg16-397923af.pth",
                preprocessing=TORCHVISION,
                description="torchvision's VGG-16 ImageNet weights (IMAGENET1K_V1), trained separately",
                url=TORCHVISION_URL,
                url_sha256=TORCHVISION_SHA256,
                import_hint="psychofeat weights import vgg16 --source torchvision --from vgg16-397923af.pth",
            ),
        },
        file_preprocessing=TORCHVISION,
        ignore_prefixes=("classifier.",),
        metric_layers=["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"],
    )
)
