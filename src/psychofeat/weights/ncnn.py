"""Read convolution weights from an ncnn model (`.param` text graph + `.bin` blob), checking every byte.

ncnn (github.com/Tencent/ncnn) stores a network as a text graph and a flat binary blob with no names or
shapes of its own: each layer's weights follow the previous layer's, in graph order, and only the `.param`
says how many there are. A reader that trusts the blob would silently shift every later layer by one
misread count, so this one walks the graph, computes each layer's expected byte size from its parameters,
checks the storage tag, and refuses the file (naming the layer) on any mismatch, truncation or trailing data.

Layout of one `Convolution` layer in the `.bin` (ncnn `ModelBin::load`, type 0 then type 1):
- a 4-byte little-endian tag: `0x01306B47` means IEEE fp16 values follow; `0` means raw fp32 follows;
- `weight_data_size` values in OIHW order (fp16 data is padded to a multiple of 4 bytes);
- if `bias_term`: `num_output` fp32 biases, untagged.

Only what SqueezeNet-style Caffe conversions use is supported: `Convolution` plus weightless layers. Any other
layer type is refused rather than guessed, because skipping an unknown weighted layer misaligns the rest.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from psychofeat.errors import DamagedWeightsError, WeightsError

NCNN_MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = 0x00000000
#: layer types that carry no data in the .bin
WEIGHTLESS_TYPES = frozenset(
    {"Input", "Pooling", "Split", "Concat", "Softmax", "ReLU", "ReLU6", "Sigmoid", "Dropout", "Flatten", "Noop",
     "Eltwise", "BinaryOp", "Reshape", "Permute", "Crop", "Interp"}
)  # fmt: skip

ParamValue = int | float | list[int | float]


@dataclass(frozen=True)
class NcnnLayer:
    """One line of a `.param` file."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, ParamValue] = field(default_factory=dict)

    def get(self, key: int, default: int) -> int:
        value = self.params.get(key, default)
        if not isinstance(value, int):
            raise WeightsError(f"ncnn layer {self.name!r}: parameter {key} is {value!r}, expected an integer.")
        return value


@dataclass(frozen=True)
class NcnnConv:
    """The weights and geometry of one ncnn `Convolution` layer (weights as float32, OIHW)."""

    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    activation: int  # ncnn activation_type: 0 none, 1 ReLU, 2 leaky ReLU, 3 clip, 4 sigmoid, ...
    storage: str  # "fp16" or "fp32": how the weights were stored in the .bin


def _parse_value(key: int, text: str, where: str) -> tuple[int, ParamValue]:
    def num(t: str) -> int | float:
        try:
            return float(t) if any(c in t for c in ".eE") else int(t)
        except ValueError:
            raise WeightsError(f"{where}: cannot parse parameter value {t!r}.") from None

    if key <= -23300:  # array parameter: -23300 - id = "count,v1,v2,..."
        parts = text.split(",")
        values = [num(p) for p in parts[1:]]
        if int(num(parts[0])) != len(values):
            raise WeightsError(f"{where}: array parameter {key} declares {parts[0]} values but has {len(values)}.")
        return -23300 - key, values
    return key, num(text)


def read_param(path: str | Path) -> list[NcnnLayer]:
    """Parse an ncnn text `.param` file into its layers (graph order)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"ncnn graph {path} does not exist.")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    if not lines or lines[0] != str(NCNN_MAGIC):
        raise WeightsError(f"{path} is not an ncnn text .param file (first line must be {NCNN_MAGIC}).")
    try:
        n_layers, _n_blobs = (int(v) for v in lines[1].split())
    except (IndexError, ValueError):
        raise WeightsError(f"{path}: line 2 must hold the layer and blob counts.") from None
    layers: list[NcnnLayer] = []
    for lineno, line in enumerate(lines[2:], start=3):
        tok = line.split()
        where = f"{path}:{lineno}"
        try:
            ltype, name, n_in, n_out = tok[0], tok[1], int(tok[2]), int(tok[3])
        except (IndexError, ValueError):
            raise WeightsError(f"{where}: malformed layer line {line!r}.") from None
        blobs = tok[4 : 4 + n_in + n_out]
        if len(blobs) != n_in + n_out:
            raise WeightsError(f"{where}: layer {name!r} lists fewer blobs than it declares.")
        params: dict[int, ParamValue] = {}
        for kv in tok[4 + n_in + n_out :]:
            key, sep, value = kv.partition("=")
            if not sep:
                raise WeightsError(f"{where}: layer {name!r} has a malformed parameter {kv!r}.")
            k, v = _parse_value(int(key), value, f"{where} ({name})")
            params[k] = v
        layers.append(NcnnLayer(ltype, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), params))
    if len(layers) != n_layers:
        raise WeightsError(
            f"{path} declares {n_layers} layers but holds {len(layers)}; the file is truncated or edited."
        )
    return layers


def _conv_geometry(layer: NcnnLayer) -> tuple[int, int, int, int, bool]:
    """(out_channels, in_channels, kernel_h, kernel_w, bias_term) from ncnn's Convolution parameters."""
    out_c = layer.get(0, 0)
    kw = layer.get(1, 0)
    kh = layer.get(11, kw)
    bias = layer.get(5, 0) != 0
    n = layer.get(6, 0)
    if out_c <= 0 or kw <= 0 or kh <= 0 or n <= 0 or n % (out_c * kh * kw):
        raise WeightsError(
            f"ncnn layer {layer.name!r}: inconsistent Convolution parameters (num_output={out_c}, kernel={kh}x{kw}, "
            f"weight_data_size={n})."
        )
    return out_c, n // (out_c * kh * kw), kh, kw, bias


