#!/usr/bin/env bash
# Ready-to-run benchmark: creates the benchmark venv if needed, then runs every benchmark on one device.
#   benchmarks/run.sh cpu                      # this machine
#   benchmarks/run.sh cuda                     # a GPU machine (figures owed in docs/benchmarks.md)
#   benchmarks/run.sh cuda out/bench/h100.json --selection out/analyze/selection.json
# The venv (torch 2.14.1 + torchvision 0.29.1 + lpips; a large CUDA build) lives in $BENCH_VENV, default
# out/bench/venv (ignored by git), never in the project's CPU-only .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${1:-cpu}"
OUT="${2:-out/bench/benchmarks-${DEVICE%%:*}.json}"
shift $(( $# < 2 ? $# : 2 ))
VENV="${BENCH_VENV:-out/bench/venv}"
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -r benchmarks/requirements.txt
  "$VENV/bin/python" -m pip install -e .
fi
mkdir -p "$(dirname "$OUT")"
uptime || true
exec "$VENV/bin/python" -m benchmarks all --device "$DEVICE" --out "$OUT" "$@"
