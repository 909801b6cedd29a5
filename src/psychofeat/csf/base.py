"""The common interface of the CSF models: input checks, broadcasting and the valid-range policy.

Every model answers the same question — contrast sensitivity (1 / threshold Michelson contrast) of a
static, foveal, achromatic sinusoidal stimulus — as a function of

* spatial frequency ``freq_cpd`` in cycles per degree (cpd),
* adaptation (background) luminance ``luminance`` in cd/m²,
* stimulus area ``area_deg2`` in square degrees (deg²),

broadcast against each other with numpy rules. The checks live here, once, so that the three models
cannot disagree about what is a legal input:

* a frequency, luminance or area that is NaN, infinite or ≤ 0 is an `InputError`;
* a frequency outside the model's ``freq_range_cpd`` is an `InputError` (no clamp: a frequency beyond
  the eye's resolution limit almost always means a wrong pixels-per-degree setting, and extrapolating
  a fitted curve there would silently return numbers nobody measured);
* a luminance outside the model's ``luminance_range`` is clamped to the range: sensitivity is held at
  its value at the nearest limit. Above 10⁴ cd/m² contrast sensitivity saturates (Weber behaviour), so
  this is the physically sensible continuation; below 10⁻³ cd/m² the clamp over-estimates sensitivity,
  which the docs state;
* area has no upper limit: every model saturates with area by construction.

The result is float64, strictly positive and finite; a model that would break that raises instead
of returning NaN.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from psychofeat.errors import InputError

FloatArray = NDArray[np.float64]

#: The frequency domain shared by all models, in cpd: castleCSF's own ``rho_min`` = 2⁻⁴ and ``rho_max`` = 64
#: (CSF_castleCSF.m). One domain for all models means swapping models never changes which inputs are legal.
FREQ_RANGE_CPD: tuple[float, float] = (2.0**-4, 64.0)

#: The luminance domain of the luminance-dependent models, in cd/m²: castleCSF's ``Y_min`` and ``Y_max``.
LUMINANCE_RANGE_CD_M2: tuple[float, float] = (1e-3, 1e4)


def _as_positive_array(name: str, unit: str, value: ArrayLike) -> FloatArray:
    """`value` as a float64 array; NaN, inf or non-positive entries are an `InputError`."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a number or an array of numbers in {unit}, got {value!r}.") from exc
    bad = ~np.isfinite(arr) | (arr <= 0)
    if np.any(bad):
        example = arr[bad].flat[0]
        raise InputError(
            f"{name} must be finite and > 0 {unit}; got {float(example):g} ({int(bad.sum())} bad value(s) of "
            f"{arr.size})."
        )
    return arr


