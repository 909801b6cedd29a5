"""SqueezeNet 1.1 (Iandola et al. 2016; DeepScale's v1.1 Caffe release) with torchvision's parameter names.

The network is torchvision's `squeezenet1_1` layout (`features.0.weight`, `features.3.squeeze.weight`, …,
`classifier.1.weight`), so its state dicts load unchanged, with one faithful difference: conv10 has padding 1,
as in DeepScale's prototxt and the ncnn graph (`4=1`); torchvision's definition drops it. The padding only
adds a border of ReLU(bias) values before the global average pool, but the weights were trained with it.

Layer names follow the Caffe graph: conv1, relu1, pool1, fire{N}_squeeze, fire{N}_relu_squeeze,
fire{N}_expand1x1, fire{N}_relu_expand1x1, fire{N}_expand3x3, fire{N}_relu_expand3x3, fire{N} (the Fire
module's output, i.e. the concatenation of both ReLU'd expand branches), pool3, pool5, conv10, relu10, pool10.
Default analysis layers: relu1 and the eight Fire outputs. The classifier is kept (the net outputs
1000 ImageNet logits), so the weights can be verified by classifying photographs.

Weights "imagenet": the original DeepScale model as converted to ncnn (`squeezenet_v1.1.param/.bin`), read
from the shared weights folder (`psychofeat.config.weights_dir()`) or downloaded from ncnn-assets, sha256-checked,
and converted once into the cache. Preprocessing is Caffe's: BGR, 0-255, minus (104, 117, 123).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from psychofeat.backbones.registry import ModelSpec, register_model
from psychofeat.config import weights_dir
from psychofeat.errors import WeightsError
from psychofeat.io import sha256_file
from psychofeat.weights.base import TORCHVISION, Preprocessing, fingerprint_check
from psychofeat.weights.cache import write_entry
from psychofeat.weights.download import download
from psychofeat.weights.ncnn import read_convolutions
from psychofeat.weights.sources import PretrainedSource

CAFFE_SQUEEZENET = Preprocessing("caffe-squeezenet", "BGR", 255.0, (104.0, 117.0, 123.0))

BIN_NAME = "squeezenet_v1.1.bin"
PARAM_NAME = "squeezenet_v1.1.param"
BIN_SHA256 = "928c82c485a16064df88794d83c333025055e60c08f73217222244ab0ed2dbc6"
#: sha256 of the .param in the shared folder: enforced for downloads, recorded for local files (the .bin checksum
#: fixes the weights, and every shape in a local .param is checked against the architecture anyway)
PARAM_SHA256 = "6a38784ab51f056e5ecdf208120f8a9174b74831255e66b74c4dd6bf755a4324"
ASSETS_URL = "https://github.com/nihui/ncnn-assets/raw/master/models/"
IMAGENET_DESCRIPTION = "DeepScale SqueezeNet v1.1 ImageNet weights (original Caffe model, via ncnn)"
#: fingerprints of the converted network: conv1's first bias and the checksum of all parameters
FIRST_BIAS = -0.014374157413840294
IMAGENET_PARAMS_SHA256 = "e6bdf5674f251fee8a6f04a01b361af9b0673b25989f1c2c73fb0a8d5e4ec664"

#: (fire number, in_channels, squeeze, expand1x1, expand3x3) and its index in `features`
FIRES: list[tuple[int, int, int, int, int, int]] = [
    (2, 3, 64, 16, 64, 64), (3, 4, 128, 16, 64, 64),
    (4, 6, 128, 32, 128, 128), (5, 7, 256, 32, 128, 128),
    (6, 9, 256, 48, 192, 192), (7, 10, 384, 48, 192, 192), (8, 11, 384, 64, 256, 256), (9, 12, 512, 64, 256, 256),
]  # fmt: skip
POOLS: dict[int, int] = {1: 2, 3: 5, 5: 8}  # pool name number -> index in `features`


class Fire(nn.Module):
    """squeeze 1x1 -> ReLU -> (expand 1x1 -> ReLU) ‖ (expand 3x3 -> ReLU), concatenated along channels."""

    def __init__(self, in_c: int, squeeze: int, e1: int, e3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_c, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, e1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, e3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


class SqueezeNet11(nn.Module):
    """SqueezeNet 1.1 for 1000 ImageNet classes; forward returns logits (N, 1000)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        ]
        for _n, idx, in_c, s, e1, e3 in FIRES:
            if len(layers) < idx:  # pool3 / pool5 sit just before fire4 / fire6
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
            layers.append(Fire(in_c, s, e1, e3))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Conv2d(512, num_classes, kernel_size=1, padding=1),  # Caffe's conv10 pads by 1 (see module doc)
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


