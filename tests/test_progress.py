"""Progress off a terminal: coarse one-line reports instead of silence (a CI log, `analyze > log 2>&1`)."""

from __future__ import annotations

import pytest
import torch

from psychofeat.progress import LineProgress, progress_bar


def test_line_progress_reports_coarse_lines(capsys: pytest.CaptureFixture[str]) -> None:
    bar = LineProgress(total=5, desc="frequency sweep", unit="stim", every_s=0.0)
    for _ in range(5):
        bar.update(1)
    bar.close()
    bar.close()  # idempotent
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "psychofeat: frequency sweep 1/5 stim (0 s)"
    assert lines[-1].startswith("psychofeat: frequency sweep 5/5 stim") and len(lines) == 5


def test_off_a_terminal_the_probe_prints_lines_and_on_request_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(progress_bar(3, "x", enabled=True), LineProgress)  # pytest's stderr is not a terminal
    from psychofeat.backbones import IDENTITY, from_module
    from psychofeat.probe import probe

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.ReLU())
    bb = from_module(net, layers=["1"], preprocessing=IDENTITY, name="tiny")
    probe(bb, torch.rand(4, 3, 16, 16), ["1"], batch_size=2, progress=True, desc="sweep")
    assert "psychofeat: sweep 4/4 stim" in capsys.readouterr().err
    probe(bb, torch.rand(4, 3, 16, 16), ["1"], batch_size=2, progress=False)
    assert capsys.readouterr().err == ""
