"""Cross-CPU agreement of the main job: `analyze` under this machine's own kernels and under the AVX2 and the
portable (DEFAULT) kernels that other CPUs run (`ATEN_CPU_CAPABILITY`, with oneDNN's convolutions capped to the
matching instruction set by `ONEDNN_MAX_CPU_ISA`), each in a fresh process.

Truth: the scores are a property of the network and the stimuli, not of the CPU. The selected top-25 % sets must be
identical and PE equal to 1e-5 whichever kernels computed them (docs/developing.md, "Every CPU").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

#: (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA); None: the machine's own kernels (the variables removed)
CAPABILITIES = ((None, None), ("avx2", "AVX2"), ("default", "SSE41"))
LAYERS = ("relu1_2", "relu2_2", "relu3_3")

_SCRIPT = """
import json, sys
import torch
torch.set_num_threads(1)
from psychofeat.backbones import load_backbone
from psychofeat.experiments.analyze import AnalysisConfig, analyze
from psychofeat.machine import cpu_capability
from psychofeat.stimuli import ProbeProtocol

protocol = ProbeProtocol(size=64, ppd=30.0, f_min=1.0, n_freq=10, n_orient=8, n_phase=2, n_orient_freq=4)
res = analyze(load_backbone("vgg16", "random:0"), sys.argv[1].split(","), AnalysisConfig(protocol=protocol),
              progress=False)
sel = res.selection
json.dump({"capability": cpu_capability(), "pe": {k: v.tolist() for k, v in sel.pe.items()},
           "top": {k: sorted(int(c) for c in v) for k, v in sel.channels.items()}}, sys.stdout)
"""


def _run(capability: str | None, onednn_isa: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
    if capability is not None and onednn_isa is not None:
        env["ATEN_CPU_CAPABILITY"], env["ONEDNN_MAX_CPU_ISA"] = capability, onednn_isa
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, ",".join(LAYERS)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_analyze_agrees_across_cpu_kernels() -> None:
    runs = {f"{cap}/{isa}" if cap else "native": _run(cap, isa) for cap, isa in CAPABILITIES}
    native = runs["native"]
    assert runs["default/SSE41"]["capability"] == "DEFAULT"  # the variable did select other kernels
    for name, other in runs.items():
        for layer in LAYERS:
            a, b = np.asarray(native["pe"][layer]), np.asarray(other["pe"][layer])
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-5,
                                       err_msg=f"{layer}: {native['capability']} vs {other['capability']}")
            assert other["top"][layer] == native["top"][layer], (
                f"{layer}: top-25 % differs between {native['capability']} and {other['capability']} kernels")
    # the case is not trivially equal: some layers' PE spread is far above the tolerance
    assert max(np.ptp(native["pe"][k]) for k in LAYERS) > 1e-2


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
