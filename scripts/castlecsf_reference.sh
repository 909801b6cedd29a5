#!/usr/bin/env bash
# Regenerate tests/data/castlecsf_reference.csv from the upstream castleCSF MATLAB code with GNU Octave.
# The castleCSF code is found through psychofeat's data root (PSYCHOFEAT_DATA_ROOT, or ../shared/data),
# exactly as the package finds its data. Usage, from the repository root:
#   scripts/castlecsf_reference.sh [OUT_CSV]          (default tests/data/castlecsf_reference.csv)
# Needs `octave` (Debian: apt-get install -y octave) and a Python with psychofeat installed ($PYTHON).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../tests/data/castlecsf_reference.csv}"
python="${PYTHON:-python}"
matlab_dir="$("$python" -c 'from psychofeat.config import data_path; print(data_path("hvs", "castleCSF_matlab"))')"
octave --no-gui --quiet "$here/castlecsf_reference.m" "$matlab_dir" "$out"
