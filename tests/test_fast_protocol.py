"""`analyze --fast` against the reference protocol, on a reduced case (3 layers, 40 px, 8 frequencies, 8
orientations), so that a later change to the fast protocol or to how `analyze` averages phases cannot silently
lose the agreement measured on the full case (docs/benchmarks.md, "Fast analysis")."""

from __future__ import annotations

import numpy as np

from psychofeat.agreement import score_agreement
from psychofeat.analysis import AnalysisConfig, analyze
from psychofeat.stimuli import ProbeProtocol, fast_protocol, orientation_sweep, preset_name

LAYERS = ["relu2_2", "relu3_3", "relu4_3"]
REDUCED = {"size": 40, "ppd": 15.0, "n_freq": 8, "n_orient": 8, "n_orient_freq": 4}


def test_fast_is_the_reference_with_counterphase_orientation_sweeps() -> None:
    ref, fast = ProbeProtocol(), fast_protocol()
    assert preset_name(ref) == "reference" and preset_name(fast) == "fast"
    np.testing.assert_array_equal(fast.phases, ref.phases)  # the frequency sweep is untouched
    np.testing.assert_allclose(fast.orientation_phases, [0.0, np.pi])
    # its stimuli are a subset of the reference's: the orientation sweep without the quadrature phases
    grid = ref.orientation_grid[:2]
    full = orientation_sweep(ref, grid)
    keys = set(zip(full.freq, full.orient, full.phase))
    sub = orientation_sweep(fast, grid)
    assert all((f, t, p) in keys for f, t, p in zip(sub.freq, sub.orient, sub.phase))
    assert len(sub) * 2 == len(keys)
    assert "n_phase_orient" not in ref.to_dict()  # the reference's record (and the bundled files) stay as they were


def test_fast_protocol_agrees_with_the_reference_on_a_reduced_case(vgg16_imagenet) -> None:  # noqa: ANN001
    ref = analyze(vgg16_imagenet, LAYERS, AnalysisConfig(protocol=ProbeProtocol(**REDUCED)), progress=False)
    fast = analyze(vgg16_imagenet, LAYERS, AnalysisConfig(protocol=fast_protocol(**REDUCED)), progress=False)
    assert fast.info["protocol_preset"] == "custom"

    def orientation_stimuli(info: dict) -> int:
        return sum(p["n_stimuli"] for p in info["stimulus_passes"] if p["pass"] == "orientation")

    assert 2 * orientation_stimuli(fast.info) == orientation_stimuli(ref.info)
    agree = score_agreement(ref.scores, fast.scores).set_index("layer")
    # measured (this case): ρ 0.9987 / 0.996 / 0.974, overlap 1 / 0.98 / 0.97; on the full case the deep layers,
    # whose receptive fields cover most of the stimulus, are also the least stable (docs/benchmarks.md)
    assert (agree.loc[["relu2_2", "relu3_3"], "pe_spearman"] >= 0.99).all(), agree
    assert agree.loc["relu4_3", "pe_spearman"] >= 0.95, agree
    assert (agree["top_overlap"] >= 0.9).all(), agree
