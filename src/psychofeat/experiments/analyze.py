"""Deprecated: `psychofeat.experiments.analyze` moved to `psychofeat.analysis` (the study) and
`psychofeat.analysis_report` (`write_analysis`). Every name still resolves here, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

#: old name -> the module that now defines it
_MOVED = {
    "AnalysisConfig": "psychofeat.analysis",
    "AnalysisResult": "psychofeat.analysis",
    "ResponseSource": "psychofeat.analysis",
    "analyze": "psychofeat.analysis",
    "csf_weights": "psychofeat.analysis",
    "_phase_mean": "psychofeat.analysis",
    "write_analysis": "psychofeat.analysis_report",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"psychofeat.experiments.analyze.{name} is deprecated; import it from {module}.",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_MOVED})