class _Blob:
    """A bounds-checked cursor over the .bin bytes; every read names the layer it is for."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, layer: str, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise WeightsError(
                f"{self.path}: layer {layer!r} needs {n} bytes of {what} at offset {self.pos}, but only "
                f"{len(self.data) - self.pos} remain; the file is truncated or does not belong to this .param."
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def _read_conv(blob: _Blob, layer: NcnnLayer) -> NcnnConv:
    out_c, in_c, kh, kw, has_bias = _conv_geometry(layer)
    n = out_c * in_c * kh * kw
    offset = blob.pos
    (tag,) = struct.unpack("<I", blob.take(4, layer.name, "storage tag"))
    if tag == TAG_FP16:
        raw = blob.take((2 * n + 3) // 4 * 4, layer.name, f"{n} fp16 weights")
        weight = np.frombuffer(raw[: 2 * n], dtype="<f2").astype(np.float32)
        storage = "fp16"
    elif tag == TAG_FP32:
        weight = np.frombuffer(blob.take(4 * n, layer.name, f"{n} fp32 weights"), dtype="<f4").astype(np.float32)
        storage = "fp32"
    else:
        raise WeightsError(
            f"{blob.path}: layer {layer.name!r} has storage tag 0x{tag:08X} at offset {offset}; expected "
            f"0x{TAG_FP16:08X} (fp16) or 0 (fp32). Quantised or misaligned files are not supported."
        )
    bias = None
    if has_bias:
        bias = np.frombuffer(blob.take(4 * out_c, layer.name, f"{out_c} fp32 biases"), dtype="<f4").astype(np.float32)
    if not np.isfinite(weight).all() or (bias is not None and not np.isfinite(bias).all()):
        raise DamagedWeightsError(f"{blob.path}: layer {layer.name!r} contains NaN or infinite values; the file is "
                                  "corrupt.")
    sw = layer.get(3, 1)
    pw = layer.get(4, 0)
    dw = layer.get(2, 1)
    if pw < 0:
        raise WeightsError(f"ncnn layer {layer.name!r}: 'SAME' padding mode ({pw}) is not supported.")
    return NcnnConv(
        name=layer.name,
        weight=weight.reshape(out_c, in_c, kh, kw),
        bias=bias,
        stride=(layer.get(13, sw), sw),
        padding=(layer.get(14, pw), pw),
        dilation=(layer.get(12, dw), dw),
        activation=layer.get(9, 0),
        storage=storage,
    )


def read_convolutions(param_path: str | Path, bin_path: str | Path) -> list[NcnnConv]:
    """All `Convolution` layers of an ncnn model, in graph order, with their weights checked against the graph."""
    layers = read_param(param_path)
    bin_path = Path(bin_path)
    if not bin_path.is_file():
        raise WeightsError(f"ncnn weights {bin_path} do not exist.")
    blob = _Blob(bin_path.read_bytes(), bin_path)
    convs: list[NcnnConv] = []
    for layer in layers:
        if layer.type == "Convolution":
            convs.append(_read_conv(blob, layer))
        elif layer.type not in WEIGHTLESS_TYPES:
            raise WeightsError(
                f"{param_path}: layer {layer.name!r} has type {layer.type!r}, which this reader does not handle; "
                "refusing rather than misreading the rest of the .bin."
            )
    if blob.pos != len(blob.data):
        raise WeightsError(
            f"{bin_path}: {len(blob.data) - blob.pos} bytes remain after the last layer "
            f"({convs[-1].name if convs else '-'}); the .bin does not belong to this .param."
        )
    return convs
