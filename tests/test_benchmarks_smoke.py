"""Smoke test of the benchmark code path (`python -m benchmarks metric`): tiny input, random weights, one repeat.

No timing is asserted (timings on a shared CI machine mean nothing); the test checks that the code runs end to end
and that the JSON it writes has the documented structure. lpips is optional (its own venv; see
benchmarks/requirements.txt): without it the lpips rows are absent and the JSON says why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from synthetic_nets import synthetic_selection

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _selection_file(tmp_path: Path) -> Path:
    """A selection.json for random:0 VGG-16 weights with synthetic PE values (only its shape matters here)."""
    from psychofeat.backbones import load_backbone

    bb = load_backbone("vgg16", "random:0")
    weights = {"source": bb.weights_info.source, "params_sha256": bb.weights_info.params_sha256}
    return synthetic_selection(tmp_path / "selection.json", bb.layer_channels(bb.metric_layers), bb.name, weights)


def test_metric_benchmark_writes_documented_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.__main__ import main
    from benchmarks.models import lpips_available

    sel = _selection_file(tmp_path)
    out = tmp_path / "bench.json"
    rc = main(["metric", "--weights", "random:0", "--selection", str(sel), "--sizes", "32x32", "--pairs", "1",
               "--repeats", "1", "--warmup", "0", "--dtypes", "fp32", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "acceptance" in printed and "psychofeat-all" in printed

    payload = json.loads(out.read_text())
    assert {"command", "machine", "loadavg_start", "benchmarks", "acceptance"} <= set(payload)
    assert payload["machine"]["device"] == "cpu"
    r = payload["benchmarks"]["metric"]
    assert {"rows", "acceptance", "top25_selection", "lpips", "repeats", "loadavg_start", "wall_s"} <= set(r)
    assert r["top25_selection"]["channels_per_layer"] == {"relu1_2": 16, "relu2_2": 32, "relu3_3": 64,
                                                         "relu4_3": 128, "relu5_3": 128}
    variants = {row["variant"] for row in r["rows"]}
    expected = {"psychofeat-all", "psychofeat-top25", "psychofeat-all-ref", "trunk-cl", "trunk-nchw", "ceiling"}
    has_lpips, _ = lpips_available()
    if has_lpips:
        expected.add("lpips")
    assert variants == expected
    for row in r["rows"]:
        assert row["size"] == "32x32" and row["dtype"] == "fp32" and row["pairs_per_batch"] == 1
        assert row["pairs_per_s"] > 0
        if row["variant"] != "ceiling":
            assert len(row["samples_ms"]) == 1 and row["median_ms"] > 0
    ceiling = next(row for row in r["rows"] if row["variant"] == "ceiling")
    assert ceiling["ceiling_from"] in ("trunk-cl", "trunk-nchw") and ceiling["vs_ceiling"] == 1.0
    names = [a["target"] for a in payload["acceptance"]]
    assert names == ["cpu 256x256 fp32: psychofeat-all / lpips >= 1.3",
                     "cpu 256x256 fp32: psychofeat-top25 / psychofeat-all >= 1.0"]
    # only 32x32 was measured: the 256x256 targets are reported as not evaluated, never guessed
    assert all(a["value"] is None and a["met"] is None for a in payload["acceptance"])
    if not has_lpips:
        assert "lpips not importable" in r["lpips"]


def test_precision_benchmark_prints_the_cpu_first_and_writes_json(tmp_path: Path,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    from benchmarks.__main__ import main
    from psychofeat.machine import native_bf16

    out = tmp_path / "prec.json"
    assert main(["precision", "--prec-batch", "1", "--prec-size", "32", "--prec-repeats", "1", "--out", str(out)]) == 0
    printed = capfd.readouterr()
    assert printed.err.startswith("CPU: ")
    payload = json.loads(out.read_text())
    assert {"cpu_model", "cpu_capability", "native_bf16", "threads", "torch"} <= set(payload["machine"])
    r = payload["benchmarks"]["precision"]
    assert {row["variant"] for row in r["rows"]} == {"fp32", "bf16"} and r["bf16_vs_fp32"] > 0
    assert r["auto_dtype"] == ("bfloat16" if native_bf16() else "float32")
    assert payload["acceptance"][0]["target"].startswith("dtype auto no slower than fp32")


def test_bare_forward_runs_as_many_stimuli_as_each_analysis() -> None:
    """The analyze benchmark's baseline: the same stimulus counts per pass, for the reference and for --fast."""
    from benchmarks.analyze_bench import bare_passes
    from psychofeat.analysis import AnalysisConfig, analyze
    from psychofeat.backbones import load_backbone
    from psychofeat.stimuli import ProbeProtocol, fast_protocol

    bb = load_backbone("vgg16", "random:0")
    geo = {"size": 32, "ppd": 8.0, "n_freq": 5, "n_orient": 4, "n_orient_freq": 3}
    for protocol in (ProbeProtocol(**geo), fast_protocol(**geo)):
        info = analyze(bb, ["relu1_2", "relu2_2"], AnalysisConfig(protocol=protocol), progress=False).info
        passes = bare_passes(info)
        assert [len(s) for s, _ in passes] == [e["n_stimuli"] for e in info["stimulus_passes"]]
        assert [d for _, d in passes] == [e["deepest_layer"] for e in info["stimulus_passes"]]
