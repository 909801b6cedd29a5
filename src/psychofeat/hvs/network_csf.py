"""A network's own contrast sensitivity function: ``psychofeat hvs network-csf``.

For each layer and spatial frequency f, the *detection threshold* is the lowest Michelson contrast c at
which the layer's response to a grating differs from its response to the uniform field by a fixed criterion δ:

    D_k(f, c) = sqrt( mean_φ ‖a_k(s_{f,φ,c}) − a_k(gray)‖² ) / ‖a_k(gray)‖,     threshold: D_k(f, c) = δ

* ``a_k`` is layer k's whole feature map (C×H×W, after its ReLU) — ``response="map"``, the default. The
  norm is the one a feature-space metric uses (LPIPS and psychofeat compare feature maps position by
  position). Channel means (``response="means"``, the quantity the PE analysis records) are available but
  are a poor detection statistic: the spatial mean of a linear response to a grating is ≈ 0, so near
  threshold they measure only rectification and image-border effects, not the grating itself.
* The scale is the response's own noise-free scale, ‖a_k(gray)‖ (the same norm of the response to the
  uniform 0.5 field), so δ is a relative change — δ = 0.01 means "the layer's response changed by 1 %" —
  and is comparable across layers of very different magnitude. A deterministic network has no noise, so
  a relative criterion is the natural stand-in for a signal-to-noise ratio at threshold.
* Phases φ ∈ {0, π/2, π, 3π/2} (`ProbeProtocol.phases`) are combined as the root-mean-square of the
  difference norms, an energy statistic: for a response that is linear in the stimulus, the sum of ‖Δa‖²
  over n ≥ 3 equally spaced phases does not depend on where the bars fall (Σ_k sin²(x + 2πk/n) = n/2), so
  neither does the threshold. Two phases (0, π) would not do: their responses have equal norms.
* Stimuli are those of the analysis's frequency sweep (`ProbeProtocol`: radial gratings by default, 224 px,
  60 ppd, mean grey 0.5, frequencies 0.5–27 cpd), so "cpd" means what it means for mu1/PE.
* If D is proportional to c^p near threshold (p = 1 for a response linear in contrast), δ only moves every
  threshold of a layer by the same factor: the *shape* of the network CSF — what is compared with the
  human CSF — does not depend on δ. The local exponent p at threshold is recorded (``slope``) to check it.

Search: bisection on log10 c in [c_min, c_max] (default 10⁻⁵–1), vectorised over all frequencies and layers:
each step renders one batch of images (frequencies × phases), and each image is run only up to the deepest
layer that still needs it (`FeatureExtractor` stops the forward pass there). Requests of different layers
for the same (frequency, contrast) — all of them in the first steps, since every bisection starts from the
same bracket — share one forward pass. The last bracket is refined by interpolating log D linearly in
log c (exact when D ∝ c^p). A frequency the layer does not detect even at c_max gets no threshold
(sensitivity 0, status ``undetected``); one detected already at c_min is reported at c_min
(``below_range``, a lower bound on sensitivity).

Comparison with the human CSF (castleCSF by default, at the display luminance and the stimulus area
(S/ppd)² of the analysis): peak frequency, bandwidth (full width at half maximum of sensitivity on a
log2-frequency axis, in octaves; "open" when the curve does not fall to half its peak inside the sweep),
Pearson correlation of log10 sensitivities (invariant to a vertical shift) and their RMSE after the least-
squares vertical shift (the shift absorbs δ, which sets the absolute level).

The search is `psychofeat.hvs.threshold_search`; writing the outputs and the report is
`psychofeat.hvs.network_csf_report.run_network_csf`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from psychofeat._deprecation import moved_names
from psychofeat.backbones.base import Backbone
from psychofeat.errors import InputError
from psychofeat.features import FeatureExtractor
from psychofeat.hvs.threshold_search import (  # re-exported: their old home
    STATUS_BELOW,
    STATUS_OK,  # noqa: F401
    STATUS_UNDETECTED,
    ThresholdSearch,
    _interpolate_crossing,  # noqa: F401
    bisect_log_contrast,
)
from psychofeat.stimuli import ProbeProtocol, linear_grating, radial_grating, uniform_field

Response = Literal["map", "means"]
RESPONSES: tuple[str, ...] = ("map", "means")


@dataclass(frozen=True)
class NetworkCSFConfig:
    """Everything that determines a network CSF besides the network (defaults in the module docstring)."""

    protocol: ProbeProtocol = field(default_factory=ProbeProtocol)
    luminance: float = 100.0  # display / adaptation luminance [cd/m²] for the human CSF
    human_csf: str = "castle"
    criterion: float = 0.01  # δ: relative change of the layer's response at threshold
    response: Response = "map"
    contrast_range: tuple[float, float] = (1e-5, 1.0)
    n_steps: int = 8  # bisection steps after the bracket check (log10 width 5 / 2**8 ≈ 0.02, then interpolation)
    batch_size: int = 16
    # linear gratings only: these orientations (default: the protocol's)
    orientations_deg: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.response not in RESPONSES:
            raise InputError(f"response must be one of {', '.join(RESPONSES)}, got {self.response!r}.")
        if not (self.criterion > 0 and math.isfinite(self.criterion)):
            raise InputError(f"criterion must be a positive number (a relative response change), got {self.criterion}.")
        lo, hi = self.contrast_range
        max_c = min(1.0, (1 - self.protocol.mean) / self.protocol.mean)
        if not (0 < lo < hi <= max_c + 1e-12):
            raise InputError(f"contrast_range must satisfy 0 < min < max ≤ {max_c:g}, got {self.contrast_range}.")
        if self.n_steps < 1:
            raise InputError(f"n_steps must be ≥ 1, got {self.n_steps}.")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be ≥ 1, got {self.batch_size}.")
        if self.protocol.n_phase < 3:
            raise InputError(
                f"network CSF needs ≥ 3 equally spaced phases (got {self.protocol.n_phase}): only then is the summed "
                "squared response of a linear layer independent of where the bars fall (with 2 phases, 0 and π, "
                "the two responses have the same norm and the threshold depends on the grating's phase)."
            )

    @property
    def area_deg2(self) -> float:
        return self.protocol.area_deg2

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["protocol"] = self.protocol.to_dict()
        return d


# --------------------------------------------------------------------------------------------------------------------
# Layer responses with shared, early-stopped forward passes
# --------------------------------------------------------------------------------------------------------------------


class LayerResponses:
    """D_k(f, c) of the module docstring for many layers, frequencies and contrasts, cached.

    A request (layer k, frequency i, log10 c) is answered from the cache when the grating (i, c) has already
    been run through layer k; otherwise the grating's phases are rendered and run up to the deepest layer
    that any pending request for it needs, recording every layer on the way."""

    def __init__(
        self,
        backbone: Backbone,
        layers: Sequence[str],
        config: NetworkCSFConfig,
        device: str | torch.device = "cpu",
        render: Callable[[np.ndarray, np.ndarray], torch.Tensor] | None = None,
    ) -> None:
        self.backbone = backbone
        self.layers = list(layers)
        self.config = config
        self.device = torch.device(device)
        self.protocol = config.protocol
        self.freqs = self.protocol.frequencies
        self.n_per_freq = self._phases_orients()[0].size
        self._render = render or self._render_gratings
        self._extractors: dict[int, FeatureExtractor] = {}
        self._cache: dict[tuple[int, float], dict[int, float]] = {}
        self.n_images = 0
        backbone.to(self.device)
        self._gray = self._gray_responses()
        norms = {k: float(torch.sqrt(g.pow(2).sum())) for k, g in self._gray.items()}
        dead = [self.layers[k] for k, n in norms.items() if not n > 0]
        if dead:
            raise InputError(f"layers {dead} respond with all zeros to the uniform field; the relative criterion "
                             "‖a(grating) − a(gray)‖ / ‖a(gray)‖ is undefined there.")
        self.gray_norm = np.array([norms[k] for k in range(len(self.layers))])

    def _phases_orients(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.protocol
        if p.freq_stimulus == "radial":
            return p.phases, np.zeros_like(p.phases)
        orients = (
            p.orientations if self.config.orientations_deg is None else np.asarray(self.config.orientations_deg, float)
        )
        th, ph = np.meshgrid(orients, p.phases, indexing="ij")
        return ph.ravel(), th.ravel()

    def _render_gratings(self, freq_idx: np.ndarray, contrast: np.ndarray) -> torch.Tensor:
        """All phases (× orientations) of each requested grating: (len × n_per_freq)×3×S×S."""
        p = self.protocol
        ph, th = self._phases_orients()
        f = np.repeat(self.freqs[freq_idx], ph.size)
        c = np.repeat(contrast, ph.size)
        phs, ths = np.tile(ph, len(freq_idx)), np.tile(th, len(freq_idx))
        if p.freq_stimulus == "radial":
            return radial_grating(p.geometry, f, phs, c, p.size, p.mean)
        return linear_grating(p.geometry, f, ths, phs, c, p.size, p.mean)

    def _extractor(self, depth: int) -> FeatureExtractor:
        if depth not in self._extractors:
            self._extractors[depth] = FeatureExtractor(self.backbone, self.layers[: depth + 1])
        return self._extractors[depth]

    def _reduce(self, feat: torch.Tensor) -> torch.Tensor:
        f = feat.float()
        return f.mean(dim=(2, 3)) if self.config.response == "means" else f

    def _gray_responses(self) -> dict[int, torch.Tensor]:
        out: dict[int, torch.Tensor] = {}
        ext = self._extractor(len(self.layers) - 1)
        x = uniform_field(self.protocol.size, self.protocol.mean).to(self.device)
        with torch.inference_mode():
            ext.stream(x, lambda key, f: out.__setitem__(self.layers.index(key), self._reduce(f).clone()))
        return out

    def _run(self, depth: int, keys: list[tuple[int, float]]) -> None:
        """Forward the gratings `keys` up to layer `depth`; cache D for every layer up to it."""
        ext = self._extractor(depth)
        per = self.n_per_freq
        bs = max(1, self.config.batch_size // per)
        for start in range(0, len(keys), bs):
            chunk = keys[start : start + bs]
            fi = np.array([k[0] for k in chunk], dtype=np.int64)
            c = 10.0 ** np.array([k[1] for k in chunk], dtype=np.float64)
            x = self._render(fi, c).to(self.device)
            sq: dict[int, np.ndarray] = {}

            def sink(key: str, feat: torch.Tensor) -> None:
                k = self.layers.index(key)
                diff = self._reduce(feat) - self._gray[k]
                sq[k] = diff.pow(2).flatten(1).sum(1).double().cpu().numpy()

            with torch.inference_mode():
                ext.stream(x, sink)
            self.n_images += x.shape[0]
            for k, v in sq.items():
                d = np.sqrt(v.reshape(len(chunk), per).mean(axis=1)) / self.gray_norm[k]
                for j, key in enumerate(chunk):
                    self._cache.setdefault(key, {})[k] = float(d[j])

    def evaluate(self, layer_idx: np.ndarray, freq_idx: np.ndarray, log10_c: np.ndarray) -> np.ndarray:
        """D for each request (layer index into `layers`, frequency index, log10 contrast)."""
        keys = [(int(i), float(c)) for i, c in zip(freq_idx, log10_c, strict=True)]
        need: dict[tuple[int, float], int] = {}
        for k, key in zip(layer_idx.tolist(), keys, strict=True):
            if k not in self._cache.get(key, {}):
                need[key] = max(need.get(key, -1), int(k))
        by_depth: dict[int, list[tuple[int, float]]] = {}
        for key, depth in need.items():
            by_depth.setdefault(depth, []).append(key)
        for depth in sorted(by_depth):
            self._run(depth, by_depth[depth])
        return np.array([self._cache[key][int(k)] for k, key in zip(layer_idx.tolist(), keys, strict=True)])


def network_thresholds(
    backbone: Backbone,
    layers: Sequence[str],
    config: NetworkCSFConfig | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "network CSF",
) -> pd.DataFrame:
    """Detection thresholds of every layer at every frequency of the protocol.

    Returns a long table: layer, freq_cpd, log10_threshold, threshold, sensitivity (1/threshold; 0 when
    undetected), status, slope (local exponent of D at threshold), gray_norm."""
    config = config or NetworkCSFConfig()
    names = backbone.depth_order(layers)
    resp = LayerResponses(backbone, names, config, device)
    n_f, n_l = len(resp.freqs), len(names)
    lay = np.repeat(np.arange(n_l), n_f)
    fre = np.tile(np.arange(n_f), n_l)
    bar = tqdm(total=config.n_steps + 1, desc=desc, unit="step", disable=None if progress else True, leave=False)
    search = bisect_log_contrast(
        lambda s, logc: resp.evaluate(lay[s], fre[s], logc),
        np.full(n_l * n_f, config.criterion),
        (math.log10(config.contrast_range[0]), math.log10(config.contrast_range[1])),
        config.n_steps,
        on_step=lambda: bar.update(1),
    )
    bar.close()
    thr = 10.0**search.log10_threshold
    return pd.DataFrame({
        "layer": np.array(names)[lay],
        "freq_cpd": resp.freqs[fre],
        "log10_threshold": search.log10_threshold,
        "threshold": thr,
        "sensitivity": np.where(np.isfinite(thr), 1.0 / thr, 0.0),
        "status": search.status.astype(str),
        "slope": search.slope,
        "gray_norm": resp.gray_norm[lay],
        "n_images": resp.n_images,
    })


# --------------------------------------------------------------------------------------------------------------------
# Shape of a CSF and comparison with the human CSF
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CSFShape:
    """Peak and half-maximum band of a sampled CSF (NaN where undefined)."""

    peak_cpd: float
    peak_sensitivity: float
    half_low_cpd: float  # NaN when the curve does not fall to half its peak below the peak (open)
    half_high_cpd: float
    bandwidth_oct: float  # log2(half_high / half_low); with an open side, measured to the sweep's end (a lower bound)
    open_low: bool
    open_high: bool


def _half_crossing(u: np.ndarray, ls: np.ndarray, start: int, step: int, level: float) -> float:
    """Walk from `start` by `step` until log S < level; interpolate u there (NaN if never)."""
    i = start
    while 0 <= i + step < len(u):
        j = i + step
        if ls[j] < level:
            if not np.isfinite(ls[j]):
                return float(u[j])
            t = (ls[i] - level) / (ls[i] - ls[j])
            return float(u[i] + t * (u[j] - u[i]))
        i = j
    return float("nan")


def csf_shape(freqs_cpd: np.ndarray, sensitivity: np.ndarray) -> CSFShape:
    """Peak frequency (parabola through the three highest samples in log2 f × log10 S), and the full width at
    half maximum of S on log2 f, crossings interpolated linearly in (log2 f, log10 S). Zero sensitivity
    (undetected) counts as below half maximum."""
    f = np.asarray(freqs_cpd, dtype=np.float64)
    s = np.asarray(sensitivity, dtype=np.float64)
    if f.shape != s.shape or f.size < 3 or np.any(np.diff(f) <= 0):
        raise InputError("csf_shape needs ≥ 3 increasing frequencies and one sensitivity per frequency.")
    if not np.any(s > 0):
        nan = float("nan")
        return CSFShape(nan, 0.0, nan, nan, nan, True, True)
    u = np.log2(f)
    with np.errstate(divide="ignore"):
        ls = np.where(s > 0, np.log10(np.where(s > 0, s, 1.0)), -np.inf)
    i = int(np.argmax(ls))
    peak_u, peak_ls = float(u[i]), float(ls[i])
    if 0 < i < len(u) - 1 and np.all(np.isfinite(ls[i - 1 : i + 2])):
        a, b, _c = np.polyfit(u[i - 1 : i + 2], ls[i - 1 : i + 2], 2)
        if a < 0:
            peak_u = float(np.clip(-b / (2 * a), u[i - 1], u[i + 1]))
            peak_ls = float(np.polyval([a, b, _c], peak_u))
    level = float(ls[i]) - math.log10(2.0)
    lo_u = _half_crossing(u, ls, i, -1, level)
    hi_u = _half_crossing(u, ls, i, +1, level)
    open_low, open_high = not np.isfinite(lo_u), not np.isfinite(hi_u)
    bw = (hi_u if not open_high else u[-1]) - (lo_u if not open_low else u[0])
    return CSFShape(
        peak_cpd=float(2.0**peak_u),
        peak_sensitivity=float(10.0**peak_ls),
        half_low_cpd=float(2.0**lo_u) if not open_low else float("nan"),
        half_high_cpd=float(2.0**hi_u) if not open_high else float("nan"),
        bandwidth_oct=float(bw),
        open_low=open_low,
        open_high=open_high,
    )


def human_csf_curve(config: NetworkCSFConfig) -> np.ndarray:
    """The human CSF at the protocol's frequencies, display luminance and stimulus area."""
    from psychofeat.csf import get_csf

    return np.asarray(get_csf(config.human_csf).sensitivity(config.protocol.frequencies, config.luminance,
                                                            config.area_deg2), dtype=np.float64)


