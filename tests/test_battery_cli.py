"""`psychofeat hvs battery --quick`: the sub-verb's parser, its outputs and the report (with PSNR only: fast)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import pytest

from psychofeat.cli.commands import hvs_battery

pytestmark = pytest.mark.usefixtures("data_root")


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    hvs_battery.register(sub)
    return p.parse_args(["battery", *argv])


def test_quick_run_writes_tables_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "battery"
    args = _parse(["--quick", "--models", "none", "--controls", "none", "--metrics", "psnr", "--out", str(out)])
    t0 = time.perf_counter()
    assert args.func(args) == 0
    assert time.perf_counter() - t0 < 60
    for name in ("results.csv", "curves.csv", "manifest.json", "report.html", "detection_rows.csv"):
        assert (out / name).is_file(), name
    res = pd.read_csv(out / "results.csv")
    assert set(res["test"]) == {"detection_frequency", "detection_luminance", "detection_area", "masking_coherent",
                                "masking_incoherent", "matching"}
    psnr = res[res["metric"] == "psnr"].set_index("test")
    assert abs(psnr.loc["masking_coherent", "slope"]) < 0.05  # PSNR cannot mask
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Phase-coherent masking" in html and "<img" in html
    assert "psnr" in capsys.readouterr().out


def test_bad_test_name_is_refused(tmp_path: Path) -> None:
    from psychofeat.errors import InputError

    args = _parse(["--quick", "--models", "none", "--controls", "none", "--metrics", "psnr", "--tests", "masking",
                   "--out", str(tmp_path / "x")])
    with pytest.raises(InputError, match="unknown battery test"):
        args.func(args)
