"""Check that pretrained classifier weights are what they claim to be, by classifying known photographs.

A checksum proves a file is unchanged; only a correct prediction proves the whole chain (file reader, layer
mapping, architecture details such as padding, preprocessing and channel order) is right. The reference photos
are scikit-image's bundled `chelsea` (a tabby cat: ImageNet classes 281-285) and `coffee` (a cup of espresso:
967 espresso, 504 coffee mug or 968 cup). scikit-image is a test dependency, imported only when needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F

from psychofeat.backbones.base import Backbone
from psychofeat.errors import DataMissingError, InputError

#: scikit-image photo -> the ImageNet classes a working classifier must rank first
REFERENCE_IMAGES: dict[str, frozenset[int]] = {
    "chelsea": frozenset(range(281, 286)),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    "coffee": frozenset({967, 504, 968}),  # espresso, coffee mug, cup
}


@dataclass(frozen=True)
class EvalTransform:
    """Centre crop of `crop_fraction` of the shorter side, resized to `size`×`size` (the usual ImageNet eval)."""

    size: int = 224
    crop_fraction: float = 0.875
    interpolation: str = "bilinear"  # or "bicubic"


#: a verified prediction must be this confident (chance is 0.001): a broken network can still put a cat class
#: first by accident, but only with a near-uniform output
MIN_PROBABILITY = 0.1

#: how each network's authors evaluated it
EVAL_TRANSFORMS: dict[str, EvalTransform] = {
    "squeezenet1_1": EvalTransform(227, 227 / 256, "bilinear"),  # Caffe: resize to 256, centre crop 227
    "efficientnet_lite0": EvalTransform(224, 224 / (224 + 32), "bicubic"),  # TF: crop_padding 32, bicubic
}


@dataclass(frozen=True)
class Prediction:
    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class VerificationResult:
    image: str
    expected: frozenset[int]
    top: list[Prediction]

    @property
    def passed(self) -> bool:
        """The top class is one of the expected ones, with probability of at least MIN_PROBABILITY."""
        return bool(self.top) and self.top[0].index in self.expected and self.top[0].probability >= MIN_PROBABILITY


@lru_cache(maxsize=1)
def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names in index order (package data; source cited in the file header)."""
    text = resources.files("psychofeat").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    names = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    if len(names) != 1000:
        raise DataMissingError(f"psychofeat/data/imagenet_classes.txt holds {len(names)} names, expected 1000.")
    return names


def center_crop_resize(images: torch.Tensor, transform: EvalTransform = EvalTransform()) -> torch.Tensor:
    """N×3×H×W in [0, 1] -> N×3×size×size: central square of `crop_fraction`·min(H, W), then (antialiased) resize."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise InputError(f"expected N×3×H×W images, got shape {tuple(images.shape)}.")
    h, w = images.shape[-2:]
    side = max(1, round(min(h, w) * transform.crop_fraction))
    top, left = (h - side) // 2, (w - side) // 2
    crop = images[..., top : top + side, left : left + side]
    out = F.interpolate(
        crop, size=(transform.size,) * 2, mode=transform.interpolation, align_corners=False, antialias=True
    )
    return out.clamp(0.0, 1.0)


@torch.no_grad()
def classify(backbone: Backbone, images: torch.Tensor, top: int = 5) -> list[list[Prediction]]:
    """Top-`top` ImageNet predictions (softmax probabilities) for already cropped [0, 1] RGB images."""
    param = next(backbone.parameters(), None)
    logits = backbone(images.to(param.device if param is not None else "cpu"))
    if logits.ndim != 2 or logits.shape[1] != 1000:
        raise InputError(f"{backbone.name} does not output 1000 ImageNet logits (got shape {tuple(logits.shape)}).")
    probs = logits.float().softmax(dim=1).cpu()
    names = imagenet_classes()
    values, indices = probs.topk(top, dim=1)
    return [
        [Prediction(int(i), names[int(i)], float(v)) for v, i in zip(vs, idx)] for vs, idx in zip(values, indices)
    ]


def reference_images() -> dict[str, torch.Tensor]:
    """scikit-image's `chelsea` and `coffee` as 1×3×H×W float tensors in [0, 1]."""
    try:
        import skimage.data
    except ImportError as exc:
        raise DataMissingError("the reference photos come from scikit-image: pip install scikit-image") from exc
    out = {}
    for name in REFERENCE_IMAGES:
        arr = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
        out[name] = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()
    return out


def verify_classifier(
    backbone: Backbone,
    transform: EvalTransform | None = None,
    expected: Mapping[str, frozenset[int]] = REFERENCE_IMAGES,
) -> list[VerificationResult]:
    """Classify the reference photos with the network's own evaluation transform; `passed` says if each is right."""
    transform = transform or EVAL_TRANSFORMS.get(backbone.name, EvalTransform())
    images = reference_images()
    results = []
    for name, classes in expected.items():
        preds = classify(backbone, center_crop_resize(images[name], transform))[0]
        results.append(VerificationResult(name, classes, preds))
    return results
