"""Human threshold stimuli rendered as images: castleCSF's measurements shown on psychofeat's display model.

Each achromatic, foveal, static Gabor/grating row of castleCSF's aggregated data (`psychofeat.hvs.data`)
is a stimulus that the average observer *just* detected: a luminance pattern of Michelson contrast
``1 / sensitivity`` on a uniform field. Rendering it as a float image (no quantisation, mean grey 0.5) lets
an image metric be asked the question a visual-difference predictor is calibrated on: is the distance
between every threshold stimulus and the blank field the same?

Display model (`Display`). A stimulus in degrees and cycles per degree becomes pixels through the same
`ViewingGeometry` as the channel analysis: by default 60 pixels per degree and 224 × 224 px (3.73°), the
`ProbeProtocol` defaults, so a cpd here is the cpd the PE selection was computed in. The ppd and image
size can be set per dataset; the default is the same for all, and rows the display cannot show are
skipped (with the reason) rather than squeezed in:

* ``frequency``: s_frequency above ``max_freq_fraction · ppd`` (0.45 · 60 = 27 cpd, the highest frequency
  the analysis probes; Nyquist is 30 cpd). Drops ModelFest #10 (30 cpd) and the 32 cpd rows.
* ``envelope``: the stimulus does not fit in the image — a Gabor needs ``envelope_sigmas`` (3) envelope
  s.d. on each side of the centre (the envelope has fallen to 1.1 % there); a grating's aperture must lie
  inside the image.
* ``contrast``: threshold contrast above 1 cannot be shown around mean grey.
* ``luminance``: background below ``min_luminance`` (10 cd/m²). The image metrics take display-referred
  values and know nothing of absolute luminance, so mesopic/scotopic thresholds (which rise as luminance
  falls) would measure luminance adaptation, which none of them models. At ≥ 10 cd/m² Weber's law
  approximately holds for the frequencies here, so thresholds are comparable across luminances.
* ``aperture``: a profile the data do not describe (wright1983's "tapered_rectangular": the taper is not
  recorded).

Geometry of each stimulus, in the conventions of `psychofeat.stimuli` (pixel centre at (S−1)/2, y up):

* Gabor (ModelFest, hdrvdp_csf): ``mean·(1 + c·exp(−r²/2σ²)·cos(2π f·d))`` with σ = ``ge_sigma``; ``c`` is
  the peak contrast at the envelope's centre.
* Grating with a ``rectangular`` aperture (rovamo1993): a square of side ``sqrt(area)`` (the data give the
  area only; Rovamo et al. varied the size of square gratings). ``circular`` (virsu1979): a disc of area
  ``area``. Hard-edged apertures are rendered with each pixel's exact area coverage (anti-aliased edges),
  so the edge carries no extra aliasing.
* Phase: cosine (a bright bar through the centre). castleCSF does not record phase; ModelFest defines its
  Gabors with a cosine carrier, and the same phase is used for every dataset.
* Orientation: castleCSF's ``orientation`` is read as the orientation of the bars (90° = vertical bars),
  i.e. `psychofeat.stimuli`'s θ (direction of luminance change) = orientation − 90°. Neither castleCSF's
  code nor its data define the convention; swapping it changes ModelFest scores by ≤ 0.04 for the deep
  metrics checked (docs/detection.md) and not at all for PSNR/SSIM.

Contrast enters linearly: an image is ``mean·(1 + c·P)`` with P the unit-contrast pattern, which is computed
once per stimulus (float64) so any contrast (bisection!) is rendered exactly and cheaply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from psychofeat.errors import InputError
from psychofeat.hvs.data import (
    ACHROMATIC_MAX_ANGLE_DEG,
    dataset_order,
    hvs_file,
    load_measurements,
    select_csf_rows,
    select_datasets,
)
from psychofeat.stimuli import ViewingGeometry, gabor, linear_grating, uniform_field

#: castleCSF's aperture names (datasets.json) -> how psychofeat renders them (None: not renderable)
APERTURES: dict[str, str | None] = {
    "gauss": "gauss",
    "rectangular": "square",
    "circular": "disc",
    "tapered_rectangular": None,
}
#: cosine phase in `psychofeat.stimuli`'s sin(2π f d + φ) convention
COSINE_PHASE = math.pi / 2
SKIP_REASONS = ("luminance", "frequency", "contrast", "envelope", "aperture")


@dataclass(frozen=True)
class Display:
    """How a dataset's stimuli are shown: pixels per degree, image size, mean grey and what 'fits' means."""

    ppd: float = 60.0
    size: int = 224
    mean: float = 0.5
    max_freq_fraction: float = 0.45  # highest frequency shown = this · ppd (the analysis's f_max; Nyquist is 0.5)
    envelope_sigmas: float = 3.0  # a Gabor needs this many envelope s.d. between its centre and the image edge

    def __post_init__(self) -> None:
        ViewingGeometry(self.ppd)  # validates ppd
        if not isinstance(self.size, (int, np.integer)) or self.size < 32:
            raise InputError(f"display size must be an integer ≥ 32 px (the metrics' minimum), got {self.size!r}.")
        if not 0 < self.mean < 1:
            raise InputError(f"display mean grey must be in (0, 1), got {self.mean}.")
        if not 0 < self.max_freq_fraction < 0.5:
            raise InputError(
                f"max_freq_fraction must be in (0, 0.5) (Nyquist is 0.5·ppd), got {self.max_freq_fraction}."
            )
        if self.envelope_sigmas <= 0:
            raise InputError(f"envelope_sigmas must be positive, got {self.envelope_sigmas}.")

    @property
    def geometry(self) -> ViewingGeometry:
        return ViewingGeometry(self.ppd)

    @property
    def extent_deg(self) -> float:
        """Side of the image in degrees of visual angle."""
        return self.size / self.ppd

    @property
    def max_frequency_cpd(self) -> float:
        return self.max_freq_fraction * self.ppd

    @property
    def max_contrast(self) -> float:
        """Highest Michelson contrast that stays inside [0, 1] around the mean."""
        return min(1.0, (1.0 - self.mean) / self.mean)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dataset_apertures() -> dict[str, str]:
    """castleCSF's aperture name per dataset (``datasets.json``)."""
    info = json.loads(hvs_file("datasets.json").read_text(encoding="utf-8"))["datasets"]
    return {k: str(v.get("aperture", "")) for k, v in info.items()}


