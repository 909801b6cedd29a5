"""The batched selection evaluator (`psychofeat.distance_bank`) against the shared core and against the definition
evaluated in extended precision: both dtypes, both modes, mixed modes and layer sets, the exact zeros of ReLU
features, threshold-level differences, and the regimes where a sum identity can lose precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psychofeat import distance_bank as B
from psychofeat.distance import channel_distances
from psychofeat.errors import InputError
from psychofeat.selection import Selection

#: numerically sensitive: CI reruns these under other CPUs' kernels (docs/developing.md, "Every CPU")
pytestmark = pytest.mark.numerics

DTYPES = [torch.float32, torch.float64]


def _relu_features(rng: np.random.Generator, c: int, h: int, w: int, zero_frac: float) -> torch.Tensor:
    """1×C×H×W channels-last ReLU features with `zero_frac` of the positions silent in every channel."""
    f = torch.from_numpy(rng.standard_normal((1, c, h, w)).astype(np.float32)).relu()
    f[:, :, rng.random((h, w)) < zero_frac] = 0.0
    return f.contiguous(memory_format=torch.channels_last)


def _truth(x: torch.Tensor, y: torch.Tensor, mode: str, eps: float = 1e-10) -> tuple[float, float]:
    """The distance of SCIENCE.md for 1×C×H×W maps of the selected channels in extended precision (numpy
    longdouble: the float64 definition itself loses ~|y|/|δ| of relative precision for tiny differences), and
    the size of the identity's terms, mean(Sdd/(n_x n_y)) (the distance if δ were orthogonal to x and y)."""
    a = x[0].double().numpy().astype(np.longdouble)
    b = y[0].double().numpy().astype(np.longdouble)
    if mode == "mse":
        d = float(((a - b) ** 2).mean())
        return d, d
    na, nb = np.sqrt((a * a).sum(0) + eps), np.sqrt((b * b).sum(0) + eps)
    return float(((a / na - b / nb) ** 2).sum(0).mean()), float((((a - b) ** 2).sum(0) / (na * nb)).mean())


def _features(rng: np.random.Generator) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Layer a: independent x and y with silent positions; b: nearly parallel (y = 1.5·x + a little)."""
    fx = {"a": _relu_features(rng, 16, 9, 11, 0.2), "b": _relu_features(rng, 40, 5, 6, 0.0)}
    fy = {"a": _relu_features(rng, 16, 9, 11, 0.2), "b": fx["b"] * 1.5 + 0.01 * _relu_features(rng, 40, 5, 6, 0.0)}
    return fx, fy


def _selections(rng: np.random.Generator, n_ch: dict[str, int]) -> dict[str, Selection]:
    sels = {}
    for i, size in enumerate([1, 2, 5, 16]):  # 1-2 channels: many positions where x or y alone is all zero
        ch = {"a": np.sort(rng.choice(16, size, replace=False)),
              "b": np.sort(rng.choice(40, min(40, 3 * size), replace=False))}
        sels[f"s{i}"] = Selection(model="m", channels=ch, n_channels=n_ch)
    sels["dup"] = sels["s3"]
    return sels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["normalized", "mse"])
def test_bank_equals_definition_and_shared_core(mode: str, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(0)
    n_ch = {"a": 16, "b": 40}
    fx, fy = _features(rng)
    sels = _selections(rng, n_ch)
    bank = B.SelectionBank(sels, ["a", "b"], n_ch, mode, dtype=dtype)
    assert bank.n_columns == 4 and bank.column["dup"] == bank.column["s3"]
    got, chans = bank.compare(fx, bank.reference(fy))
    direct = B.direct_distances(fx, fy, sels, mode, dtype=dtype)
    u = torch.finfo(dtype).eps
    for name, sel in sels.items():
        for li, k in enumerate(["a", "b"]):
            idx = torch.as_tensor(sel.channels[k])
            truth, scale = _truth(fx[k].index_select(1, idx), fy[k].index_select(1, idx), mode)
            # a few u of the terms' size; layer b (y ≈ 1.5·x, nearly parallel) is where that exceeds u·truth
            assert abs(got[li, bank.column[name]] - truth) <= 8 * u * (scale + truth), (name, k)
            # the shared core itself, for comparison (its own float32 rounding is of the same order)
            assert abs(direct[name][li] - truth) <= 64 * u * (scale + truth), (name, k)
    for k in n_ch:
        np.testing.assert_allclose(chans[k], channel_distances(fx[k], fy[k])[0].numpy(), rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mixed_modes_and_layer_sets(dtype: torch.dtype) -> None:
    """Selections with their own layers and modes, combined with weights 1/#layers (the detection metrics)."""
    rng = np.random.default_rng(1)
    n_ch = {"a": 16, "b": 40}
    fx, fy = _features(rng)
    a5 = np.arange(5)
    sets = {
        "both": {"a": a5, "b": None},
        "both-mse": {"a": a5, "b": None},
        "a-only": {"a": None},
        "b-only": {"b": np.arange(0, 40, 3)},
    }
    modes = {"both": "normalized", "both-mse": "mse", "a-only": "normalized", "b-only": "mse"}
    bank = B.SelectionBank(sets, ["a", "b"], n_ch, modes, dtype=dtype)
    assert bank.n_columns == 4  # same channels in another mode: another column
    with pytest.raises(InputError, match="mixes distance modes"):
        _ = bank.mode
    per_layer, _ = bank.compare(fx, bank.reference(fy))
    assert np.isnan(per_layer[1, bank.column["a-only"]]) and np.isnan(per_layer[0, bank.column["b-only"]])
    combined = bank.combine(per_layer[None])[0]
    direct = B.direct_distances(fx, fy, sets, modes, dtype=torch.float64)
    for name in sets:
        np.testing.assert_allclose(combined[bank.column[name]], direct[name].mean(), rtol=1e-6)
    assert bank.weights[:, bank.column["both"]].tolist() == [0.5, 0.5]


