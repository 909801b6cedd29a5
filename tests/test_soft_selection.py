"""Soft selections: channel weights from the scores (`Selection.select("soft-…")`) inside the shared distance core
and the batched bank. Checked against an independent numpy implementation of the weighted distance, against the
hard selections they must reproduce exactly, and for finite gradients where weights are 0."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import rankdata
from torch import nn

from psychofeat import distance_bank as B
from psychofeat.backbones import IDENTITY, from_module
from psychofeat.errors import InputError
from psychofeat.features import FeatureExtractor
from psychofeat.loss import PerceptualLoss
from psychofeat.metric import PerceptualDistance
from psychofeat.selection import SOFT_METHODS, ChannelWeights, Selection

#: numerically sensitive: CI reruns these under other CPUs' kernels (docs/developing.md, "Every CPU")
pytestmark = pytest.mark.numerics

EPS = 1e-10
N_CH = {"1": 6, "3": 5}


def tiny_backbone() -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, stride=2, padding=1), nn.ReLU())
    net = net.double()
    return net, from_module(net, ["1", "3"], preprocessing=IDENTITY, name="tiny").double()


def scores(pe: dict[str, np.ndarray] | None = None, dead: dict[str, list[int]] | None = None) -> pd.DataFrame:
    """A per-channel table as `psychofeat analyze` writes it, for the two layers of the tiny net."""
    rng = np.random.default_rng(5)
    rows = []
    for layer, n in N_CH.items():
        p = pe[layer] if pe is not None else rng.random(n)
        mu1, mu2 = rng.random(n) * 3, rng.random(n)
        for c in range(n):
            off = dead is not None and c in dead.get(layer, [])
            rows.append({"layer": layer, "channel": c, "pe": 0.0 if off else p[c], "mu1": 0.0 if off else mu1[c],
                         "mu2": 0.0 if off else mu2[c], "unresponsive": off})
    return pd.DataFrame(rows)


def np_soft_distance(fx: list[np.ndarray], fy: list[np.ndarray], weights: list[np.ndarray], mode: str) -> np.ndarray:
    """The weighted distance written out: Σ_m a_m (x_m/n_x − y_m/n_y)², n² = Σ a φ² + ε; mse Σ a δ² / Σ a."""
    total = 0.0
    for a, b, w in zip(fx, fy, weights, strict=True):
        w = w[None, :, None, None]
        if mode == "normalized":
            na = np.sqrt((w * a**2).sum(axis=1, keepdims=True) + EPS)
            nb = np.sqrt((w * b**2).sum(axis=1, keepdims=True) + EPS)
            d = (w * (a / na - b / nb) ** 2).sum(axis=1).mean(axis=(1, 2))
        else:
            d = (w * (a - b) ** 2).sum(axis=1).mean(axis=(1, 2)) / w.sum()
        total = total + d / len(fx)
    return total


def features(net: nn.Module, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        h1 = net[1](net[0](torch.from_numpy(x)))
        h2 = net[3](net[2](h1))
    return [h1.numpy(), h2.numpy()]


def images(n: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.random((n, 3, 33, 34))), torch.from_numpy(rng.random((n, 3, 33, 34)))


def metric(sel: Selection, mode: str, backbone: object) -> PerceptualDistance:
    return PerceptualDistance(backbone, selection=sel, mode=mode, reduction="none", channels_last=False).double()


# ------------------------------------------------------------------------------------------------ the weights
def test_soft_weights_follow_the_scores() -> None:
    base = Selection.from_scores(scores(dead={"1": [2]}), "tiny")
    table = scores(dead={"1": [2]}).set_index(["layer", "channel"])
    for method, col in (("soft-pe", "pe"), ("soft-mu1", "mu1"), ("soft-mu2", "mu2")):
        sel = base.select(method)
        for layer, n in N_CH.items():
            s = table.loc[layer, col].to_numpy()
            np.testing.assert_allclose(sel.channel_weights[layer], s / s.max(), rtol=1e-15)
        assert 2 not in sel.channels["1"] and sel.channels["3"].tolist() == list(range(5))
    rank = base.select("soft-rank").channel_weights["1"]
    pe = table.loc["1", "pe"].to_numpy()
    live = np.array([0, 1, 3, 4, 5])
    np.testing.assert_allclose(rank[live], rankdata(pe[live]) / 5) and rank[2] == 0.0
    # the control: the soft-pe weights of the responsive channels, shuffled among them (seeded)
    pe_w = base.select("soft-pe").channel_weights
    r1, r2, r3 = (base.select("soft-random", seed=s) for s in (1, 1, 2))
    for layer in N_CH:
        assert np.array_equal(r1.channel_weights[layer], r2.channel_weights[layer])
        np.testing.assert_array_equal(np.sort(r1.channel_weights[layer]), np.sort(pe_w[layer]))
    assert r1.channel_weights["1"][2] == 0.0
    assert any(not np.array_equal(r1.channel_weights[k], r3.channel_weights[k]) for k in N_CH)
    assert base.select("soft-pe").label() == "soft-pe" and r1.label() == "soft-random (seed 1)"


def test_soft_selection_json_round_trip_restrict_and_back_to_hard(tmp_path) -> None:
    sel = Selection.from_scores(scores(), "tiny").select("soft-mu1")
    back = Selection.load(sel.save(tmp_path / "s.json"))
    assert back.method == "soft-mu1" and back.is_soft
    for k in N_CH:
        np.testing.assert_array_equal(back.channel_weights[k], sel.channel_weights[k])
        np.testing.assert_array_equal(back.mu2[k], sel.mu2[k])
    assert back.restrict(["3"]).channel_weights.keys() == {"3"}
    hard = back.select("top", 0.5)
    assert not hard.is_soft and hard.weights_of("1") is None and "channel_weights" not in hard.to_dict()


def test_soft_selection_errors() -> None:
    no_mu = Selection.from_scores(scores().drop(columns=["mu1", "mu2"]), "tiny")
    with pytest.raises(InputError, match="mu1"):
        no_mu.select("soft-mu1")
    silent = Selection.from_scores(scores(dead={"3": list(range(5))}), "tiny")
    with pytest.raises(InputError, match="weight 0"):
        silent.select("soft-pe")
    with pytest.raises(InputError, match="non-negative"):
        no_mu.with_weights({"1": -np.ones(6), "3": np.ones(5)})
    assert set(SOFT_METHODS) == {"soft-pe", "soft-rank", "soft-mu1", "soft-mu2", "soft-random"}


# --------------------------------------------------------------------------------- the distance (shared core)
@pytest.mark.parametrize("mode", ["normalized", "mse"])
def test_soft_distance_matches_independent_numpy(mode: str) -> None:
    net, backbone = tiny_backbone()
    sel = Selection.from_scores(scores(dead={"1": [2]}), "tiny").select("soft-pe")
    x, y = images()
    got = metric(sel, mode, backbone)(x, y).numpy()
    want = np_soft_distance(features(net, x.numpy()), features(net, y.numpy()),
                            [sel.channel_weights["1"], sel.channel_weights["3"]], mode)
    np.testing.assert_allclose(got, want, rtol=1e-6)  # the core computes in float32
    m = metric(sel, mode, backbone)  # cached reference features: the same numbers
    np.testing.assert_allclose(m(x, ref=m.reference(y)).numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("mode", ["normalized", "mse"])
def test_equal_scores_reproduce_all_channels_exactly(mode: str) -> None:
    _, backbone = tiny_backbone()
    equal = Selection.from_scores(scores(pe={k: np.full(n, 0.37) for k, n in N_CH.items()}), "tiny")
    x, y = images()
    d_all = metric(equal.select("all"), mode, backbone)(x, y)
    for soft in (equal.select("soft-pe"), equal.select("soft-rank"),
                 equal.with_weights({k: np.full(n, 2.5) for k, n in N_CH.items()})):
        assert torch.equal(metric(soft, mode, backbone)(x, y), d_all)


@pytest.mark.parametrize("mode", ["normalized", "mse"])
def test_zero_one_weights_reproduce_the_hard_selection_exactly(mode: str) -> None:
    _, backbone = tiny_backbone()
    base = Selection.from_scores(scores(), "tiny")
    subset = {"1": np.array([0, 2, 5]), "3": np.array([1, 4])}
    hard = Selection(model="tiny", channels=subset, n_channels=dict(N_CH), method="custom")
    mask = {k: np.isin(np.arange(n), subset[k]).astype(float) for k, n in N_CH.items()}
    soft = base.with_weights(mask)
    x, y = images()
    assert torch.equal(metric(soft, mode, backbone)(x, y), metric(hard, mode, backbone)(x, y))


def test_gradients_are_finite_with_zero_weights() -> None:
    _, backbone = tiny_backbone()
    w = {"1": np.array([0.0, 0.5, 0.0, 1.0, 0.2, 0.0]), "3": np.array([0.0, 0.0, 1.0, 0.3, 0.0])}
    soft = Selection.from_scores(scores(), "tiny").with_weights(w)
    for mode in ("normalized", "mse"):
        loss = PerceptualLoss(backbone, selection=soft, mode=mode, channels_last=False).double()
        for x0 in (images()[0], torch.zeros(2, 3, 33, 34, dtype=torch.float64)):  # constant: all-zero features
            x = x0.clone().requires_grad_(True)
            loss(x, images(seed=1)[1]).backward()
            assert x.grad is not None and torch.isfinite(x.grad).all(), mode


def test_metric_accepts_which_soft() -> None:
    _, backbone = tiny_backbone()
    base = Selection.from_scores(scores(), "tiny")
    m = PerceptualDistance(backbone, selection=base, which="soft-rank", reduction="none", channels_last=False)
    assert m.selection.method == "soft-rank" and m.selection.is_soft


# ------------------------------------------------------------------------------------------------ the bank
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", ["normalized", "mse"])
def test_bank_agrees_with_the_shared_core_for_soft_selections(mode: str, dtype: torch.dtype) -> None:
    _, backbone = tiny_backbone()
    base = Selection.from_scores(scores(dead={"1": [2]}), "tiny")
    sels = {m: base.select(m, seed=3) for m in SOFT_METHODS}
    sels["top"] = base.select("top", 0.5)
    sels["soft-pe-as-sets"] = sels["soft-pe"].channel_sets()  # the same weights as a mapping: one column
    bank = B.SelectionBank(sels, ["1", "3"], N_CH, mode, dtype=dtype)
    assert bank.column["soft-pe-as-sets"] == bank.column["soft-pe"] and bank.n_columns == len(SOFT_METHODS) + 1
    x, y = images(n=1, seed=2)
    ext = FeatureExtractor(backbone, ["1", "3"])
    with torch.no_grad():
        fx, fy = ext(x), ext(y)
    per_layer, _ = bank.compare(fx, bank.reference(fy))
    combined = bank.combine(per_layer[None])[0]
    for name, sel in sels.items():  # the metric computes in float32
        if isinstance(sel, Selection):
            want = metric(sel, mode, backbone)(x, y).numpy()[0]
            np.testing.assert_allclose(combined[bank.column[name]], want, rtol=1e-5, err_msg=name)
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    direct = B.direct_distances(fx, fy, sels, mode, dtype=torch.float64)
    for name in sels:
        np.testing.assert_allclose(per_layer[:, bank.column[name]], direct[name], rtol=rtol, err_msg=name)


def test_bank_refuses_bad_weights() -> None:
    with pytest.raises(InputError, match="positive weight"):
        B.SelectionBank({"s": {"a": ChannelWeights(np.array([0, 1]), np.array([1.0, 0.0]))}}, ["a"], {"a": 4})


# ------------------------------------------------------------------- the variants experiment's controls and rule
def test_shuffled_control_keeps_the_weights_and_the_silent_channels() -> None:
    from psychofeat.experiments.variants import shuffled

    soft = Selection.from_scores(scores(dead={"1": [2]}), "tiny").select("soft-mu2")
    a, b = shuffled(soft, 0), shuffled(soft, 0)
    for layer in N_CH:
        np.testing.assert_array_equal(a.channel_weights[layer], b.channel_weights[layer])
        np.testing.assert_array_equal(np.sort(a.channel_weights[layer]), np.sort(soft.channel_weights[layer]))
    assert a.channel_weights["1"][2] == 0.0 and a.seed == 0


def test_paired_differences_and_gates_on_synthetic_scores() -> None:
    """A variant that ranks the pairs as the humans do passes gate A against a noisy reference; the reference
    itself, renamed as a variant, does not (Δ = 0 on every resample)."""
    from psychofeat.experiments.variants import Column, paired_differences, srcc_table
    from psychofeat.experiments.variants_decide import gates

    rng = np.random.default_rng(0)
    human = rng.random(80)
    noisy = human + rng.normal(0, 0.5, 80)
    values = {"good": human + rng.normal(0, 0.01, 80), "same": noisy.copy(), "all": noisy,
              **{f"random-k/s{s}": noisy + rng.normal(0, 0.5, 80) for s in range(3)}}
    cols = [Column("good", "variant", "c", "top"), Column("same", "variant", "c", "top"), Column("all", "reference"),
            *[Column(f"random-k/s{s}", "random-k", seed=s) for s in range(3)]]
    sel = Selection.from_scores(scores(), "tiny")
    table, boot, _ = srcc_table(values, cols, human, "dmos", {c.name: sel for c in cols}, 2000, 0)
    diffs = paired_differences(table, boot, cols, n_tests=2)
    g = gates(diffs, None).set_index("variant")
    assert g.loc["good", "A"] and g.loc["good", "B"] and not g.loc["good", "C"]  # no detection: C cannot pass
    assert not g.loc["same", "A"] and g.loc["same", "d_all"] == 0.0
    assert not g["qualifies"].any()


def test_detection_soft_metrics_carry_the_weights() -> None:
    from psychofeat.hvs.detection import soft_selection_metrics

    base = Selection.from_scores(scores(), "tiny")
    metrics = {m.name: m for m in soft_selection_metrics(base, "tiny")}
    assert set(metrics) == {"tiny/pe-soft-pe", "tiny/pe-soft-rank", "tiny/pe-soft-mu1", "tiny/pe-soft-mu2"}
    cw = metrics["tiny/pe-soft-mu1"].channels["1"]
    np.testing.assert_array_equal(cw.weights, base.select("soft-mu1").channel_weights["1"][cw.indices])