def compare_shapes(freqs_cpd: np.ndarray, s_net: np.ndarray, s_human: np.ndarray) -> dict[str, Any]:
    """Shape of the network CSF and its agreement with the human one (module docstring)."""
    from psychofeat.hvs.csf_check import fit_vertical_shift

    net, hum = csf_shape(freqs_cpd, s_net), csf_shape(freqs_cpd, s_human)
    ok = np.asarray(s_net) > 0
    out: dict[str, Any] = {
        "n_detected": int(ok.sum()),
        "peak_cpd": net.peak_cpd,
        "peak_ratio_oct": math.log2(net.peak_cpd / hum.peak_cpd) if np.isfinite(net.peak_cpd) else float("nan"),
        "half_low_cpd": net.half_low_cpd,
        "half_high_cpd": net.half_high_cpd,
        "bandwidth_oct": net.bandwidth_oct,
        "bandwidth_open": _open_label(net),
        "range_log10": float("nan"),
        "pearson_r": float("nan"),
        "rmse_shifted": float("nan"),
        "shift": float("nan"),
    }
    if ok.sum() >= 3:
        ln, lh = np.log10(np.asarray(s_net)[ok]), np.log10(np.asarray(s_human)[ok])
        fit = fit_vertical_shift(lh, ln)
        out.update(range_log10=float(np.ptp(ln)), pearson_r=float(np.corrcoef(ln, lh)[0, 1]), rmse_shifted=fit.rmse,
                   shift=fit.shift)
    return out


