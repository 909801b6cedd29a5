"""Human vision: castleCSF's measurements and the tests built on them.

- `psychofeat.hvs.data`: the measurements, with selections of achromatic, foveal, static and ModelFest rows;
- `psychofeat.hvs.csf_check`: CSF models vs the data (``psychofeat hvs csf-check``);
- `psychofeat.hvs.threshold_search`: bisection on log contrast, vectorised over many searches (used by both below);
- `psychofeat.hvs.network_csf` (+ `network_csf_report`): a network's own contrast sensitivity per layer
  (``psychofeat hvs network-csf``);
- `psychofeat.hvs.threshold_stimuli`: data rows rendered at their human threshold contrast;
- `psychofeat.hvs.detection` (+ `detection_scores`, `detection_report`): do metrics predict human detection
  thresholds? (``psychofeat hvs detect``; the metrics themselves are `psychofeat.metric_banks`).

Each ``*_report`` module imports its study and writes its outputs and report; a study never imports its report.

Only the loader is re-exported here; the others pull in matplotlib or torch and are imported explicitly.
"""

from __future__ import annotations

from psychofeat.hvs.data import (
    load_measurements,
    select_achromatic,
    select_csf_rows,
    select_foveal,
    select_modelfest,
    select_periodic,
    select_static,
)

__all__ = [
    "load_measurements",
    "select_achromatic",
    "select_csf_rows",
    "select_foveal",
    "select_modelfest",
    "select_periodic",
    "select_static",
]
