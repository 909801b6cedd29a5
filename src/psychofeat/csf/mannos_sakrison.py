"""Mannos & Sakrison (1974): the classic luminance-independent, size-independent CSF.

J. L. Mannos, D. J. Sakrison, "The effects of a visual fidelity criterion on the encoding of images",
IEEE Trans. Information Theory 20(4):525–536, 1974:

    A(f) = 2.6 · (0.0192 + 0.114·f) · exp(−(0.114·f)^1.1),      f in cycles per degree.

Scale: **relative**. The formula is returned as published, without renormalisation: its maximum is
A ≈ 0.981 at f ≈ 8.0 cpd, so values read as "fraction of peak sensitivity". Multiply by an absolute
peak sensitivity (e.g. a few hundred at photopic luminance) if absolute numbers are needed; the
CSF check fits that factor as its free vertical shift. Luminance and area are validated but ignored:
the model was fitted at one (photopic) adaptation level for large images.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from psychofeat.csf.base import CSFModel, FloatArray

#: the published constants (Mannos & Sakrison 1974, eq. (7) of the paper)
GAIN = 2.6
OFFSET = 0.0192
SCALE_CPD = 0.114
EXPONENT = 1.1


class MannosSakrisonCSF(CSFModel):
    """A(f) = 2.6 (0.0192 + 0.114 f) exp(−(0.114 f)^1.1); relative scale, peak ≈ 0.981 at ≈ 8 cpd."""

    name: ClassVar[str] = "mannos_sakrison"
    reference: ClassVar[str] = "Mannos & Sakrison (1974), IEEE Trans. Inf. Theory 20(4):525-536"
    absolute: ClassVar[bool] = False
    uses_luminance: ClassVar[bool] = False
    uses_area: ClassVar[bool] = False

    def _sensitivity(self, f: FloatArray, lum: FloatArray, area: FloatArray) -> FloatArray:
        x = SCALE_CPD * f
        return GAIN * (OFFSET + x) * np.exp(-(x**EXPONENT))
