"""`psychofeat compare`: depth fractions, per-layer summaries and tests on known data; a small end-to-end run."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from psychofeat.backbones import squeezenet as sq
from psychofeat.backbones.vgg import VGG16Trunk, layer_paths
from psychofeat.cli import main
from psychofeat.cli.commands.compare import parse_layers_per_model
from psychofeat.errors import InputError
from psychofeat.experiments.compare import CompareConfig, depth_fractions, pretrained_vs_controls, summarize


def test_depth_fraction_counts_convolutions() -> None:
    vgg = depth_fractions(VGG16Trunk(), {k: layer_paths()[k] for k in ("relu1_1", "pool1", "relu5_3")})
    assert vgg == {"relu1_1": 1 / 13, "pool1": 2 / 13, "relu5_3": 1.0}
    # a Fire module contains its three convolutions
    squeeze = depth_fractions(
        sq.SqueezeNet11(), {"relu1": "features.1", "fire2": "features.3", "conv10": "classifier.1"}
    )
    assert squeeze == {"relu1": 1 / 26, "fire2": 4 / 26, "conv10": 1.0}


def _scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for weights, shift in (("pretrained", 0.3), ("random", 0.0)):
        pe = np.clip(rng.uniform(0, 0.4, 200) + shift, 0, 1)
        rows.append(pd.DataFrame({"network": "net", "weights": weights, "layer": "l1", "depth_fraction": 0.5,
                                  "pe": pe, "unresponsive": np.arange(200) < (20 if weights == "random" else 0)}))
    return pd.concat(rows, ignore_index=True)


def test_summary_and_tests_on_known_distributions() -> None:
    scores = _scores()
    table = summarize(scores, reference_median=0.3)
    pre = table[table["weights"] == "pretrained"].iloc[0]
    ref = scores[scores["weights"] == "pretrained"]["pe"]
    assert pre["n_channels"] == 200 and pre["pe_median"] == pytest.approx(np.median(ref))
    assert pre["pe_q25"] == pytest.approx(np.quantile(ref, 0.25))
    assert pre["frac_above_vgg16_median"] == pytest.approx(np.mean(ref > 0.3))
    assert table[table["weights"] == "random"].iloc[0]["frac_unresponsive"] == pytest.approx(0.1)
    tests = pretrained_vs_controls(scores)
    assert tests.iloc[0]["p_pretrained_gt_random"] < 1e-10
    flipped = scores.assign(weights=scores["weights"].map({"pretrained": "random", "random": "pretrained"}))
    assert pretrained_vs_controls(flipped).iloc[0]["p_pretrained_gt_random"] > 0.99


def test_option_parsing_and_validation() -> None:
    assert parse_layers_per_model("vgg16=relu1_2,relu3_3; squeezenet1_1=fire2") == {
        "vgg16": ["relu1_2", "relu3_3"], "squeezenet1_1": ["fire2"]}  # fmt: skip
    with pytest.raises(InputError, match="MODEL=layer1,layer2"):
        parse_layers_per_model("vgg16")
    with pytest.raises(InputError, match="unknown control"):
        CompareConfig(controls=("permuted",))
    with pytest.raises(InputError, match="not in --models"):
        CompareConfig(models=("vgg16",), layers={"squeezenet1_1": ["fire2"]})


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, squeezenet_ncnn_dir: Path) -> Iterator[Path]:
    monkeypatch.setenv("PSYCHOFEAT_HOME", str(tmp_path / "home"))
    yield tmp_path


def test_end_to_end_small(home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import psychofeat.stimuli

    # the CLI as users run it, with a coarse sweep (20 stimuli instead of 865) to keep the test fast
    coarse = functools.partial(psychofeat.stimuli.ProbeProtocol, n_freq=6, n_orient=4, n_phase=1, n_orient_freq=3)
    monkeypatch.setattr(psychofeat.stimuli, "ProbeProtocol", coarse)
    out = home / "cmp"
    argv = ["compare", "--models", "squeezenet1_1", "--layers-per-model", "squeezenet1_1=relu1,fire3,fire9",
            "--size", "48", "--ppd", "24", "--out", str(out)]  # fmt: skip; 48 px at 24 ppd hold one cycle of 0.5 cpd
    assert main(argv) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns) == ["network", "weights", "layer", "depth_fraction", "n_channels", "pe_median", "pe_q25",
                                   "pe_q75", "frac_above_vgg16_median", "frac_unresponsive"]
    assert sorted(set(table["weights"])) == ["pretrained", "random", "shuffled"]
    assert table.groupby("weights")["n_channels"].sum().tolist() == [64 + 128 + 512] * 3
    assert table["frac_above_vgg16_median"].isna().all()  # no pretrained VGG-16 in this run: no reference
    assert ((table["pe_q25"] <= table["pe_median"]) & (table["pe_median"] <= table["pe_q75"])).all()
    html = (out / "report.html").read_text()
    assert "PE vs depth" in html and "data:image/png;base64" in html
    assert "squeezenet1_1" in capsys.readouterr().out
    assert main(argv) == 2  # refuses to mix results into a non-empty folder


def test_cli_refuses_too_small_stimuli_as_analyze_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """48 px at 60 ppd span 0.8 deg, less than one cycle of 0.5 cpd: refused with analyze's message, nothing written."""
    out = tmp_path / "cmp"
    assert main(["compare", "--models", "squeezenet1_1", "--size", "48", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "less than one cycle of the lowest frequency (0.5 cpd needs 120 px)" in err and "Traceback" not in err
    assert not out.exists()
