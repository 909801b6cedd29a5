"""Deprecated: `psychofeat.experiments.analyze_report` moved to `psychofeat.analysis_report`.

Importing this module warns once and gives the new module itself (not a copy), so that code which patches a
name here (e.g. ``build_report``) patches what `psychofeat analyze` runs."""

from __future__ import annotations

import sys
import warnings

import psychofeat.analysis_report as _new

warnings.warn("psychofeat.experiments.analyze_report is deprecated; import psychofeat.analysis_report instead.",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _new
