"""PerceptualDistance checked against an independent numpy implementation, plus its options and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracles import ChannelDistances
from scipy.signal import correlate
from torch import nn

from psychofeat.backbones import IDENTITY, from_module, load_backbone
from psychofeat.errors import InputError
from psychofeat.metric import PerceptualDistance, perceptual_distance
from psychofeat.selection import Selection

#: numerically sensitive: CI reruns these under other CPUs' kernels (docs/developing.md, "Every CPU")
pytestmark = pytest.mark.numerics

EPS = 1e-10


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, stride=2, padding=1), nn.ReLU())
    return net.double()


def np_features(net: nn.Module, x: np.ndarray) -> list[np.ndarray]:
    """Forward pass of tiny_net in numpy (cross-correlation with zero padding), returns both ReLU outputs."""
    outs = []
    h = x
    for conv in (net[0], net[2]):
        w = conv.weight.detach().numpy()
        b = conv.bias.detach().numpy()
        s = conv.stride[0]
        hp = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
        y = np.stack([
            np.stack([sum(correlate(hp[n, c], w[o, c], mode="valid") for c in range(w.shape[1])) + b[o]
                      for o in range(w.shape[0])])
            for n in range(h.shape[0])
        ])[:, :, ::s, ::s]
        h = np.maximum(y, 0)
        outs.append(h)
    return outs


def np_distance(fx: list[np.ndarray], fy: list[np.ndarray], sel: list[list[int]], mode: str) -> np.ndarray:
    total = 0.0
    for a, b, idx in zip(fx, fy, sel):
        a, b = a[:, idx], b[:, idx]
        if mode == "normalized":
            a = a / np.sqrt((a**2).sum(axis=1, keepdims=True) + EPS)
            b = b / np.sqrt((b**2).sum(axis=1, keepdims=True) + EPS)
            d = ((a - b) ** 2).sum(axis=1).mean(axis=(1, 2))
        else:
            d = ((a - b) ** 2).mean(axis=(1, 2, 3))
        total = total + d / len(fx)
    return total


@pytest.mark.parametrize("mode", ["normalized", "mse"])
def test_matches_independent_numpy_implementation(mode: str) -> None:
    net = tiny_net()
    backbone = from_module(net, ["1", "3"], preprocessing=IDENTITY, name="tiny").double()
    sel = Selection(model="tiny", channels={"1": np.array([0, 2, 5]), "3": np.array([1, 4])},
                    n_channels={"1": 6, "3": 5}, method="custom")
    metric = PerceptualDistance(backbone, selection=sel, mode=mode, reduction="none", channels_last=False).double()
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 33, 34))
    y = rng.random((2, 3, 33, 34))
    got = metric(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    want = np_distance(np_features(net, x), np_features(net, y), [[0, 2, 5], [1, 4]], mode)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # cached reference features give the same numbers
    ref = metric.reference(torch.from_numpy(y))
    np.testing.assert_allclose(metric(torch.from_numpy(x), ref=ref).numpy(), want, rtol=1e-5)


def test_single_channel_distances_match_numpy() -> None:
    net = tiny_net()
    backbone = from_module(net, ["1", "3"], preprocessing=IDENTITY, name="tiny").double()
    rng = np.random.default_rng(1)
    x, y = rng.random((3, 3, 32, 32)), rng.random((1, 3, 32, 32))
    cd = ChannelDistances(backbone, ["1", "3"], channels_last=False)
    got = cd(torch.from_numpy(x), cd.reference(torch.from_numpy(y)))
    fx, fy = np_features(net, x), np_features(net, y)
    for key, a, b in zip(["1", "3"], fx, fy):
        want = ((a - b) ** 2).mean(axis=(2, 3)) / ((b**2).mean(axis=(2, 3)) + EPS)
        np.testing.assert_allclose(got[key].numpy(), want, rtol=1e-5)


@pytest.fixture(scope="module")
def vgg_metric() -> PerceptualDistance:
    return PerceptualDistance("vgg16", "random", reduction="none")


def test_identity_symmetry_and_reductions(vgg_metric: PerceptualDistance) -> None:
    torch.manual_seed(0)
    x, y = torch.rand(3, 3, 48, 40), torch.rand(3, 3, 48, 40)
    d = vgg_metric(x, y)
    assert d.shape == (3,) and (d > 0).all()
    assert torch.allclose(vgg_metric(x, x), torch.zeros(3), atol=1e-6)
    assert torch.allclose(d, vgg_metric(y, x), rtol=1e-4)
    out = vgg_metric(x, y, per_layer=True, spatial=True)
    assert set(out.per_layer) == {"relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"}
    assert torch.allclose(sum(out.per_layer.values()) / 5, d, rtol=1e-5)
    assert out.spatial.shape == (3, 1, 48, 40)
    assert out.spatial.mean(dim=(1, 2, 3)) == pytest.approx(d, rel=0.2)


def test_functional_twin_matches_module() -> None:
    torch.manual_seed(1)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    m = PerceptualDistance("vgg16", "random", reduction="sum")
    assert perceptual_distance(x, y, weights="random", reduction="sum") == pytest.approx(float(m(x, y)), rel=1e-5)


def test_bf16_is_close_to_fp32() -> None:
    torch.manual_seed(2)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    a = PerceptualDistance("vgg16", "random", reduction="none")(x, y)
    b = PerceptualDistance("vgg16", "random", reduction="none", dtype="bfloat16")(x, y)
    assert torch.allclose(a, b, rtol=0.1)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 33), "same shape"),
        (torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32), "3 channels"),
        (torch.rand(3, 32, 32), torch.rand(3, 32, 32), "N×3×H×W"),
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), "32×32"),
        (torch.rand(1, 3, 32, 32) * 255, torch.rand(1, 3, 32, 32), "divide by 255"),
        (torch.full((1, 3, 32, 32), float("nan")), torch.rand(1, 3, 32, 32), "NaN"),
        (torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8), torch.rand(1, 3, 32, 32), "float"),
    ],
)
def test_bad_inputs_are_clear_errors(vgg_metric: PerceptualDistance, x, y, message: str) -> None:
    with pytest.raises(InputError, match=message):
        vgg_metric(x, y)


def test_selection_for_another_network_is_refused(tmp_path) -> None:
    sel = Selection(model="squeezenet1_1", channels={"relu1_2": np.arange(3)}, n_channels={"relu1_2": 64})
    sel.save(tmp_path / "sel.json")
    with pytest.raises(InputError, match="squeezenet1_1"):
        PerceptualDistance("vgg16", "random", selection=tmp_path / "sel.json")
    sel2 = Selection(model="vgg16", channels={"relu1_2": np.arange(3)}, n_channels={"relu1_2": 32})
    with pytest.raises(InputError, match="64"):
        PerceptualDistance("vgg16", "random", selection=sel2)


def test_selected_channels_only_matter() -> None:
    b = load_backbone("vgg16", "random")
    sel = Selection(model="vgg16", channels={"relu1_2": np.array([3, 7])}, n_channels={"relu1_2": 64},
                    weights={"params_sha256": b.weights_info.params_sha256})
    m = PerceptualDistance(b, selection=sel, mode="mse", reduction="none")
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        f = b.net.features[:4]
        fx, fy = f(b.preprocess(x)), f(b.preprocess(y))
    want = (fx[:, [3, 7]] - fy[:, [3, 7]]).pow(2).mean()
    assert float(m(x, y)) == pytest.approx(float(want), rel=1e-4)


# --- deprecated names and class metadata (issue 20) -------------------------------------------------------------
def test_deprecated_names_still_work_and_warn() -> None:
    import psychofeat.metric as M
    from psychofeat import distance

    net = tiny_net().float()
    backbone = from_module(net, ["1", "3"], preprocessing=IDENTITY, name="tiny")
    with pytest.warns(DeprecationWarning, match="psychofeat.distance.build_selection"):
        old_sel = M.build_selection(backbone, None, ["3"])  # the former positional call
    assert old_sel.channels["3"].tolist() == list(range(5)) and old_sel.layers == ["3"]
    with pytest.warns(DeprecationWarning, match="psychofeat.distance.build_core"):
        core = M.build_core(backbone, None, None, ["1"], "mse", None, EPS, None, None, 0, "cpu", False)
    assert core.mode == "mse" and core.layers == ["1"]
    with pytest.raises(TypeError):  # the new home takes keywords only
        distance.build_core(backbone, None)  # type: ignore[misc]
    with pytest.warns(DeprecationWarning, match="tests/oracles.py"):
        old = M.ChannelDistances(backbone, ["1", "3"], channels_last=False)
    rng = np.random.default_rng(2)
    x, y = torch.from_numpy(rng.random((2, 3, 32, 32))).float(), torch.from_numpy(rng.random((1, 3, 32, 32))).float()
    oracle = ChannelDistances(backbone, ["1", "3"], channels_last=False)
    for k, v in old(x, old.reference(y)).items():
        assert torch.equal(v, oracle(x, oracle.reference(y))[k])


def test_metadata_is_on_the_class() -> None:
    from psychofeat.classic import PSNR, SSIM
    from psychofeat.loss import PerceptualLoss

    assert PerceptualDistance.lower_better and PerceptualLoss.lower_better
    assert not PSNR.lower_better and not SSIM.lower_better
    assert (PerceptualDistance.min_size, SSIM.min_size, PSNR.min_size) == (32, 11, 1)
    m = PerceptualDistance(from_module(tiny_net().float(), ["1"], preprocessing=IDENTITY, name="tiny"))
    assert "lower_better" not in vars(m) and m.lower_better is True