class CSFModel(ABC):
    """A contrast sensitivity function S(f, L, A) of a static, foveal, achromatic stimulus.

    Subclasses implement `_sensitivity` on already checked, broadcast and clamped float64 arrays and
    declare their domain and scale in the class attributes below.
    """

    #: registry name used by `psychofeat.csf.get_csf`
    name: ClassVar[str]
    #: a one-line citation
    reference: ClassVar[str]
    #: True: sensitivity = 1 / threshold Michelson contrast; False: a relative (unit-free) curve
    absolute: ClassVar[bool]
    #: whether luminance / area change the result (the inputs are validated either way)
    uses_luminance: ClassVar[bool] = True
    uses_area: ClassVar[bool] = True
    freq_range_cpd: ClassVar[tuple[float, float]] = FREQ_RANGE_CPD
    luminance_range: ClassVar[tuple[float, float]] = LUMINANCE_RANGE_CD_M2

    def sensitivity(self, freq_cpd: ArrayLike, luminance: ArrayLike = 100.0, area_deg2: ArrayLike = 1.0) -> FloatArray:
        """Contrast sensitivity at spatial frequency `freq_cpd` [cpd], adaptation luminance `luminance`
        [cd/m²] and stimulus area `area_deg2` [deg²], broadcast against each other.

        Returns a float64 array of the broadcast shape (0-d for scalar inputs), > 0 and finite.
        Raises `InputError` for NaN / inf / ≤ 0 inputs and frequencies outside `freq_range_cpd`;
        luminance outside `luminance_range` is clamped to it (see the module docstring).
        """
        f = _as_positive_array("freq_cpd", "cycles per degree", freq_cpd)
        lum = _as_positive_array("luminance", "cd/m²", luminance)
        area = _as_positive_array("area_deg2", "deg²", area_deg2)
        self._check_frequency(f)
        lum = np.clip(lum, *self.luminance_range)
        try:
            f, lum, area = np.broadcast_arrays(f, lum, area)
        except ValueError as exc:
            raise InputError(
                f"freq_cpd {f.shape}, luminance {lum.shape} and area_deg2 {area.shape} do not broadcast together."
            ) from exc
        s = np.asarray(self._sensitivity(f, lum, area), dtype=np.float64)
        if not np.all(np.isfinite(s) & (s > 0)):
            raise InputError(
                f"CSF model {self.name!r} produced a non-positive or non-finite sensitivity inside its domain; "
                "this is a bug, please report it with the inputs."
            )
        return s

    def in_domain(self, freq_cpd: ArrayLike, luminance: ArrayLike) -> NDArray[np.bool_]:
        """Where (f, L) lies inside the model's frequency range and, if it uses luminance, its luminance
        range — i.e. where `sensitivity` neither raises nor clamps. Used to pick comparable data rows."""
        f = np.asarray(freq_cpd, dtype=np.float64)
        lum = np.asarray(luminance, dtype=np.float64)
        ok = (f >= self.freq_range_cpd[0]) & (f <= self.freq_range_cpd[1])
        if self.uses_luminance:
            ok = ok & (lum >= self.luminance_range[0]) & (lum <= self.luminance_range[1])
        return np.asarray(ok)

    def peak_frequency(self, luminance: float = 100.0, area_deg2: float = 1.0) -> float:
        """The frequency [cpd] of maximum sensitivity at one luminance and area.

        Found on a dense log grid (256 points per octave) inside `freq_range_cpd` and refined by a bounded
        scalar search, so it is accurate to well below 0.1 % for these smooth, single-peaked curves.
        """
        from scipy.optimize import minimize_scalar

        lo, hi = np.log2(self.freq_range_cpd[0]), np.log2(self.freq_range_cpd[1])
        u = np.linspace(lo, hi, round((hi - lo) * 256) + 1)
        s = self.sensitivity(2.0**u, luminance, area_deg2)
        i = int(np.argmax(s))
        a, b = u[max(i - 1, 0)], u[min(i + 1, len(u) - 1)]
        if a == b:
            return float(2.0 ** u[i])
        res = minimize_scalar(
            lambda x: -float(self.sensitivity(2.0**x, luminance, area_deg2)),
            bounds=(a, b),
            method="bounded",
            options={"xatol": 1e-9},
        )
        return float(2.0**res.x)

    def _check_frequency(self, f: FloatArray) -> None:
        lo, hi = self.freq_range_cpd
        outside = (f < lo) | (f > hi)
        if np.any(outside):
            example = f[outside].flat[0]
            raise InputError(
                f"CSF model {self.name!r} is defined for {lo:g} to {hi:g} cycles per degree; got {example:g} cpd "
                f"({int(outside.sum())} value(s) outside). Frequencies are f/ppd cycles per pixel, so check the "
                "pixels-per-degree setting: a sweep must stay below the Nyquist limit ppd/2 and below 64 cpd."
            )

    @abstractmethod
    def _sensitivity(self, f: FloatArray, lum: FloatArray, area: FloatArray) -> FloatArray:
        """The model on checked, clamped, broadcast float64 arrays of one shape."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
