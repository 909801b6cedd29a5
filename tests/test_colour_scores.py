"""Colour scores recover the known colour tuning of synthetic units (issue 22's acceptance test): a red–green
difference filter scores high on RG and ~0 on the achromatic direction, a luminance filter the reverse, an
S-cone filter goes to YV; and the colour-aware PE / selection follow their definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from synthetic_nets import dog_kernel
from torch import nn

from psychofeat.backbones.base import IDENTITY, Backbone, WeightsInfo
from psychofeat.colour import SRGB_TO_LMS, ColourProtocol
from psychofeat.colour_scores import (
    COLOUR_COLUMNS,
    ColourConfig,
    colour_scores,
    colour_selection,
    mechanism_weights,
    score_colour_layer,
)
from psychofeat.csf.castle import mechanism_sensitivity
from psychofeat.display import LUMINANCE_WEIGHTS, srgb_decode
from psychofeat.errors import InputError
from psychofeat.scores import frequency_scores
from psychofeat.selection import Selection
from psychofeat.stimuli import ProbeProtocol

PROTOCOL = ProbeProtocol(size=64, ppd=16.0, n_freq=8, n_phase=4, n_orient_freq=4)
RG, LUM, S_CONE, RG_WEAK_LUM = 0, 1, 2, 3


class LinearLightUnits(nn.Module):
    """Decode sRGB to linear light, weight R, G, B per channel, a centre-surround (DoG) filter, then ReLU."""

    def __init__(self, colour_weights: np.ndarray, k: int = 15) -> None:
        super().__init__()
        w = torch.as_tensor(colour_weights, dtype=torch.float32)  # C × 3
        spatial = dog_kernel(k, 1.0, 2.5).float() * 10
        self.conv = nn.Conv2d(3, w.shape[0], k, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(w[:, :, None, None] * spatial[None, None])
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(srgb_decode(x)))


def units() -> Backbone:
    lum = LUMINANCE_WEIGHTS
    weights = np.stack([
        np.array([1.0, -1.0, 0.0]),  # RG: a red-minus-green difference filter
        lum,  # LUM: the display's luminance
        SRGB_TO_LMS[2] / SRGB_TO_LMS[2].sum(),  # S_CONE: the S cones
        np.array([1.0, -1.0, 0.0]) + 0.05 * lum / lum.sum(),  # RG_WEAK_LUM: mostly RG, a little luminance
    ])
    return Backbone("colour-units", LinearLightUnits(weights), {"conv": "conv", "relu": "relu"}, IDENTITY,
                    WeightsInfo("synthetic", "colour-opponent and luminance units"), default_layers=["relu"])


def today(n: int = 4, mu2: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame({"layer": "relu", "channel": np.arange(n), "mu2": mu2, "unresponsive": False})


@pytest.fixture(scope="module")
def result():
    cfg = ColourConfig(colour=ColourProtocol(protocol=PROTOCOL))
    return colour_scores(units(), today(), config=cfg, progress=False)


def test_rg_difference_unit_scores_high_on_rg_and_zero_on_achromatic(result) -> None:
    r = result.table.set_index("channel").loc[RG]
    assert r["peak_ach"] < 1e-6 * r["peak_rg"] and r["share_ach"] < 1e-10  # R − G of a grey image: 0 + rounding
    assert r["mu1_ach"] == 0.0  # below the unresponsive threshold along ach
    assert r["share_rg"] > 0.9 and r["colour_index"] == pytest.approx(1.0)
    assert r["mu1_rg"] > 0 and r["peak_rg"] > 0


def test_luminance_unit_scores_high_on_achromatic_and_about_zero_on_rg(result) -> None:
    t = result.table.set_index("channel")
    r = t.loc[LUM]
    assert r["share_ach"] > 1 - 1e-6 and r["colour_index"] < 1e-6
    assert r["peak_rg"] < 1e-5 * r["peak_ach"] and r["peak_yv"] < 1e-5 * r["peak_ach"]  # isoluminant: float noise
    assert r["mu1_rg"] == 0.0 and r["mu1_yv"] == 0.0  # below the unresponsive threshold along rg and yv
    assert r["mu1_ach"] > 0
    assert r["mu1_colour"] == pytest.approx(r["mu1_ach"], rel=1e-6)  # one direction only: its own mu1


def test_s_cone_unit_prefers_yellow_violet(result) -> None:
    r = result.table.set_index("channel").loc[S_CONE]
    assert r["share_yv"] > max(r["share_rg"], r["share_ach"])
    assert r["colour_index"] > 0.5


def test_colour_index_orders_the_units_by_how_chromatic_they_are(result) -> None:
    ci = result.table.set_index("channel")["colour_index"]
    assert ci[LUM] < ci[RG_WEAK_LUM] < ci[RG]
    assert 0.0 < ci[RG_WEAK_LUM] < 1.0


def test_table_is_keyed_like_the_scores_table(result) -> None:
    t = result.table
    assert list(t.columns) == ["layer", "channel", *COLOUR_COLUMNS]
    assert list(t["channel"]) == [0, 1, 2, 3] and set(t["layer"]) == {"relu"}
    assert result.info["n_stimuli"] == 1 + 3 * 8 * 4
    assert result.curves["relu/rg_response"].shape == (4, 8)


def test_mu1_per_direction_uses_the_matching_castle_mechanism(result) -> None:
    cp = ColourProtocol(protocol=PROTOCOL)
    w = mechanism_weights(cp)
    g = PROTOCOL.mid_frequencies
    for d in ("ach", "rg", "yv"):
        np.testing.assert_allclose(w[d], mechanism_sensitivity(d, g, np.full_like(g, 100.0),
                                                               np.full_like(g, PROTOCOL.area_deg2)))
    R = result.curves["relu/rg_response"].T
    expected = frequency_scores(PROTOCOL.frequencies, R, w["rg"]).mu1
    np.testing.assert_allclose(result.table["mu1_rg"], expected, rtol=1e-12)
    assert not np.allclose(w["rg"] / w["rg"].sum(), w["ach"] / w["ach"].sum())  # a different weighting


def test_colour_pe_combination_on_known_numbers() -> None:
    """Two directions with responses of known energy and shape: shares, mu1_colour and both PEs by hand."""
    f = np.geomspace(1.0, 8.0, 4)
    base = np.array([[1.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 0.0]])  # channel 0 tuned, channel 1 silent
    resp = {"ach": base.copy(), "rg": 2.0 * base[::-1].copy(), "yv": np.zeros((4, 2))}
    resp["ach"][:, 1] = [1.0, 1.0, 1.0, 1.0]
    w = {d: np.ones(3) for d in resp}
    mu2 = np.array([0.5, 0.8])
    t = score_colour_layer("L", f, resp, w, mu2, np.array([False, False])).set_index("channel")
    e_ach, e_rg = np.mean(base[:, 0] ** 2), np.mean((2 * base[::-1, 0]) ** 2)
    assert t.loc[0, "share_rg"] == pytest.approx(e_rg / (e_ach + e_rg))
    mu1 = {d: frequency_scores(f, resp[d], w[d]).mu1 for d in resp}
    s_a, s_r = e_ach / (e_ach + e_rg), e_rg / (e_ach + e_rg)
    m0 = np.sqrt(s_a * mu1["ach"][0] ** 2 + s_r * mu1["rg"][0] ** 2)
    assert t.loc[0, "mu1_colour"] == pytest.approx(m0)
    assert t.loc[1, "colour_index"] == 0.0 and t.loc[1, "mu1_colour"] == pytest.approx(mu1["ach"][1])
    top = max(m0, mu1["ach"][1])
    assert t.loc[0, "pe_colour"] == pytest.approx(m0 / top * 0.5)
    assert t.loc[1, "pe_achprot"] == pytest.approx(mu1["ach"][1] / mu1["ach"].max() * 0.8)
    dead = score_colour_layer("L", f, resp, w, mu2, np.array([True, False]))
    assert dead.loc[0, "pe_colour"] == 0.0 and dead.loc[0, "pe_achprot"] == 0.0  # unresponsive today: PE 0


def test_colour_selection_ranks_by_the_column_and_keeps_todays_pool() -> None:
    rng = np.random.default_rng(0)
    scores = pd.DataFrame({"layer": "a", "channel": np.arange(12), "pe": rng.random(12),
                           "unresponsive": np.arange(12) == 3})
    base = Selection.from_scores(scores, "m", {"source": "x"})
    table = pd.DataFrame({"layer": "a", "channel": np.arange(12), "pe_colour": np.arange(12.0)})
    sel = colour_selection(base, table, "pe_colour", "top", 0.25)
    np.testing.assert_array_equal(sel.channels["a"], [9, 10, 11])
    assert sel.provenance["ranked_by"] == "pe_colour" and sel.weights == {"source": "x"}
    np.testing.assert_array_equal(sel.unresponsive["a"], base.unresponsive["a"])
    r_base, r_col = base.select("random", 0.25, 7), sel.select("random", 0.25, 7)
    np.testing.assert_array_equal(r_base.channels["a"], r_col.channels["a"])  # the same random-k draws
    with pytest.raises(InputError, match="no column"):
        colour_selection(base, table, "pe_nope")


def test_scores_table_must_match_the_network() -> None:
    cfg = ColourConfig(colour=ColourProtocol(protocol=PROTOCOL))
    with pytest.raises(InputError, match="channels 0..3"):
        colour_scores(units(), today(n=3), config=cfg, progress=False)


def test_analyze_colour_adds_the_columns_and_keeps_the_selection() -> None:
    """`analyze --colour` (AnalysisConfig.colour): the colour columns join today's table row for row, the selection
    still ranks by today's PE (the pre-registered rule kept the default), and an achromatic analysis records the same
    config as before the option existed."""
    from psychofeat.analysis import AnalysisConfig, analyze
    from psychofeat.backbones import load_backbone
    from psychofeat.colour_scores import COLOUR_COLUMNS

    bb = load_backbone("vgg16", "random:0")
    protocol = ProbeProtocol(size=48, ppd=24.0, f_min=1.0, n_freq=6, n_orient=4, n_phase=2, n_orient_freq=2)
    plain = analyze(bb, ["relu1_2"], AnalysisConfig(protocol=protocol), progress=False)
    coloured = analyze(bb, ["relu1_2"], AnalysisConfig(protocol=protocol, colour=True), progress=False)
    assert "colour" not in plain.info["config"] and coloured.info["config"]["colour"] is True
    assert set(COLOUR_COLUMNS) <= set(coloured.scores.columns)
    pd.testing.assert_frame_equal(coloured.scores[plain.scores.columns], plain.scores)
    assert coloured.selection.channels["relu1_2"].tolist() == plain.selection.channels["relu1_2"].tolist()
    assert coloured.info["n_stimuli"] == plain.info["n_stimuli"] + 1 + 3 * 6 * 2
    assert any(k.startswith("colour/") for k in coloured.curves)
