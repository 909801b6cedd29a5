"""Human contrast sensitivity functions (CSF) of static, foveal, achromatic sinusoidal stimuli.

    from psychofeat.csf import get_csf, available_csfs
    csf = get_csf("barten")
    s = csf.sensitivity(freq_cpd, luminance=100.0, area_deg2=1.0)

Units: spatial frequency in cycles per degree (cpd), adaptation luminance in cd/m², stimulus area in deg².
All inputs broadcast; the result is float64, > 0 and finite. Scales: ``barten`` and ``castle`` are
absolute (1 / threshold Michelson contrast); ``mannos_sakrison`` is relative (peak ≈ 0.98). Invalid or
out-of-range inputs follow one policy for all models (`psychofeat.csf.base`): NaN / ≤ 0 and frequencies
outside 1/16–64 cpd raise `InputError`; luminance is clamped to 10⁻³–10⁴ cd/m². See docs/csf.md.
"""

from __future__ import annotations

from typing import Any

from psychofeat.csf.barten import BartenCSF
from psychofeat.csf.base import FREQ_RANGE_CPD, LUMINANCE_RANGE_CD_M2, CSFModel
from psychofeat.csf.castle import CastleCSF
from psychofeat.csf.mannos_sakrison import MannosSakrisonCSF
from psychofeat.errors import unknown_name

_MODELS: dict[str, type[CSFModel]] = {cls.name: cls for cls in (BartenCSF, CastleCSF, MannosSakrisonCSF)}


def available_csfs() -> list[str]:
    """Names accepted by `get_csf`, sorted."""
    return sorted(_MODELS)


def get_csf(name: str, **options: Any) -> CSFModel:
    """A CSF model by name (``"barten"``, ``"castle"``, ``"mannos_sakrison"``); `options` go to its constructor
    (e.g. ``get_csf("barten", pupil_field_deg=40)``). An unknown name raises `UnknownNameError` with close matches."""
    key = name.strip().lower().replace("-", "_")
    if key not in _MODELS:
        raise unknown_name("CSF model", name, available_csfs())
    return _MODELS[key](**options)


__all__ = [
    "FREQ_RANGE_CPD",
    "LUMINANCE_RANGE_CD_M2",
    "BartenCSF",
    "CSFModel",
    "CastleCSF",
    "MannosSakrisonCSF",
    "available_csfs",
    "get_csf",
]