def aperture_extent_deg(stimulus: str, aperture: str, ge_sigma: float, area: float, display: Display) -> float:
    """Half-width [deg] the stimulus needs around its centre (Gabor: envelope_sigmas·σ; square: side/2;
    disc: radius)."""
    if aperture == "gauss":
        return display.envelope_sigmas * ge_sigma
    if aperture == "square":
        return 0.5 * math.sqrt(area)
    if aperture == "disc":
        return math.sqrt(area / math.pi)
    raise InputError(f"unknown aperture {aperture!r} for a {stimulus}.")


def _skip_reason(row: pd.Series, aperture: str | None, display: Display, min_luminance: float) -> str | None:
    """Why the display cannot show this row (the first reason that applies), or None."""
    if row["luminance"] < min_luminance:
        return "luminance"
    if row["s_frequency"] > display.max_frequency_cpd:
        return "frequency"
    if 1.0 / row["sensitivity"] > display.max_contrast:
        return "contrast"
    if aperture is None:
        return "aperture"
    need = aperture_extent_deg(row["stimulus"], aperture, row["ge_sigma"], row["area"], display)
    if need > 0.5 * display.extent_deg + 1e-9:
        return "envelope"
    return None


def _resolve_display(displays: Display | Mapping[str, Display] | None, dataset: str) -> Display:
    if displays is None:
        return Display()
    if isinstance(displays, Display):
        return displays
    return displays.get(dataset, displays.get("default", Display()))


