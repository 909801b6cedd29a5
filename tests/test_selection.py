"""Selections: top/bottom/random from PE, exclusion of unresponsive channels, JSON round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from psychofeat.errors import InputError
from psychofeat.selection import Selection, parse_channel


def scores() -> pd.DataFrame:
    pe_a = np.array([0.9, 0.1, 0.5, 0.0, 0.7, 0.3, 0.0, 0.2])
    pe_b = np.array([0.2, 0.4, 0.6, 0.8])
    return pd.DataFrame({
        "layer": ["a"] * 8 + ["b"] * 4,
        "channel": list(range(8)) + list(range(4)),
        "pe": np.concatenate([pe_a, pe_b]),
        "unresponsive": [False, False, False, True, False, False, True, False] + [False] * 4,
    })


def test_top_bottom_random() -> None:
    sel = Selection.from_scores(scores(), "net", fraction=0.25)
    assert sel.channels["a"].tolist() == [0, 4] and sel.channels["b"].tolist() == [3]
    bottom = sel.bottom(0.25)
    assert bottom.channels["a"].tolist() == [1, 7]  # unresponsive channels 3 and 6 are not in the pool
    assert bottom.channels["b"].tolist() == [0]
    r1, r2, r3 = sel.random(0.5, seed=1), sel.random(0.5, seed=1), sel.random(0.5, seed=2)
    assert all(np.array_equal(r1.channels[k], r2.channels[k]) for k in r1.channels)
    assert not all(np.array_equal(r1.channels[k], r3.channels[k]) for k in r1.channels)
    assert 3 not in r1.channels["a"] and 6 not in r1.channels["a"] and len(r1.channels["a"]) == 4
    assert sel.select("all").n_selected() == 12
    assert sel.names()[:2] == ["a:0", "a:4"]


def test_json_round_trip(tmp_path) -> None:
    sel = Selection.from_scores(scores(), "net", {"source": "x", "params_sha256": "abc"}, fraction=0.5)
    sel.save(tmp_path / "s.json")
    back = Selection.load(tmp_path / "s.json")
    assert back.model == "net" and back.fraction == 0.5 and back.weights["params_sha256"] == "abc"
    assert all(np.array_equal(back.channels[k], sel.channels[k]) for k in sel.channels)
    assert np.array_equal(back.unresponsive["a"], sel.unresponsive["a"])
    assert back.bottom(0.25).channels["a"].tolist() == [1, 7]


def test_errors(tmp_path) -> None:
    sel = Selection.from_scores(scores(), "net")
    with pytest.raises(InputError, match="fraction"):
        sel.top(0)
    with pytest.raises(InputError, match="method"):
        sel.select("best", 0.2)
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(InputError, match="not a psychofeat selection"):
        Selection.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match="layer:channel"):
        parse_channel("relu3_3")
    assert parse_channel("relu3_3:17") == ("relu3_3", 17)
