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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from psychofeat.backbones.base import Backbone
from psychofeat.errors import InputError
from psychofeat.features import FeatureExtractor
from psychofeat.stimuli import ProbeProtocol, linear_grating, radial_grating, uniform_field

Response = Literal["map", "means"]
RESPONSES: tuple[str, ...] = ("map", "means")
STATUS_OK, STATUS_UNDETECTED, STATUS_BELOW = "ok", "undetected", "below_range"


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
# Bisection on log contrast, vectorised over many independent searches
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class ThresholdSearch:
    """Result of `bisect_log_contrast` for S searches: log10 threshold (NaN if undetected), status, local
    exponent p = dlog D / dlog c at threshold, and the number of evaluations requested."""

    log10_threshold: np.ndarray
    status: np.ndarray
    slope: np.ndarray
    n_requests: int


def _interpolate_crossing(
    lo: np.ndarray, hi: np.ndarray, d_lo: np.ndarray, d_hi: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """log c where log D reaches log target on the line through (lo, log d_lo), (hi, log d_hi); midpoint when
    that line is undefined (D ≤ 0 at the lower end). Returns (log c, slope)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ld_lo, ld_hi, lt = np.log10(d_lo), np.log10(d_hi), np.log10(target)
        slope = (ld_hi - ld_lo) / (hi - lo)
        x = lo + (lt - ld_lo) / slope
    ok = np.isfinite(x) & (slope > 0)
    x = np.where(ok, np.clip(x, lo, hi), 0.5 * (lo + hi))
    return x, np.where(ok, slope, np.nan)


def bisect_log_contrast(
    evaluate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    targets: np.ndarray,
    log_range: tuple[float | np.ndarray, float | np.ndarray],
    n_steps: int,
    on_step: Callable[[], None] | None = None,
) -> ThresholdSearch:
    """Find, for each of S searches, the log10 contrast where a monotone statistic D reaches `targets[s]`.

    `evaluate(search_index, log10_c)` returns D for those searches at those contrasts (one call per step:
    the caller batches them). Brackets start at `log_range` (two scalars, or one value per search); the first
    call evaluates both ends, each later call the midpoints; the final bracket is refined by log–log
    interpolation. A search whose D is below target at the upper end is ``undetected`` (NaN); one already at
    target at the lower end is ``below_range`` (reported at the lower end)."""
    targets = np.asarray(targets, dtype=np.float64)
    s = targets.size
    idx = np.arange(s)
    lo = np.broadcast_to(np.asarray(log_range[0], dtype=np.float64), (s,)).copy()
    hi = np.broadcast_to(np.asarray(log_range[1], dtype=np.float64), (s,)).copy()
    lo0 = lo.copy()
    if np.any(hi <= lo):
        raise InputError("bisection brackets must have lower end < upper end.")
    ends = evaluate(np.concatenate([idx, idx]), np.concatenate([lo, hi]))
    d_lo, d_hi = ends[:s].astype(np.float64), ends[s:].astype(np.float64)
    if on_step:
        on_step()
    status = np.full(s, STATUS_OK, dtype=object)
    status[d_hi < targets] = STATUS_UNDETECTED
    status[(d_lo >= targets) & (status == STATUS_OK)] = STATUS_BELOW
    active = np.flatnonzero(status == STATUS_OK)
    n_req = 2 * s
    for _ in range(n_steps):
        if active.size == 0:
            break
        mid = 0.5 * (lo[active] + hi[active])
        d_mid = np.asarray(evaluate(active, mid), dtype=np.float64)
        n_req += active.size
        up = d_mid >= targets[active]
        hi[active[up]], d_hi[active[up]] = mid[up], d_mid[up]
        lo[active[~up]], d_lo[active[~up]] = mid[~up], d_mid[~up]
        if on_step:
            on_step()
    logc, slope = _interpolate_crossing(lo, hi, d_lo, d_hi, targets)
    logc = np.where(status == STATUS_UNDETECTED, np.nan, logc)
    logc = np.where(status == STATUS_BELOW, lo0, logc)
    slope = np.where(status == STATUS_OK, slope, np.nan)
    return ThresholdSearch(logc, status, slope, n_req)


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


# --------------------------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------------------------


def run_network_csf(
    out: str | Path,
    model: str | Backbone = "vgg16",
    weights: Sequence[str | None] = (None, "random"),
    layers: Sequence[str] | None = None,
    config: NetworkCSFConfig | None = None,
    overwrite: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Network CSF of `layers` of `model` for each weights source; writes ``network_csf.csv`` (summary),
    ``network_csf_curves.csv`` (thresholds per layer and frequency), ``manifest.json`` and ``report.html``."""
    from psychofeat.backbones import load_backbone
    from psychofeat.io import provenance, run_folder, write_json, write_table

    config = config or NetworkCSFConfig()
    human_csf_curve(config)  # fail early on a bad CSF name or a sweep outside the CSF's domain
    backbones = [load_backbone(model, w, device=device) for w in weights]  # fail before creating the folder
    model_name = model if isinstance(model, str) else model.name
    with run_folder(out, overwrite) as run:  # built beside `out`, swapped in whole at the end
        out_dir = run.path
        curves, timing, wlabels, winfo = [], {}, [], []
        for w, bb in zip(weights, backbones, strict=True):
            label = _weights_label(w, bb)
            wlabels.append(label)
            winfo.append(bb.weights_info.to_dict())
            names = list(layers) if layers else list(bb.default_layers)
            t0 = time.perf_counter()
            df = network_thresholds(bb, names, config, device, progress, desc=f"network CSF {model_name} {label}")
            timing[label] = time.perf_counter() - t0
            df.insert(0, "weights", label)
            curves.append(df)
            del bb
        curves_df = pd.concat(curves, ignore_index=True)
        table = summarize(curves_df, config)
        write_table(out_dir / "network_csf_curves.csv", curves_df)
        write_table(out_dir / "network_csf.csv", table)
        info = provenance(command_name="hvs network-csf", model=model_name, weights=wlabels, weights_info=winfo,
                          layers=list(curves_df["layer"].unique()), config=config.to_dict(),
                          n_images={k: int(g["n_images"].iloc[0]) for k, g in curves_df.groupby("weights")},
                          timing_s=timing, device=device)
        write_json(out_dir / "manifest.json", info)
        build_report(table, curves_df, config, info).write(out_dir / "report.html")
    return table


def _weights_label(w: str | None, bb: Backbone) -> str:
    if w is None:
        return str(bb.weights_info.source or "pretrained")
    return str(w)


# --------------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------------


def build_report(table: pd.DataFrame, curves: pd.DataFrame, config: NetworkCSFConfig, info: dict[str, Any]) -> Any:
    """Self-contained HTML: method, comparison table, CSF curves per layer vs human, summary per layer."""
    from psychofeat.report import HtmlReport

    p = config.protocol
    rep = HtmlReport(f"Network contrast sensitivity: {info['model']} vs human ({config.human_csf})")
    rep.paragraph(
        f"Threshold of layer k at frequency f: the lowest Michelson contrast c with D_k(f, c) = "
        f"sqrt(mean over phases of ||a_k(grating) - a_k(gray)||^2) / ||a_k(gray)|| >= {config.criterion:g}, "
        f"a_k = the layer's {'whole feature map' if config.response == 'map' else 'channel means'}; found by "
        f"bisection on log10 contrast in [{config.contrast_range[0]:g}, {config.contrast_range[1]:g}] "
        f"({config.n_steps} steps + log-log interpolation). Stimuli: {p.freq_stimulus} gratings, {p.size} px, "
        f"{p.ppd:g} ppd, mean {p.mean:g}, {p.n_phase} phases, {p.n_freq} frequencies {p.f_min:g}-"
        f"{p.frequencies[-1]:.3g} cpd. Human CSF: {config.human_csf} at {config.luminance:g} cd/m2 and "
        f"{config.area_deg2:.3g} deg2 (the stimulus area). Sensitivity = 1/threshold; the criterion sets only "
        "the vertical position, so curves are compared by shape: peak, half-maximum bandwidth (octaves), "
        "Pearson r of log10 S and RMSE of log10 S after the best vertical shift."
    )
    rep.heading("Comparison with the human CSF")
    shown = table.copy()
    for c in ("peak_cpd", "peak_ratio_oct", "half_low_cpd", "half_high_cpd", "bandwidth_oct", "range_log10",
              "pearson_r", "rmse_shifted", "shift", "median_slope"):
        shown[c] = shown[c].astype(float).round(3)
    rep.table(shown, caption="network_csf.csv (bandwidth_open: side(s) where the curve stays above half its "
              "peak to the end of the sweep; bandwidth is then a lower bound)")
    rep.figure(_curves_figure(curves, config), caption="Network CSF per layer (each curve shifted vertically by its "
               "least-squares shift onto the human CSF) vs the human CSF (black). Gaps: not detected at "
               f"contrast {config.contrast_range[1]:g}.")
    rep.figure(_summary_figure(table), caption="Per layer: Pearson r of log10 sensitivities, peak frequency and "
               "half-maximum bandwidth; dashed: the human CSF's value.")
    rep.provenance(info)
    return rep


def _curves_figure(curves: pd.DataFrame, config: NetworkCSFConfig) -> Any:
    import matplotlib.pyplot as plt

    freqs = config.protocol.frequencies
    human = np.log10(human_csf_curve(config))
    layers = list(dict.fromkeys(curves["layer"]))
    weights = list(dict.fromkeys(curves["weights"]))
    ncol = min(4, len(layers))
    nrow = math.ceil(len(layers) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), sharex=True, sharey=True, squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, layer in zip(axes.ravel(), layers, strict=False):
        ax.plot(freqs, human, "k-", lw=2, label=f"human ({config.human_csf})")
        for j, w in enumerate(weights):
            g = curves[(curves["layer"] == layer) & (curves["weights"] == w)].set_index("freq_cpd").loc[freqs]
            s = g["sensitivity"].to_numpy()
            ok = s > 0
            ls = np.full(len(s), np.nan)
            ls[ok] = np.log10(s[ok])
            if ok.any():
                ls = ls - np.nanmean(ls[ok] - human[ok])
            ax.plot(freqs, ls, styles[j % len(styles)], color=f"C{j}", marker=".", ms=3, label=w)
        ax.set_xscale("log")
        ax.set_title(layer, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(layers):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("cpd")
    for ax in axes[:, 0]:
        ax.set_ylabel("log10 S (shifted)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _summary_figure(table: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    human = table[table["weights"] == "human"].iloc[0]
    net = table[table["weights"] != "human"]
    layers = list(dict.fromkeys(net["layer"]))
    x = np.arange(len(layers))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for j, (w, g) in enumerate(net.groupby("weights", sort=False)):
        g = g.set_index("layer").loc[layers]
        axes[0].plot(x, g["pearson_r"], "o-", color=f"C{j}", label=w)
        axes[1].plot(x, g["peak_cpd"], "o-", color=f"C{j}", label=w)
        axes[2].plot(x, g["bandwidth_oct"], "o-", color=f"C{j}", label=w)
    axes[1].set_yscale("log")
    for ax, col, lab in zip(axes, ("pearson_r", "peak_cpd", "bandwidth_oct"),
                            ("Pearson r (log10 S)", "peak frequency [cpd]", "bandwidth [octaves]"), strict=True):
        ax.axhline(float(human[col]), color="k", ls="--", lw=1)
        ax.set_xticks(x, layers, rotation=60, fontsize=7)
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


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
    "run_network_csf",
    "summarize",
]