@dataclass
class ThresholdStimuli:
    """The renderable threshold stimuli (`rows`) and the rows that were skipped (`skipped`, with reasons).

    `rows` columns: dataset, source_row (0-based row of data_aggregated.csv), stim_id, stimulus, aperture,
    s_frequency [cpd], orientation [deg, castleCSF], theta_deg [stimuli.py], ge_sigma [deg], area [deg²],
    luminance [cd/m²], sensitivity, threshold_contrast (= 1/sensitivity), log10_threshold, ppd, size, mean.
    """

    rows: pd.DataFrame
    skipped: pd.DataFrame
    displays: dict[str, Display]
    _patterns: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def datasets(self) -> list[str]:
        return dataset_order(self.rows["dataset"].unique())

    def subset(self, mask: np.ndarray | Sequence[bool]) -> ThresholdStimuli:
        """The stimuli where `mask` is true (re-indexed from 0)."""
        keep = np.flatnonzero(np.asarray(mask, dtype=bool))
        rows = self.rows.iloc[keep].reset_index(drop=True)
        cached = {new: self._patterns[int(old)] for new, old in enumerate(keep) if int(old) in self._patterns}
        return ThresholdStimuli(rows, self.skipped, self.displays, cached)

    def pattern(self, i: int) -> np.ndarray:
        """Unit-contrast pattern P (S×S float64, values in [−1, 1]) of stimulus `i`; cached."""
        i = int(i)
        if i not in self._patterns:
            self._patterns[i] = render_pattern(self.rows.iloc[i])
        return self._patterns[i]

    def render(
        self, index: Sequence[int] | np.ndarray, contrast: float | Sequence[float] | np.ndarray | None = None
    ) -> torch.Tensor:
        """Images N×3×S×S float32 of stimuli `index` at `contrast` (default: their human thresholds).

        All requested stimuli must share one image size (`sizes()` groups them)."""
        idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
        if contrast is None:
            c = self.rows["threshold_contrast"].to_numpy(dtype=np.float64)[idx]
        else:
            c = np.broadcast_to(np.asarray(contrast, dtype=np.float64), idx.shape)
        sizes = self.rows["size"].to_numpy()[idx]
        if idx.size == 0:
            raise InputError("render needs at least one stimulus index.")
        if np.any(sizes != sizes[0]):
            raise InputError("render() got stimuli of different image sizes; render each size separately.")
        means = self.rows["mean"].to_numpy(dtype=np.float64)[idx]
        if np.any(~np.isfinite(c)) or np.any(c < 0) or np.any(c > (1 - means) / means + 1e-12):
            raise InputError(f"contrast must be in [0, (1 − mean)/mean], got {c.min():.4g}–{c.max():.4g}.")
        lum = np.stack([m * (1.0 + ci * self.pattern(i)) for i, ci, m in zip(idx, c, means, strict=True)])
        t = torch.from_numpy(lum.astype(np.float32))
        return t.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()

    def blank(self, size: int, mean: float = 0.5) -> torch.Tensor:
        """The uniform field the stimuli are compared with (1×3×S×S)."""
        return uniform_field(int(size), float(mean))

    def size_groups(self, index: Sequence[int] | np.ndarray | None = None) -> dict[tuple[int, float], np.ndarray]:
        """Stimulus indices grouped by (image size, mean grey): each group can be batched together."""
        idx = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        keys = list(
            zip(self.rows["size"].to_numpy()[idx].tolist(), self.rows["mean"].to_numpy()[idx].tolist(), strict=True)
        )
        out: dict[tuple[int, float], list[int]] = {}
        for k, i in zip(keys, idx.tolist(), strict=True):
            out.setdefault((int(k[0]), float(k[1])), []).append(i)
        return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}

    def contrast_energy(
        self, index: Sequence[int] | np.ndarray | None = None, contrast: np.ndarray | None = None
    ) -> np.ndarray:
        """Contrast energy Σ (c·P)² / ppd² [deg²] of stimuli at `contrast` (default: threshold), the
        quantity an ideal-observer-in-white-noise (or PSNR) detects on."""
        idx = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        c = (
            self.rows["threshold_contrast"].to_numpy(dtype=np.float64)[idx]
            if contrast is None
            else np.asarray(contrast, dtype=np.float64)
        )
        ppd = self.rows["ppd"].to_numpy(dtype=np.float64)[idx]
        return np.array(
            [(ci**2) * float(np.sum(self.pattern(i) ** 2)) / p**2 for i, ci, p in zip(idx, c, ppd, strict=True)]
        )

    def describe(self) -> pd.DataFrame:
        """Rows used and skipped per dataset, with the skip reasons."""
        used = self.rows.groupby("dataset").size().rename("used")
        sk = (
            self.skipped.groupby(["dataset", "reason"]).size().unstack(fill_value=0)
            if len(self.skipped)
            else pd.DataFrame()
        )
        out = pd.concat([used, sk], axis=1).fillna(0).astype(int)
        for r in SKIP_REASONS:
            if r not in out.columns:
                out[r] = 0
        out = out[["used", *SKIP_REASONS]]
        out = out.loc[dataset_order(out.index)]
        disp = {ds: _resolve_display(self.displays, ds) for ds in out.index}
        out["ppd"] = [disp[ds].ppd for ds in out.index]
        out["size"] = [disp[ds].size for ds in out.index]
        return out.reset_index(names="dataset")


def render_pattern(row: pd.Series) -> np.ndarray:
    """Unit-contrast pattern P of one stimulus row (S×S float64): image = mean·(1 + c·P).

    Computed through `psychofeat.stimuli` at contrast 1 (so the geometry conventions are the analysis's),
    times the aperture for gratings."""
    geo = ViewingGeometry(float(row["ppd"]))
    size = int(row["size"])
    mean = 0.5  # the pattern does not depend on the mean; 0.5 allows contrast 1 in stimuli.py's checks
    if row["aperture"] == "gauss":
        img = gabor(geo, row["s_frequency"], row["theta_deg"], COSINE_PHASE, 1.0, row["ge_sigma"], size, mean)
        return img[0, 0].double().numpy() / mean - 1.0
    img = linear_grating(geo, row["s_frequency"], row["theta_deg"], COSINE_PHASE, 1.0, size, mean)
    carrier = img[0, 0].double().numpy() / mean - 1.0
    return carrier * aperture_mask(row["aperture"], float(row["area"]), float(row["ppd"]), size)


