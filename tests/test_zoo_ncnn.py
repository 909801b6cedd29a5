"""The ncnn reader against hand-built files (exact values, every failure mode) and the shared SqueezeNet files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from psychofeat.errors import WeightsError
from psychofeat.weights.ncnn import TAG_FP16, read_convolutions, read_param

RNG = np.random.default_rng(0)
W1 = RNG.standard_normal((2, 3, 3, 3)).astype(np.float16)  # stored as fp16: exactly representable
B1 = RNG.standard_normal(2).astype(np.float32)
W2 = RNG.standard_normal((4, 2, 1, 1)).astype(np.float32)
B2 = RNG.standard_normal(4).astype(np.float32)

PARAM = """7767517
4 4
Input        data  0 1 data 0=8 1=8 2=3
Convolution  c1    1 1 data a 0=2 1=3 3=2 4=1 5=1 6=54 9=1
Pooling      p1    1 1 a b 1=2 2=2
Convolution  c2    1 1 b out 0=4 1=1 5=1 6=8
"""


def blob(tag1: int = TAG_FP16) -> bytes:
    """c1 as fp16 (tagged), then c2 as raw fp32 (tag 0), each followed by its fp32 bias."""
    return (
        struct.pack("<I", tag1) + W1.astype("<f2").tobytes() + B1.astype("<f4").tobytes()
        + struct.pack("<I", 0) + W2.astype("<f4").tobytes() + B2.astype("<f4").tobytes()
    )  # fmt: skip


def write(tmp: Path, param: str = PARAM, data: bytes | None = None) -> tuple[Path, Path]:
    p, b = tmp / "m.param", tmp / "m.bin"
    p.write_text(param)
    b.write_bytes(blob() if data is None else data)
    return p, b


def test_reads_exact_values_and_geometry(tmp_path: Path) -> None:
    convs = read_convolutions(*write(tmp_path))
    assert [c.name for c in convs] == ["c1", "c2"]
    c1, c2 = convs
    np.testing.assert_array_equal(c1.weight, W1.astype(np.float32))
    np.testing.assert_array_equal(c1.bias, B1)
    np.testing.assert_array_equal(c2.weight, W2)
    np.testing.assert_array_equal(c2.bias, B2)
    assert (c1.stride, c1.padding, c1.activation, c1.storage) == ((2, 2), (1, 1), 1, "fp16")
    assert (c2.stride, c2.padding, c2.activation, c2.storage) == ((1, 1), (0, 0), 0, "fp32")


def test_truncated_bin_names_the_layer(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"layer 'c2' needs 16 bytes of 4 fp32 biases.*truncated"):
        read_convolutions(*write(tmp_path, data=blob()[:-4]))


def test_wrong_tag_names_the_layer(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"layer 'c1' has storage tag 0x000D4B38"):
        read_convolutions(*write(tmp_path, data=blob(tag1=0x000D4B38)))  # ncnn's int8 tag


def test_trailing_bytes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="8 bytes remain after the last layer"):
        read_convolutions(*write(tmp_path, data=blob() + bytes(8)))


def test_shape_mismatch_between_param_and_bin_is_caught(tmp_path: Path) -> None:
    # c2 claims 8 output channels: its weights then swallow c2's biases and the bias read runs off the end
    param = PARAM.replace("0=4 1=1 5=1 6=8", "0=8 1=1 5=1 6=16")
    with pytest.raises(WeightsError, match="layer 'c2'"):
        read_convolutions(*write(tmp_path, param=param))


def test_inconsistent_weight_count_is_refused(tmp_path: Path) -> None:
    param = PARAM.replace("6=54", "6=55")
    with pytest.raises(WeightsError, match=r"'c1': inconsistent Convolution parameters"):
        read_convolutions(*write(tmp_path, param=param))


def test_unknown_weighted_layer_is_refused(tmp_path: Path) -> None:
    param = PARAM.replace("Pooling      p1", "InnerProduct p1")
    with pytest.raises(WeightsError, match="layer 'p1' has type 'InnerProduct'"):
        read_convolutions(*write(tmp_path, param=param))


def test_param_layer_count_and_magic_are_checked(tmp_path: Path) -> None:
    p, _ = write(tmp_path, param=PARAM.replace("4 4", "5 4"))
    with pytest.raises(WeightsError, match="declares 5 layers but holds 4"):
        read_param(p)
    p.write_text(PARAM.replace("7767517", "7767518"))
    with pytest.raises(WeightsError, match="not an ncnn text .param"):
        read_param(p)


@pytest.fixture(scope="module")
def ncnn_files(squeezenet_ncnn_dir: Path) -> tuple[Path, Path]:
    return squeezenet_ncnn_dir / "squeezenet_v1.1.param", squeezenet_ncnn_dir / "squeezenet_v1.1.bin"


def test_shared_squeezenet_file_layout(ncnn_files: tuple[Path, Path]) -> None:
    param, bin_path = ncnn_files
    convs = read_convolutions(param, bin_path)
    assert len(convs) == 26 and all(c.storage == "fp16" and c.activation == 1 for c in convs)
    assert convs[0].name == "conv1" and convs[0].weight.shape == (64, 3, 3, 3) and convs[0].stride == (2, 2)
    assert convs[-1].name == "conv10" and convs[-1].weight.shape == (1000, 512, 1, 1) and convs[-1].padding == (1, 1)
    # independent of the reader: README layout says conv1's fp32 bias starts after the tag and 1728 fp16 weights
    raw = bin_path.read_bytes()
    assert struct.unpack("<I", raw[:4])[0] == TAG_FP16
    np.testing.assert_array_equal(np.frombuffer(raw[4 + 2 * 1728 : 4 + 2 * 1728 + 4 * 64], "<f4"), convs[0].bias)
    n_bytes = sum(4 + 2 * c.weight.size + 4 * c.weight.shape[0] for c in convs)
    assert n_bytes == len(raw) == 2_478_984