def layer_paths() -> dict[str, str]:
    """Human layer names -> module paths, in forward order."""
    names = {"conv1": "features.0", "relu1": "features.1"}
    pool_at = {idx: n for n, idx in POOLS.items()}
    for n, idx, *_ in FIRES:
        if idx - 1 in pool_at:
            names[f"pool{pool_at[idx - 1]}"] = f"features.{idx - 1}"
        f = f"features.{idx}"
        names |= {
            f"fire{n}_squeeze": f"{f}.squeeze",
            f"fire{n}_relu_squeeze": f"{f}.squeeze_activation",
            f"fire{n}_expand1x1": f"{f}.expand1x1",
            f"fire{n}_relu_expand1x1": f"{f}.expand1x1_activation",
            f"fire{n}_expand3x3": f"{f}.expand3x3",
            f"fire{n}_relu_expand3x3": f"{f}.expand3x3_activation",
            f"fire{n}": f,
        }
    names |= {"conv10": "classifier.1", "relu10": "classifier.2", "pool10": "classifier.3"}
    return names


DEFAULT_LAYERS = ["relu1"] + [f"fire{n}" for n, *_ in FIRES]


def ncnn_to_torch() -> dict[str, str]:
    """ncnn/Caffe convolution name -> torchvision module path, in graph order (the order of the .bin)."""
    table = {"conv1": "features.0"}
    for n, idx, *_ in FIRES:
        table |= {
            f"fire{n}/squeeze1x1": f"features.{idx}.squeeze",
            f"fire{n}/expand1x1": f"features.{idx}.expand1x1",
            f"fire{n}/expand3x3": f"features.{idx}.expand3x3",
        }
    table["conv10"] = "classifier.1"
    return table


def state_dict_from_ncnn(param_path: str | Path, bin_path: str | Path) -> dict[str, torch.Tensor]:
    """Convert DeepScale's SqueezeNet 1.1 in ncnn format to a torchvision-named state dict.

    Every convolution must appear under its Caffe name, in order, with the kernel, stride, padding, bias and
    fused ReLU of this architecture; anything else is refused naming the layer.
    """
    convs = read_convolutions(param_path, bin_path)
    table = ncnn_to_torch()
    if [c.name for c in convs] != list(table):
        got, want = [c.name for c in convs], list(table)
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        raise WeightsError(
            f"{param_path}: convolution #{first + 1} is {got[first] if first < len(got) else 'missing'!r}, expected "
            f"{want[first] if first < len(want) else 'none'!r}; this is not SqueezeNet 1.1 "
            f"({len(got)} convolutions, expected 26)."
        )
    modules = dict(SqueezeNet11().named_modules())
    state: dict[str, torch.Tensor] = {}
    for conv in convs:
        path = table[conv.name]
        ref = modules[path]
        assert isinstance(ref, nn.Conv2d)
        geometry = (tuple(ref.weight.shape), ref.stride, ref.padding, ref.dilation, True, 1)
        found = (conv.weight.shape, conv.stride, conv.padding, conv.dilation, conv.bias is not None, conv.activation)
        if found != geometry:
            raise WeightsError(
                f"{param_path}: layer {conv.name!r} has (shape, stride, padding, dilation, bias, activation) = "
                f"{found}, expected {geometry} for {path} of SqueezeNet 1.1."
            )
        state[f"{path}.weight"] = torch.from_numpy(conv.weight.copy())
        state[f"{path}.bias"] = torch.from_numpy(conv.bias.copy())  # type: ignore[union-attr]
    return state


