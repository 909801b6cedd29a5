"""Cross-CPU agreement of the main job: `analyze` under this machine's own kernels (in this process) and, each in a
fresh process, under the AVX2 kernels that other CPUs run (`ATEN_CPU_CAPABILITY=avx2`, with oneDNN's convolutions
capped to AVX2 by `ONEDNN_MAX_CPU_ISA`) and under ATen's portable kernels (`ATEN_CPU_CAPABILITY=default`; oneDNN at
its own instruction set, as its SSE4.1 kernels would take 4× longer). A capability equal to this machine's own is
not rerun (it would compute the same thing).

Truth: the scores are a property of the network and the stimuli, not of the CPU. The selected top-25 % sets must be
identical and PE equal to 1e-5 whichever kernels computed them (docs/developing.md, "Every CPU").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import torch

#: (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA) of the other CPUs' kernels
OTHER_KERNELS = (("avx2", "AVX2"), ("default", "ALL"))
LAYERS = ("relu1_2", "relu2_2", "relu3_3")

_SCRIPT = """
import json, sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
from test_cross_cpu import reduced_analysis
json.dump(reduced_analysis(), sys.stdout)
"""


def reduced_analysis() -> dict[str, Any]:
    """VGG-16 (seeded random weights), 3 layers, a 48 px protocol: PE and top-25 % per layer, and the kernels used."""
    from psychofeat.analysis import AnalysisConfig, analyze
    from psychofeat.backbones import load_backbone
    from psychofeat.machine import cpu_capability
    from psychofeat.stimuli import ProbeProtocol

    protocol = ProbeProtocol(size=48, ppd=24.0, f_min=1.0, n_freq=10, n_orient=8, n_phase=2, n_orient_freq=4)
    sel = analyze(load_backbone("vgg16", "random:0"), list(LAYERS), AnalysisConfig(protocol=protocol),
                  progress=False).selection
    assert sel.pe is not None
    return {"capability": cpu_capability(), "pe": {k: v.tolist() for k, v in sel.pe.items()},
            "top": {k: sorted(int(c) for c in v) for k, v in sel.channels.items()}}


def _run(capability: str, onednn_isa: str) -> dict[str, Any]:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "ONEDNN_MAX_CPU_ISA": onednn_isa}
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, here], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_analyze_agrees_across_cpu_kernels() -> None:
    native = reduced_analysis()  # this process: tests run single-threaded (conftest), as the subprocesses do
    own = (os.environ.get("ATEN_CPU_CAPABILITY") or torch.backends.cpu.get_cpu_capability()).lower()
    runs = {cap: _run(cap, isa) for cap, isa in OTHER_KERNELS if cap != own}
    assert runs, "no other kernels to compare with"
    if "default" in runs:
        assert runs["default"]["capability"] == "DEFAULT"  # the variable did select other kernels
    for other in runs.values():
        for layer in LAYERS:
            a, b = np.asarray(native["pe"][layer]), np.asarray(other["pe"][layer])
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-5,
                                       err_msg=f"{layer}: {native['capability']} vs {other['capability']}")
            assert other["top"][layer] == native["top"][layer], (
                f"{layer}: top-25 % differs between {native['capability']} and {other['capability']} kernels")
    # the case is not trivially equal: some layers' PE spread is far above the tolerance
    assert max(np.ptp(native["pe"][k]) for k in LAYERS) > 1e-2
