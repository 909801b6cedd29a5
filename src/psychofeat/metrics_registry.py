"""Named, ready-to-use metrics with their metadata, in the manner of pyiqa's `create_metric` / `list_models`.

Every deep metric is built from a selection bundled with the package (`psychofeat.bundled`), so no analysis is
needed: `create_metric("vgg16-pe-top25")` is the top-25 % PE channels of the 13 ReLU layers of VGG-16 with its
original ImageNet weights; `-pe-bottom25` is the matching control and `-all` every channel of the same layers.
PSNR and SSIM are listed too, so the `distance` command and user code can mix them with the deep metrics.
Listing and metadata read only the bundle's index: no torch import, no network built.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from psychofeat import bundled
from psychofeat.errors import InputError, unknown_name

#: variants derived from each bundled selection: name suffix -> (selection method, description)
VARIANTS = {
    "pe-top25": ("top", "the top 25 % of each analysed layer's channels by Perceptual Efficacy"),
    "pe-bottom25": ("bottom", "the bottom 25 % by PE among responsive channels (the control of pe-top25)"),
    "all": ("all", "every channel of the analysed layers (the same layers as pe-top25)"),
}
DEEP_MIN_SIZE = 32  # psychofeat.distance.MIN_SIZE (the metric's and the loss's), not imported: that imports torch


@dataclass(frozen=True)
class MetricInfo:
    """What a user needs to know before using a metric (pyiqa-style metadata)."""

    name: str
    kind: str  # "deep" (selected-channel distance) or "classic"
    description: str
    lower_better: bool
    input_range: tuple[float, float] = (0.0, 1.0)
    min_size: int = 1  # smallest height/width in pixels; any larger size works (no resizing)
    network: str | None = None
    weights: dict[str, Any] = field(default_factory=dict)  # source and parameter checksum of the network
    selection: str | None = None  # "pe": the bundled selection of `network`
    method: str | None = None  # top / bottom / all
    fraction: float | None = None
    channels: dict[str, int] = field(default_factory=dict)  # layer -> channels used

    @property
    def n_channels(self) -> int:
        return sum(self.channels.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_channels": self.n_channels}


def _deep_entries() -> dict[str, MetricInfo]:
    out: dict[str, MetricInfo] = {}
    for model in bundled.bundled_models():
        e = bundled.entry(model)
        pct = f"{100 * e.fraction:g} %"
        for suffix, (method, text) in VARIANTS.items():
            counts = e.n_channels if method == "all" else e.n_selected
            out[f"{model}-{suffix}"] = MetricInfo(
                name=f"{model}-{suffix}", kind="deep", lower_better=True, min_size=DEEP_MIN_SIZE,
                description="unit-normalised feature distance over " + text.replace("25 %", pct),
                network=model, weights=dict(e.weights), selection=bundled.KEYWORD, method=method,
                fraction=None if method == "all" else e.fraction, channels={k: int(counts[k]) for k in e.layers},
            )
    return out


CLASSIC = {
    "psnr": MetricInfo("psnr", "classic", "peak signal-to-noise ratio in dB over all RGB channels (data range 1)",
                       lower_better=False),
    "ssim": MetricInfo("ssim", "classic", "SSIM (Wang et al. 2004; 11×11 Gaussian window, σ 1.5) averaged over RGB",
                       lower_better=False, min_size=11),
}


def _entries() -> dict[str, MetricInfo]:
    return {**_deep_entries(), **CLASSIC}


def list_metrics(kind: str | None = None) -> list[str]:
    """Names accepted by `create_metric` (kind: None for all, "deep" or "classic")."""
    if kind not in (None, "deep", "classic"):
        raise InputError(f"kind must be None, 'deep' or 'classic', got {kind!r}.")
    return [n for n, info in _entries().items() if kind is None or info.kind == kind]


def metric_info(name: str) -> MetricInfo:
    """The metadata of metric `name` (an error suggesting close names when unknown)."""
    entries = _entries()
    if name not in entries:
        raise unknown_name("metric", name, entries, "See psychofeat.list_metrics().")
    return entries[name]


def create_metric(name: str, device: str | Any = "cpu", as_loss: bool = False, **kwargs: Any) -> Any:
    """Build metric `name` as an `nn.Module` taking two N×3×H×W batches in [0, 1] (one value per pair: the default
    here is `reduction="none"`, where a bare `PerceptualDistance` defaults to the batch's mean).

    `as_loss=True` gives the matching `PerceptualLoss` (deep metrics only). Extra keyword arguments go to
    `PerceptualDistance` / `PerceptualLoss` (e.g. `dtype="bfloat16"`, `reduction="mean"`, `layers=[...]`). The
    module carries the entry it was built from as `.info`; `.lower_better` is its class's.
    """
    info = metric_info(name)
    module: Any
    if info.kind == "classic":
        if as_loss:
            raise InputError(f"{name} is a similarity (higher is better), not a loss; use a deep metric, or "
                             "PerceptualLoss(pixel_weight=..., pixel_loss='mse') for a pixel loss.")
        from psychofeat.classic import PSNR, SSIM

        module = (PSNR if name == "psnr" else SSIM)(reduction=kwargs.pop("reduction", "none"), **kwargs).to(device)
    elif as_loss:
        from psychofeat.loss import PerceptualLoss

        module = PerceptualLoss(info.network or "", selection=info.selection, which=info.method,
                                fraction=info.fraction, device=device, **kwargs)
    else:
        from psychofeat.metric import PerceptualDistance

        kwargs.setdefault("reduction", "none")
        module = PerceptualDistance(info.network or "", selection=info.selection, which=info.method,
                                    fraction=info.fraction, device=device, **kwargs)
    module.info = info
    return module