def _locate(source: Path | None, tmp: Path) -> tuple[Path, Path, str, str]:
    """(param, bin, origin of param, origin of bin): the given `.bin` or folder, else the shared weights
    folder, else a download from ncnn-assets (both files sha256-checked)."""
    if source is not None:
        source = Path(source)
        bin_path = source if not source.is_dir() else source / BIN_NAME
        param_path = bin_path.with_suffix(".param") if not source.is_dir() else source / PARAM_NAME
        return param_path, bin_path, str(param_path), str(bin_path)
    shared = weights_dir()
    if shared is not None and (shared / BIN_NAME).is_file() and (shared / PARAM_NAME).is_file():
        return shared / PARAM_NAME, shared / BIN_NAME, str(shared / PARAM_NAME), str(shared / BIN_NAME)
    bin_path = download(ASSETS_URL + BIN_NAME, tmp / BIN_NAME, BIN_SHA256)
    param_path = download(ASSETS_URL + PARAM_NAME, tmp / PARAM_NAME, PARAM_SHA256)
    return param_path, bin_path, ASSETS_URL + PARAM_NAME, ASSETS_URL + BIN_NAME


def import_imagenet(dest: Path, source: Path | None = None) -> dict[str, Any]:
    """Write the cache entry `dest` from the ncnn files (given `.bin` or folder, shared folder, or download)."""
    with tempfile.TemporaryDirectory() as tmp:
        param_path, bin_path, param_origin, origin = _locate(source, Path(tmp))
        for p in (param_path, bin_path):
            if not p.is_file():
                raise WeightsError(f"{p} does not exist; SqueezeNet needs both {PARAM_NAME} and {BIN_NAME}.")
        bin_sha = sha256_file(bin_path)
        if bin_sha != BIN_SHA256:
            raise WeightsError(
                f"{bin_path} has sha256 {bin_sha[:16]}…, expected {BIN_SHA256[:16]}… (DeepScale SqueezeNet v1.1 in "
                "ncnn format); refusing it as the 'imagenet' weights. Use --weights PATH for other weights."
            )
        state = state_dict_from_ncnn(param_path, bin_path)
        return write_entry(
            dest,
            state,
            {
                "source": origin,
                "source_sha256": bin_sha,
                "source_param": param_origin,
                "source_param_sha256": sha256_file(param_path),
                "weights": "imagenet",
                "description": IMAGENET_DESCRIPTION,
                "preprocessing": CAFFE_SQUEEZENET.to_dict(),
            },
        )


#: the original weights are recognised by conv1's first bias and the checksum of all parameters
verify_imagenet = fingerprint_check(
    "SqueezeNet", lambda net: net.features[0].bias[0], "conv1 bias[0]", FIRST_BIAS, 1e-9, IMAGENET_PARAMS_SHA256
)


SPEC = register_model(
    ModelSpec(
        name="squeezenet1_1",
        description="SqueezeNet 1.1 (ImageNet classifier; DeepScale Caffe weights); 26 conv layers",
        build=SqueezeNet11,
        layer_paths=layer_paths(),
        default_layers=DEFAULT_LAYERS,
        sources={
            "imagenet": PretrainedSource(
                name="imagenet",
                cache_file="squeezenet1_1_imagenet_caffe.pth",
                preprocessing=CAFFE_SQUEEZENET,
                description=IMAGENET_DESCRIPTION,
                importer=import_imagenet,
                import_hint=f"psychofeat weights import squeezenet1_1 --from {BIN_NAME} (with {PARAM_NAME} beside it)",
                verify=verify_imagenet,
            ),
        },
        file_preprocessing=TORCHVISION,  # a bare .pth is most likely torchvision-trained
        aliases=("squeezenet", "squeezenet_v1.1"),
        # LPIPS' SqueezeNet slices end at these outputs
        metric_layers=["relu1", "fire3", "fire5", "fire6", "fire7", "fire8", "fire9"],
    )
)