def _open_label(shape: CSFShape) -> str:
    return {(False, False): "", (True, False): "low", (False, True): "high", (True, True): "both"}[
        (shape.open_low, shape.open_high)
    ]


def summarize(curves: pd.DataFrame, config: NetworkCSFConfig) -> pd.DataFrame:
    """One row per (weights, layer) with shape and agreement, plus one row for the human CSF itself."""
    freqs = config.protocol.frequencies
    human = human_csf_curve(config)
    hs = csf_shape(freqs, human)
    rows: list[dict[str, Any]] = [{
        "weights": "human", "layer": config.human_csf, "n_detected": len(freqs), "peak_cpd": hs.peak_cpd,
        "peak_ratio_oct": 0.0, "half_low_cpd": hs.half_low_cpd, "half_high_cpd": hs.half_high_cpd,
        "bandwidth_oct": hs.bandwidth_oct, "bandwidth_open": _open_label(hs),
        "range_log10": float(np.ptp(np.log10(human))), "pearson_r": 1.0,
        "rmse_shifted": 0.0, "shift": 0.0, "median_slope": float("nan"), "n_undetected": 0, "n_below_range": 0,
    }]
    for (weights, layer), g in curves.groupby(["weights", "layer"], sort=False):
        g = g.set_index("freq_cpd").loc[freqs]
        rec = {"weights": weights, "layer": layer, **compare_shapes(freqs, g["sensitivity"].to_numpy(), human)}
        rec["median_slope"] = float(np.nanmedian(g["slope"])) if np.isfinite(g["slope"]).any() else float("nan")
        rec["n_undetected"] = int((g["status"] == STATUS_UNDETECTED).sum())
        rec["n_below_range"] = int((g["status"] == STATUS_BELOW).sum())
        rows.append(rec)
    return pd.DataFrame.from_records(rows)


__all__ = [
    "CSFShape",
    "LayerResponses",
    "NetworkCSFConfig",
    "ThresholdSearch",
    "bisect_log_contrast",
    "compare_shapes",
    "csf_shape",
    "human_csf_curve",
    "network_thresholds",
    "summarize",
]


#: names that moved up to the report module (which imports this one): old name -> new home
_MOVED_TO_REPORT = {"run_network_csf": "psychofeat.hvs.network_csf_report",
                    "build_report": "psychofeat.hvs.network_csf_report"}


#: deprecated aliases, resolved by name at call time so that this study does not import its report
__getattr__ = moved_names(__name__, _MOVED_TO_REPORT)