def test_results_do_not_depend_on_the_position_blocks() -> None:
    """Near-tied images must not swap ranks because of how positions were blocked (float64 accumulation)."""
    rng = np.random.default_rng(2)
    fx, fy = _relu_features(rng, 32, 30, 40, 0.1), _relu_features(rng, 32, 30, 40, 0.1)
    sels = {f"s{i}": Selection(model="m", channels={"a": np.sort(rng.choice(32, 8, replace=False))},
                               n_channels={"a": 32}) for i in range(5)}
    bank = B.SelectionBank(sels, ["a"], {"a": 32})
    results = []
    for block in (64, 1000, 1200):
        bank.block = block
        results.append(bank.compare({"a": fx}, bank.reference({"a": fy})))
    for per_layer, chans in results[1:]:
        np.testing.assert_allclose(per_layer, results[0][0], rtol=1e-12)
        np.testing.assert_allclose(chans["a"], results[0][1]["a"], rtol=1e-12)


# ------------------------------------------------------------------------------------------------ the identity
def _sums(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    d = x - y
    return (d * d).sum(-1), (d * y).sum(-1), (x * x).sum(-1), (y * y).sum(-1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_distance_from_sums_exact_cases(dtype: torch.dtype) -> None:
    eps = 1e-10
    y = torch.tensor([3.0, 4.0], dtype=dtype)

    def d(x: torch.Tensor, yy: torch.Tensor = y) -> float:
        return float(B.distance_from_sums(*_sums(x.to(dtype), yy), eps))

    u = torch.finfo(dtype).eps
    assert d(torch.zeros(2)) == pytest.approx(25 / (25 + eps), rel=u)  # x_S = 0 (ReLU): x̂ = 0, d = ‖ŷ‖²
    assert d(torch.tensor([3.0, 4.0]), torch.zeros(2, dtype=dtype)) == pytest.approx(25 / (25 + eps), rel=u)
    assert d(torch.zeros(2), torch.zeros(2, dtype=dtype)) == 0.0  # both silent
    assert d(2 * y) == pytest.approx(0.0, abs=1e-12)  # parallel
    assert d(torch.tensor([4.0, -3.0])) == pytest.approx(2.0, rel=1e-6)  # orthogonal
    assert d(-y) == pytest.approx(4.0, rel=1e-6)  # opposite
    assert d(torch.tensor([1.0, 0.0])) == pytest.approx(
        float(((torch.tensor([1.0, 0.0]) - y / 5) ** 2).sum()), rel=1e-6
    )


def _errors(x: np.ndarray, y: np.ndarray, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of positions × channels: |error| of `distance_from_sums` in `dtype` against extended precision,
    the true distance, the size of the identity's terms Sdd/(n_x n_y), and √(Syy/Sxx) (ε inside)."""
    xt, yt = torch.tensor(np.ascontiguousarray(x), dtype=dtype), torch.tensor(y, dtype=dtype)
    sums = _sums(xt, yt)
    got = B.distance_from_sums(*sums, 1e-10).double().numpy()
    a, b = xt.double().numpy().astype(np.longdouble), yt.double().numpy().astype(np.longdouble)
    na = np.sqrt((a * a).sum(1, keepdims=True) + 1e-10)
    nb = np.sqrt((b * b).sum(1, keepdims=True) + 1e-10)
    truth = ((a / na - b / nb) ** 2).sum(1).astype(np.float64)
    sdd, _, sxx, syy = (v.double().numpy() + 1e-10 for v in sums)
    return np.abs(got - truth), truth, sdd / np.sqrt(sxx * syy), np.sqrt(syy / sxx)


@pytest.mark.parametrize("dtype", DTYPES)
def test_distance_from_sums_precision(dtype: torch.dtype) -> None:
    """Per position, against extended precision: within ~u·√(Syy/Sxx) of 1 everywhere (silent, tiny, generic,
    parallel x), exact for silent x, and a few u of the terms' size Sdd/(n_x n_y) for threshold-level
    differences (a form in n_x − n_y computed from the norms loses |y|/|δ| more: 1e-3 relative in float32)."""
    rng = np.random.default_rng(3)
    u = torch.finfo(dtype).eps
    y = np.maximum(rng.standard_normal((3000, 12)), 0) * 10  # ReLU-like: some rows silent, some with one channel
    for x in (1e-3 * y[::-1], np.maximum(rng.standard_normal(y.shape), 0) * 10, np.zeros_like(y), y * 1.5):
        err, _, _, ratio = _errors(x, y, dtype)
        assert np.all(err <= 8 * u * (1 + ratio))
    assert np.all(_errors(np.zeros_like(y), y, dtype)[0] <= 4 * u)  # x silent: Syy/(Syy + ε), to rounding
    # threshold-level differences of features with no silent channel (a row with one active channel is parallel)
    y = np.abs(y) + 1.0
    err, truth, scale, _ = _errors(y * (1 + 1e-4 * rng.standard_normal(y.shape)), y, dtype)
    assert truth.max() < 1e-7 and np.all(err <= 32 * u * scale)
    assert np.mean(err / truth) < 4 * u  # typically a few u of the distance itself


# ------------------------------------------------------------------------------------------------- bad input
def test_bad_input_is_refused() -> None:
    sel = {"a": np.arange(3)}
    with pytest.raises(InputError, match="mode"):
        B.SelectionBank({"s": sel}, ["a"], {"a": 4}, "l1")
    with pytest.raises(InputError, match="no channels"):
        B.SelectionBank({"s": {"a": []}}, ["a"], {"a": 4})
    with pytest.raises(InputError, match=r"\[0, 4\)"):
        B.SelectionBank({"s": {"a": [4]}}, ["a"], {"a": 4})
    with pytest.raises(InputError, match="layers"):
        B.SelectionBank({"s": {"b": [0]}}, ["a"], {"a": 4})
    with pytest.raises(InputError, match="float32 or float64"):
        B.SelectionBank({"s": sel}, ["a"], {"a": 4}, dtype=torch.float16)
    with pytest.raises(InputError, match="no selections"):
        B.SelectionBank({}, ["a"], {"a": 4})
    bank = B.SelectionBank({"s": sel}, ["a"], {"a": 4})
    ref = bank.reference({"a": torch.rand(1, 4, 3, 3)})
    with pytest.raises(InputError, match="reference"):
        bank.compare({"a": torch.rand(1, 4, 3, 4)}, ref)
