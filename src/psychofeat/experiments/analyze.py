"""Deprecated: `psychofeat.experiments.analyze` moved to `psychofeat.analysis` (the study) and
`psychofeat.analysis_report` (`write_analysis`). Every name still resolves here, with a DeprecationWarning."""

from __future__ import annotations

from psychofeat._deprecation import moved_names

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


__getattr__ = moved_names(__name__, _MOVED)


def __dir__() -> list[str]:
    return sorted({*globals(), *_MOVED})
