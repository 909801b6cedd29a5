#!/usr/bin/env bash
# The numerically sensitive tests (marker `numerics`) again under the CPU kernels other machines run:
# ATEN_CPU_CAPABILITY=avx2 (AMD EPYC and other CPUs without AVX-512; oneDNN, which computes most convolutions, is
# capped to AVX2 too by ONEDNN_MAX_CPU_ISA) and =default (ATen's portable kernels; oneDNN left at its own ISA, as its
# SSE4.1 kernels would double the time).
# A capability equal to this machine's own is skipped (the main test run already covers it); the runs are
# single-threaded (tests/conftest.py), so the two run side by side. docs/developing.md, "Every CPU".
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
native="$("$PY" -c 'import torch; print(torch.backends.cpu.get_cpu_capability().lower())')"
echo "this CPU's kernels: ${native}"
logs="$(mktemp -d)"
pids=()
caps=()
declare -A onednn=([avx2]=AVX2 [default]=ALL)
for cap in avx2 default; do
    if [ "$cap" = "$native" ]; then
        echo "ATEN_CPU_CAPABILITY=${cap}: same as this CPU's, skipped"
        continue
    fi
    ATEN_CPU_CAPABILITY="$cap" ONEDNN_MAX_CPU_ISA="${onednn[$cap]}" "$PY" -m pytest -q -p no:cacheprovider -m "numerics and not slow" \
        >"${logs}/${cap}.log" 2>&1 &
    pids+=("$!")
    caps+=("$cap")
done
status=0
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        echo "ATEN_CPU_CAPABILITY=${caps[$i]} ONEDNN_MAX_CPU_ISA=${onednn[${caps[$i]}]}: $(tail -n 1 "${logs}/${caps[$i]}.log")"
    else
        status=1
        echo "ATEN_CPU_CAPABILITY=${caps[$i]} ONEDNN_MAX_CPU_ISA=${onednn[${caps[$i]}]}: FAILED"
        cat "${logs}/${caps[$i]}.log"
    fi
done
rm -rf "$logs"
exit "$status"
