"""`psychofeat analyze` end to end on a small protocol: outputs, provenance, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from psychofeat.cli import main
from psychofeat.selection import Selection

SMALL = ["--weights", "random:3", "--layers", "relu1_2,relu2_1", "--size", "48", "--ppd", "16", "--n-freq", "8",
         "--n-orient", "8", "--n-phase", "2", "--n-orient-freq", "4"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("analyze") / "out"
    assert main(["analyze", *SMALL, "--out", str(out)]) == 0
    return out


def test_writes_documented_outputs(run: Path) -> None:
    assert {p.name for p in run.iterdir()} == {
        "scores.csv", "selection.json", "curves.npz", "manifest.json", "report.html"
    }
    scores = pd.read_csv(run / "scores.csv")
    for col in ("layer", "channel", "mu1", "mu2", "pe", "pref_freq_cpd", "pref_orient_deg", "modulation",
                "unresponsive"):
        assert col in scores.columns
    assert list(scores.groupby("layer", sort=False).size().items()) == [("relu1_2", 64), ("relu2_1", 128)]
    assert scores["pe"].between(0, 1).all()
    curves = np.load(run / "curves.npz")
    assert curves["relu1_2/freq_response"].shape == (64, 8) and curves["relu2_1/orient_response"].shape == (128, 8)
    sel = Selection.load(run / "selection.json")
    assert sel.model == "vgg16" and sel.method == "top" and len(sel.channels["relu1_2"]) == 16
    assert sel.weights["source"] == "random:3"
    html = (run / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "http" not in html.split("<body>")[1][:2000]


def test_manifest_records_what_produced_the_result(run: Path) -> None:
    m = json.loads((run / "manifest.json").read_text())
    assert m["model"] == "vgg16" and m["weights"]["source"] == "random:3" and m["weights"]["params_sha256"]
    p = m["config"]["protocol"]
    assert p["size"] == 48 and p["ppd"] == 16 and len(p["frequencies_cpd"]) == 8 and p["orientations_deg"][0] == -90
    assert m["config"]["csf"] == "barten" and m["preprocessing"]["name"] == "caffe-vgg"
    for key in ("psychofeat_version", "torch", "date_utc", "timing_s", "n_stimuli"):
        assert key in m


def test_refuses_non_empty_output_without_overwrite(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", *SMALL, "--out", str(run)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_unknown_layer_fails_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    assert main(["analyze", "--weights", "random", "--layers", "relu3_4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "relu3_3" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["analyze", "--weights", "random", "--csf", "bartenn", "--out", str(out)]) == 2
    assert "barten" in capsys.readouterr().err and not out.exists()
