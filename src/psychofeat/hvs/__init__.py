"""Human vision data and tests: castleCSF's contrast-sensitivity measurements and the CSF check.

`psychofeat.hvs.data` loads the measurements (with selections for achromatic, foveal, static and ModelFest
rows); `psychofeat.hvs.csf_check` compares the CSF models of `psychofeat.csf` with them
(``psychofeat hvs csf-check``). Only the loader is re-exported here; import `psychofeat.hvs.csf_check` explicitly
(it pulls in matplotlib for its report).
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