def _coverage_1d(coord: np.ndarray, half_width_px: float) -> np.ndarray:
    """Fraction of each pixel [x−½, x+½] inside [−h, h] (exact for a box aligned with the pixel grid)."""
    lo = np.maximum(coord - 0.5, -half_width_px)
    hi = np.minimum(coord + 0.5, half_width_px)
    return np.clip(hi - lo, 0.0, 1.0)


def aperture_mask(aperture: str, area_deg2: float, ppd: float, size: int) -> np.ndarray:
    """Hard-edged aperture of `area_deg2` centred in the image, with anti-aliased edges (S×S float64 in [0, 1]).

    ``square``: exact pixel coverage of a square of side sqrt(area). ``disc``: a disc of area `area`, with the
    coverage approximated by clip(radius − r + ½, 0, 1) (exact to first order in the edge curvature)."""
    c = (size - 1) / 2.0
    coord = np.arange(size, dtype=np.float64) - c
    if aperture == "square":
        h = 0.5 * math.sqrt(area_deg2) * ppd
        cov = _coverage_1d(coord, h)
        return np.outer(cov, cov)
    if aperture == "disc":
        radius = math.sqrt(area_deg2 / math.pi) * ppd
        r = np.hypot(coord[None, :], coord[:, None])
        return np.clip(radius - r + 0.5, 0.0, 1.0)
    raise InputError(f"unknown aperture {aperture!r}; known: square, disc (and gauss for Gabors).")


def threshold_stimuli(
    datasets: str | Sequence[str] = "all",
    displays: Display | Mapping[str, Display] | None = None,
    min_luminance: float = 10.0,
    max_angle_deg: float = ACHROMATIC_MAX_ANGLE_DEG,
    measurements: pd.DataFrame | None = None,
) -> ThresholdStimuli:
    """The achromatic, foveal, static Gabor/grating rows that the display can show, at human threshold.

    `datasets`: "all", "modelfest" or a list of dataset ids. `displays`: one `Display` for every dataset or
    {dataset: Display} (key "default" for the rest). Rows are ordered ModelFest first, then by dataset,
    luminance, area and frequency. Skipped rows are listed in `.skipped` with their reason (module docstring)."""
    if min_luminance < 0:
        raise InputError(f"min_luminance must be ≥ 0 cd/m², got {min_luminance}.")
    df = load_measurements("aggregated") if measurements is None else measurements
    rows = select_datasets(select_csf_rows(df, max_angle_deg), datasets)
    if rows.empty:
        raise InputError(f"no achromatic foveal static Gabor/grating rows for datasets={datasets!r}.")
    apertures = dataset_apertures()
    used: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    disp_used: dict[str, Display] = {}
    for src, row in rows.iterrows():
        ds = str(row["dataset"])
        disp = _resolve_display(displays, ds)
        disp_used[ds] = disp
        aperture = "gauss" if row["stimulus"] == "gabor" else APERTURES.get(apertures.get(ds, ""), None)
        base = {"dataset": ds, "source_row": int(src), "stim_id": int(row["stim_id"]), "stimulus": row["stimulus"],
                "s_frequency": float(row["s_frequency"]), "ge_sigma": float(row["ge_sigma"]),
                "area": float(row["area"]), "luminance": float(row["luminance"]),
                "sensitivity": float(row["sensitivity"])}
        reason = _skip_reason(row, aperture, disp, min_luminance)
        if reason is not None:
            skipped.append({**base, "reason": reason})
            continue
        c = 1.0 / float(row["sensitivity"])
        used.append({
            **base,
            "aperture": aperture,
            "orientation": float(row["orientation"]),
            "theta_deg": float(row["orientation"]) - 90.0,
            "threshold_contrast": c,
            "log10_threshold": math.log10(c),
            "ppd": float(disp.ppd),
            "size": int(disp.size),
            "mean": float(disp.mean),
        })
    cols = ["dataset", "source_row", "stim_id", "stimulus", "aperture", "s_frequency", "orientation", "theta_deg",
            "ge_sigma", "area", "luminance", "sensitivity", "threshold_contrast", "log10_threshold",
            "ppd", "size", "mean"]
    out = pd.DataFrame.from_records(used, columns=cols)
    if not out.empty:
        order = {d: i for i, d in enumerate(dataset_order(out["dataset"]))}
        out = out.assign(_o=out["dataset"].map(order)).sort_values(
            ["_o", "luminance", "area", "s_frequency", "source_row"], kind="stable").drop(columns="_o")
    sk_cols = ["dataset", "source_row", "stim_id", "stimulus", "s_frequency", "ge_sigma", "area", "luminance",
               "sensitivity", "reason"]
    return ThresholdStimuli(out.reset_index(drop=True), pd.DataFrame.from_records(skipped, columns=sk_cols), disp_used)


__all__ = [
    "APERTURES",
    "Display",
    "ThresholdStimuli",
    "aperture_mask",
    "render_pattern",
    "threshold_stimuli",
]
