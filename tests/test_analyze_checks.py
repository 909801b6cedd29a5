"""`psychofeat analyze` input checks: viewing distance (ppd) and a stimulus too small for the lowest frequency."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from psychofeat.analysis import AnalysisConfig, analyze
from psychofeat.backbones import from_module
from psychofeat.backbones.base import IDENTITY
from psychofeat.cli import main
from psychofeat.errors import InputError
from psychofeat.stimuli import ProbeProtocol


@pytest.mark.parametrize("ppd", [0.0, -5.0, math.nan, math.inf])
def test_ppd_must_be_positive(ppd: float) -> None:
    with pytest.raises(InputError, match=r"ppd \(pixels per visual degree\) must be a positive number"):
        ProbeProtocol(ppd=ppd)


def test_ppd_too_low_for_the_sweep_names_the_bound() -> None:
    # f_max = 0.45·ppd must exceed f_min = 0.5 cpd: ppd > 0.5 / 0.45 = 1.11
    with pytest.raises(InputError, match=r"raise ppd above 1\.11"):
        ProbeProtocol(ppd=1.0)
    ProbeProtocol(ppd=1.2, size=224)  # just above the bound: accepted


def test_f_min_must_be_positive() -> None:
    with pytest.raises(InputError, match="f_min must be a positive frequency"):
        ProbeProtocol(f_min=0.0)


@pytest.mark.parametrize(("size", "ppd", "ok"), [(8, 60.0, False), (119, 60.0, False), (120, 60.0, True),
                                                 (48, 16.0, True), (48, 60.0, False)])
def test_lowest_frequency_must_fit(size: int, ppd: float, ok: bool) -> None:
    p = ProbeProtocol(size=size, ppd=ppd)
    assert p.lowest_frequency_cycles == pytest.approx(size * 0.5 / ppd)  # one cycle of 0.5 cpd is 2·ppd px
    if ok:
        p.check_holds_lowest_frequency()
    else:
        with pytest.raises(InputError, match=f"needs {math.ceil(2 * ppd)} px"):
            p.check_holds_lowest_frequency()


@pytest.mark.parametrize(("args", "message"), [
    (["--ppd", "0"], "ppd (pixels per visual degree) must be a positive number"),
    (["--ppd", "-2"], "ppd (pixels per visual degree) must be a positive number"),
    (["--size", "8"], "less than one cycle of the lowest frequency"),
])
def test_cli_refuses_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                    message: str) -> None:
    out = tmp_path / "out"
    assert main(["analyze", "--weights", "random:0", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_library_analyze_warns_on_too_small_stimuli() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    backbone = from_module(net, layers=["1"], preprocessing=IDENTITY)
    config = AnalysisConfig(protocol=ProbeProtocol(size=16, ppd=16.0, n_freq=4, n_orient=4, n_phase=1,
                                                   n_orient_freq=2))
    with pytest.warns(UserWarning, match="less than one cycle"):
        result = analyze(backbone, config=config, progress=False)
    assert np.isfinite(result.scores["pe"].to_numpy()).all()


def test_too_small_message_reads_well_for_any_size() -> None:
    """Issue 25's "a 8-px": the message no longer puts an article before the number."""
    with pytest.raises(InputError, match=r"^the 8-px stimulus at 60 pixels per degree"):
        ProbeProtocol(size=8).check_holds_lowest_frequency()
    with pytest.raises(InputError, match=r"got 0\.") as exc:
        ProbeProtocol(size=np.int64(0))
    assert "np.int64" not in str(exc.value)


def test_analyze_is_the_function_at_the_package_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """`psychofeat.analyze` is the function; its module is `psychofeat.analysis` (a module named `analyze` would
    replace the function as the package attribute once imported). The old module paths warn and give the same."""
    import importlib
    import sys

    import psychofeat
    import psychofeat.analysis as analysis
    import psychofeat.analysis_report as analysis_report
    from psychofeat import analyze as from_package

    assert from_package is analysis.analyze is psychofeat.analyze and callable(from_package)
    assert from_package is analyze  # this file imports it through the deprecated path
    old = importlib.import_module("psychofeat.experiments.analyze")
    for name in ("AnalysisConfig", "AnalysisResult", "analyze", "csf_weights"):
        with pytest.warns(DeprecationWarning, match=f"experiments.analyze.{name} is deprecated.*psychofeat.analysis"):
            assert getattr(old, name) is getattr(analysis, name)
    with pytest.warns(DeprecationWarning, match="psychofeat.analysis_report"):
        assert old.write_analysis is analysis_report.write_analysis
    monkeypatch.delitem(sys.modules, "psychofeat.experiments.analyze_report", raising=False)
    with pytest.warns(DeprecationWarning, match="experiments.analyze_report is deprecated"):
        report = importlib.import_module("psychofeat.experiments.analyze_report")
    assert report is analysis_report  # the module itself: patching a name there patches what `analyze` runs
    assert psychofeat.analyze is from_package  # still the function after every import above
