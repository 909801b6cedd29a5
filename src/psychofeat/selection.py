"""Channel selections: which channels of which layers a metric or loss uses.

`psychofeat analyze` writes `selection.json`: the PE of every channel of every analysed layer (so any
top-k / bottom-k / random-k can be derived later) plus the default top-k selection. Selections record the
network and weights they were computed for; using one with another network is refused.

Choices (documented in docs/science.md): k = max(1, round(fraction · n_channels)) per layer; unresponsive
channels (PE = 0 because they do not respond to gratings) are excluded from bottom-k and random-k pools, so
the controls are not trivially weakened by silent channels.

Soft selections (`SOFT_METHODS`) weight every channel by a function of its scores instead of cutting at k:
`channel_weights[layer]` holds one weight per channel of the layer, scaled so that the largest is 1; the selected
channels are those with a positive weight. How the distance uses them is `psychofeat.distance`'s docstring: a
channel of weight w enters as √w·φ, so weights that are 1 on a subset and 0 elsewhere are exactly that hard
selection and equal weights are exactly all channels.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from psychofeat.errors import DataMissingError, InputError, SelectionError, WeightsError
from psychofeat.io import read_json, write_json

if TYPE_CHECKING:
    from psychofeat.backbones.base import Backbone

FORMAT = "psychofeat.selection/1"
FORMAT_PREFIX, FORMAT_VERSION = "psychofeat.selection/", 1
#: more channels than any layer has: a larger count in a file is damage (and would allocate its masks)
MAX_CHANNELS = 1 << 20
HARD_METHODS = ("top", "bottom", "random", "all")
#: soft weightings: w ∝ PE, ∝ rank of PE, ∝ mu1, ∝ mu2 (unresponsive channels 0), and the control "soft-random":
#: the soft-pe weights of the responsive channels shuffled among them (seeded)
SOFT_METHODS = ("soft-pe", "soft-rank", "soft-mu1", "soft-mu2", "soft-random")
METHODS = HARD_METHODS + SOFT_METHODS


class ChannelWeights(NamedTuple):
    """Channels of one layer with their weights (positive, aligned with `indices`): one layer of a soft selection."""

    indices: np.ndarray
    weights: np.ndarray


@dataclass
class Selection:
    """Selected channel indices per layer (+ the PE ranking they came from, when known)."""

    model: str
    channels: dict[str, np.ndarray]  # layer -> sorted int64 indices
    n_channels: dict[str, int]
    method: str = "all"
    fraction: float | None = None
    seed: int | None = None
    weights: dict[str, Any] = field(default_factory=dict)  # source, params_sha256
    pe: dict[str, np.ndarray] | None = None  # layer -> PE of every channel
    unresponsive: dict[str, np.ndarray] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    mu1: dict[str, np.ndarray] | None = None  # layer -> mu1 of every channel (soft-mu1)
    mu2: dict[str, np.ndarray] | None = None  # layer -> mu2 of every channel (soft-mu2)
    channel_weights: dict[str, np.ndarray] | None = None  # layer -> weight of every channel (soft selections)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def all_channels(
        cls, model: str, n_channels: Mapping[str, int], weights: Mapping[str, Any] | None = None
    ) -> Selection:
        return cls(
            model=model,
            channels={k: np.arange(int(n), dtype=np.int64) for k, n in n_channels.items()},
            n_channels={k: int(n) for k, n in n_channels.items()},
            method="all",
            weights=dict(weights or {}),
        )

    @classmethod
    def from_scores(
        cls,
        scores: Any,
        model: str,
        weights: Mapping[str, Any] | None = None,
        method: str = "top",
        fraction: float = 0.25,
        seed: int = 0,
        provenance: Mapping[str, Any] | None = None,
    ) -> Selection:
        """From the per-channel table of `psychofeat analyze` (columns layer, channel, pe, unresponsive; mu1 and
        mu2 are kept when present, for the soft-mu1 / soft-mu2 weightings)."""
        pe: dict[str, np.ndarray] = {}
        dead: dict[str, np.ndarray] = {}
        extra: dict[str, dict[str, np.ndarray]] = {c: {} for c in ("mu1", "mu2") if c in scores.columns}
        for layer, df in scores.groupby("layer", sort=False):
            df = df.sort_values("channel")
            if not np.array_equal(df["channel"].to_numpy(), np.arange(len(df))):
                raise InputError(f"scores for layer {layer!r} do not list channels 0..{len(df) - 1} exactly once.")
            pe[str(layer)] = df["pe"].to_numpy(dtype=np.float64)
            dead[str(layer)] = df["unresponsive"].to_numpy(dtype=bool)
            for col, store in extra.items():
                store[str(layer)] = df[col].to_numpy(dtype=np.float64)
        base = cls(
            model=model,
            channels={},
            n_channels={k: len(v) for k, v in pe.items()},
            weights=dict(weights or {}),
            pe=pe,
            unresponsive=dead,
            provenance=dict(provenance or {}),
            mu1=extra.get("mu1"),
            mu2=extra.get("mu2"),
        )
        return base.select(method, fraction, seed)

    # -- deriving selections ------------------------------------------------------------------------
    def select(self, method: str, fraction: float | None = None, seed: int = 0) -> Selection:
        """A hard selection (top / bottom / random k, all) or a soft weighting (`SOFT_METHODS`; `fraction` unused)."""
        if method == "all":
            return replace(self, channels={k: np.arange(n, dtype=np.int64) for k, n in self.n_channels.items()},
                           method="all", fraction=None, seed=None, channel_weights=None)
        if method not in METHODS:
            raise InputError(f"unknown selection method {method!r}; choose one of {', '.join(METHODS)}.")
        if method in SOFT_METHODS:
            return self._soft(method, seed)
        if fraction is None or not 0 < fraction <= 1:
            raise InputError(f"selection fraction must be in (0, 1], got {fraction!r}.")
        if self.pe is None:
            raise InputError("this selection carries no PE ranking; top/bottom/random need the analyze output.")
        rng = np.random.default_rng(seed)
        chosen: dict[str, np.ndarray] = {}
        for layer, pe in self.pe.items():
            n = pe.size
            # unresponsive channels are never selected (SCIENCE.md): with fewer than k responsive channels a layer
            # gets all of them (none at all: an empty set, which `empty_layers` reports and the metric refuses)
            pool = np.flatnonzero(self.responsive(layer))
            k = min(max(1, int(round(fraction * n))), pool.size)
            if method == "top":
                order = pool[np.lexsort((pool, -pe[pool]))]  # PE descending, ties by channel index
                idx = order[:k]
            elif method == "bottom":
                order = pool[np.lexsort((pool, pe[pool]))]
                idx = order[:k]
            else:
                idx = rng.choice(pool, size=k, replace=False)
            chosen[layer] = np.sort(idx.astype(np.int64))
        return replace(self, channels=chosen, method=method, fraction=float(fraction),
                       seed=seed if method == "random" else None, channel_weights=None)

    def empty_layers(self) -> list[str]:
        """Layers with no selected channel (e.g. every channel unresponsive): a metric cannot use them."""
        return [layer for layer, idx in self.channels.items() if len(idx) == 0]

    def _dead(self, layer: str) -> np.ndarray:
        n = self.n_channels[layer]
        return self.unresponsive[layer] if self.unresponsive is not None else np.zeros(n, bool)

    def responsive(self, layer: str) -> np.ndarray:
        """Mask of the channels of `layer` that respond to gratings (the pool of the controls)."""
        return ~self._dead(layer)

    def _soft(self, method: str, seed: int) -> Selection:
        """Weights from the scores of every channel, largest 1 per layer; unresponsive channels get 0."""
        if method == "soft-random":
            return self._soft("soft-pe", seed).shuffled(seed, method)
        source = {"soft-mu1": self.mu1, "soft-mu2": self.mu2}.get(method, self.pe)
        if source is None:
            what = method.removeprefix("soft-") if method in ("soft-mu1", "soft-mu2") else "PE"
            raise InputError(f"{method} needs the {what} of every channel, which this selection does not carry; "
                             "use a selection.json written by `psychofeat analyze` (re-run it if it predates "
                             "soft selections).")
        weights: dict[str, np.ndarray] = {}
        for layer, score in source.items():
            live = ~self._dead(layer)
            w = np.where(live, np.clip(np.asarray(score, dtype=np.float64), 0.0, None), 0.0)
            if method == "soft-rank":  # rank of PE among the responsive channels: 1 = lowest, ties averaged
                from scipy.stats import rankdata

                w = np.zeros_like(w)
                w[live] = rankdata(np.asarray(score, dtype=np.float64)[live])
            if not np.isfinite(w).all() or w.max(initial=0.0) <= 0:
                raise InputError(f"{method}: every channel of layer {layer!r} has weight 0 (no responsive channel "
                                 "with a positive score); restrict the metric to other layers.")
            weights[layer] = w
        return self.with_weights(weights, method)

    def shuffled(self, seed: int, method: str | None = None) -> Selection:
        """This soft selection's weights shuffled among each layer's responsive channels (seeded): the chance
        control of a weighting, with the same weight distribution assigned without regard to the scores."""
        if self.channel_weights is None:
            raise InputError("only a soft selection's weights can be shuffled; make one with select('soft-…').")
        rng = np.random.default_rng(seed)
        weights = {}
        for layer, w in self.channel_weights.items():
            w = w.copy()
            live = self.responsive(layer)
            w[live] = rng.permutation(w[live])
            weights[layer] = w
        return replace(self.with_weights(weights, method or f"shuffled-{self.method}"), seed=seed)

    def with_weights(self, weights: Mapping[str, np.ndarray], method: str = "custom-soft") -> Selection:
        """A soft selection from explicit non-negative weights of every channel of each layer (scaled to max 1)."""
        out: dict[str, np.ndarray] = {}
        for layer, n in self.n_channels.items():
            if layer not in weights:
                raise InputError(f"no weights given for layer {layer!r}.")
            w = np.asarray(weights[layer], dtype=np.float64)
            if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.max(initial=0.0) <= 0:
                raise InputError(f"weights of layer {layer!r} must be {n} finite non-negative numbers, not all 0.")
            out[layer] = w / w.max()
        return replace(self, channels={k: np.flatnonzero(w > 0).astype(np.int64) for k, w in out.items()},
                       method=method, fraction=None, seed=None, channel_weights=out)

    def weights_of(self, layer: str) -> np.ndarray | None:
        """Weights of the selected channels of `layer` (aligned with `channels[layer]`); None: all 1 (hard)."""
        if self.channel_weights is None:
            return None
        w = self.channel_weights[layer][self.channels[layer]]
        return None if bool((w == 1.0).all()) else w

    def channel_sets(self) -> dict[str, np.ndarray | ChannelWeights]:
        """{layer: indices} of a hard selection, {layer: ChannelWeights} where a layer is weighted."""
        out: dict[str, np.ndarray | ChannelWeights] = {}
        for layer, idx in self.channels.items():
            w = self.weights_of(layer)
            out[layer] = idx if w is None else ChannelWeights(idx, w)
        return out

    @property
    def is_soft(self) -> bool:
        return self.channel_weights is not None

    def top(self, fraction: float = 0.25) -> Selection:
        return self.select("top", fraction)

    def bottom(self, fraction: float = 0.25) -> Selection:
        return self.select("bottom", fraction)

    def random(self, fraction: float = 0.25, seed: int = 0) -> Selection:
        return self.select("random", fraction, seed)

    def restrict(self, layers: Sequence[str]) -> Selection:
        """Keep only `layers` (in the given order)."""
        missing = [lay for lay in layers if lay not in self.channels]
        if missing:
            raise InputError(f"layers {missing} are not in this selection (it has {list(self.channels)}).")
        keep = list(layers)

        def sub(d: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
            return {k: d[k] for k in keep} if d is not None else None

        return replace(
            self,
            channels={k: self.channels[k] for k in keep},
            n_channels={k: self.n_channels[k] for k in keep},
            pe=sub(self.pe), unresponsive=sub(self.unresponsive), mu1=sub(self.mu1), mu2=sub(self.mu2),
            channel_weights=sub(self.channel_weights),
        )

    # -- views ------------------------------------------------------------------------------------
    @property
    def layers(self) -> list[str]:
        return list(self.channels)

    def names(self) -> list[str]:
        """Selected channels as 'layer:channel' strings."""
        return [f"{layer}:{int(c)}" for layer, idx in self.channels.items() for c in idx]

    def n_selected(self) -> int:
        return int(sum(len(v) for v in self.channels.values()))

    def label(self) -> str:
        if self.method == "all":
            return "all"
        if self.is_soft:
            return self.method + (f" (seed {self.seed})" if self.seed is not None else "")
        frac = f"{100 * (self.fraction or 0):g}%"
        return f"{self.method}-{frac}" + (f" (seed {self.seed})" if self.method == "random" else "")

    def check_compatible(self, model: str, n_channels: Mapping[str, int], params_sha256: str | None = None) -> None:
        """Refuse a selection computed for another network, other weights, or other layer sizes."""
        if self.model != model:
            raise InputError(
                f"this selection was computed for model {self.model!r}, not {model!r}. Run `psychofeat analyze "
                f"--model {model}` to get a selection for it."
            )
        for layer, n in self.n_channels.items():
            if layer not in n_channels:
                raise InputError(f"selection layer {layer!r} does not exist in {model}.")
            if int(n_channels[layer]) != int(n):
                raise InputError(f"selection layer {layer!r} has {n} channels but {model}'s has {n_channels[layer]}.")
        want = self.weights.get("params_sha256")
        if params_sha256 and want and want != params_sha256:
            raise WeightsError(
                f"this selection was computed with other weights ({self.weights.get('source')}, params "
                f"{str(want)[:12]}…) than the network's ({params_sha256[:12]}…). Pass the same --weights."
            )

    def check_backbone(self, backbone: Backbone) -> None:
        """`check_compatible` against a loaded network: its name, its layers' channel counts, its weights."""
        self.check_compatible(backbone.name, backbone.layer_channels(list(self.n_channels)),
                              backbone.weights_info.params_sha256)

    # -- (de)serialisation ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": FORMAT,
            "model": self.model,
            "weights": self.weights,
            "method": self.method,
            "fraction": self.fraction,
            "seed": self.seed,
            "n_channels": self.n_channels,
            "channels": {k: v.tolist() for k, v in self.channels.items()},
        }
        if self.pe is not None:
            d["pe"] = {k: v.tolist() for k, v in self.pe.items()}
        if self.unresponsive is not None:
            d["unresponsive"] = {k: np.flatnonzero(v).tolist() for k, v in self.unresponsive.items()}
        for key in ("mu1", "mu2", "channel_weights"):
            val = getattr(self, key)
            if val is not None:
                d[key] = {k: v.tolist() for k, v in val.items()}
        d["provenance"] = self.provenance
        return d

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: Any, source: str = "the selection") -> Selection:
        """A selection from its JSON form, checked against the schema first (`check_schema`)."""
        check_schema(d, source)
        n_channels = {k: int(v) for k, v in d["n_channels"].items()}

        def floats(key: str) -> dict[str, np.ndarray] | None:
            val = d.get(key)
            if val is None:
                return None
            return {k: np.array([np.nan if x is None else x for x in v], dtype=np.float64) for k, v in val.items()}

        dead = None
        if d.get("unresponsive") is not None:
            dead = {}
            for k, idx in d["unresponsive"].items():
                m = np.zeros(n_channels[k], dtype=bool)
                m[np.asarray(idx, dtype=np.int64)] = True
                dead[k] = m
        sel = cls(
            model=str(d["model"]),
            channels={k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in d["channels"].items()},
            n_channels=n_channels,
            method=str(d.get("method", "custom")),
            fraction=None if d.get("fraction") is None else float(d["fraction"]),
            seed=d.get("seed"),
            weights=dict(d["weights"]),
            pe=floats("pe"),
            unresponsive=dead,
            provenance=dict(d.get("provenance") or {}),
            mu1=floats("mu1"),
            mu2=floats("mu2"),
            channel_weights=floats("channel_weights"),
        )
        sel.check(source)
        return sel

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Selection:
        path = Path(path)
        if path.is_dir():
            raise InputError(f"selection {path} is a folder; give the selection.json in it.")
        if not path.is_file():
            raise DataMissingError(f"selection file {path} does not exist (it is written by `psychofeat analyze`).")
        try:
            data = read_json(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SelectionError(f"selection file {path} is not valid JSON: {exc}") from exc
        except OSError as exc:
            raise SelectionError(f"cannot read selection file {path}: {exc.strerror or exc}.") from exc
        return cls.from_dict(data, f"selection file {path}")

    def check(self, source: str = "the selection") -> None:
        """Refuse a selection whose channels cannot be used: indices that are not unique integers in range, layers
        without a channel count, per-channel arrays of the wrong length, soft weights that are not finite and ≥ 0.
        Run on every selection a metric, loss or experiment is built from, however it was made."""
        def bad(msg: str) -> SelectionError:
            return SelectionError(f"{source}: {msg}")

        for layer, idx in self.channels.items():
            if layer not in self.n_channels:
                raise bad(f"layer {layer!r} has channels but no entry in n_channels.")
            n = int(self.n_channels[layer])
            arr = np.asarray(idx)
            if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
                raise bad(f"channels of layer {layer!r} must be a list of integer indices, got {arr.dtype} "
                          f"{arr.shape}.")
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise bad(f"channels of layer {layer!r} must be in [0, {n - 1}] (it has {n} channels), got "
                          f"{int(arr.min() if arr.min() < 0 else arr.max())}.")
            if np.unique(arr).size != arr.size:
                raise bad(f"channels of layer {layer!r} list index {int(_first_duplicate(arr))} more than once.")
        for key in ("pe", "mu1", "mu2", "channel_weights", "unresponsive"):
            val = getattr(self, key)
            if val is None:
                continue
            for layer, n in self.n_channels.items():
                if layer not in val:
                    raise bad(f"{key} has no entry for layer {layer!r}.")
                if np.shape(val[layer]) != (int(n),):
                    raise bad(f"{key} of layer {layer!r} must have one value per channel ({n}), got "
                              f"{np.shape(val[layer])}.")
        if self.channel_weights is not None:
            for layer, w in self.channel_weights.items():
                if not np.isfinite(w).all() or (w < 0).any():
                    raise bad(f"channel_weights of layer {layer!r} must be finite and ≥ 0.")
                if layer in self.channels and not np.array_equal(np.flatnonzero(w > 0), np.sort(self.channels[layer])):
                    raise bad(f"channels of layer {layer!r} must be exactly those of positive channel_weights.")


def _first_duplicate(arr: np.ndarray) -> int:
    seen: set[int] = set()
    for v in arr.tolist():
        if v in seen:
            return v
        seen.add(v)
    return -1


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_schema(d: Any, source: str = "the selection") -> None:
    """The selection-file schema (format psychofeat.selection/1), checked on load: every violation is a
    `SelectionError` naming the key and what was expected.

    Required: format, model (text), weights (an object: source, params_sha256 — the checksum a metric compares
    with its network's; `{}` marks a selection tied to no weights), n_channels ({layer: channel count ≥ 1}),
    channels ({layer: unique integer indices in [0, count)}, the same layers). Optional: method (text), fraction
    (null or in (0, 1]), seed (null or integer), pe / mu1 / mu2 ({layer: one number or null per channel}),
    unresponsive ({layer: unique indices}), channel_weights ({layer: one finite number ≥ 0 per channel}),
    provenance (an object). Other keys are ignored.
    """
    def bad(msg: str) -> SelectionError:
        return SelectionError(f"{source}: {msg}")

    if not isinstance(d, Mapping):
        raise bad(f"expected a JSON object (format {FORMAT!r}), got {type(d).__name__}.")
    fmt = d.get("format")
    if not (isinstance(fmt, str) and fmt.startswith(FORMAT_PREFIX)):
        raise bad(f"not a psychofeat selection (format {fmt!r}, expected {FORMAT!r}).")
    version = fmt.removeprefix(FORMAT_PREFIX)
    if version != str(FORMAT_VERSION):
        newer = version.isdigit() and int(version) > FORMAT_VERSION
        raise bad(f"format {fmt!r} " + ("was written by a newer psychofeat; upgrade psychofeat to read it."
                                         if newer else f"is not known; expected {FORMAT!r}."))
    for key in ("model", "weights", "n_channels", "channels"):
        if key not in d:
            raise bad(f"the key {key!r} is missing; a selection written by `psychofeat analyze` has it.")
    if not isinstance(d["model"], str) or not d["model"]:
        raise bad(f"'model' must be the network's name (text), got {d['model']!r}.")
    w = d["weights"]
    if not isinstance(w, Mapping):
        raise bad(f"'weights' must be an object with source and params_sha256, got {type(w).__name__}.")
    for key in ("source", "params_sha256", "sha256"):
        if key in w and w[key] is not None and (not isinstance(w[key], str) or not w[key]):
            raise bad(f"'weights.{key}' must be text, got {w[key]!r}.")
    n_ch = d["n_channels"]
    if not isinstance(n_ch, Mapping) or not n_ch:
        raise bad("'n_channels' must be an object {layer: number of channels} with at least one layer.")
    for layer, n in n_ch.items():
        if not _is_int(n) or not 1 <= n <= MAX_CHANNELS:
            raise bad(f"'n_channels.{layer}' must be a positive integer (at most {MAX_CHANNELS}), got {n!r}.")
    layers = set(n_ch)

    def per_layer(key: str, exact: bool = True) -> Mapping[str, Any] | None:
        val = d.get(key)
        if val is None:
            return None
        if not isinstance(val, Mapping):
            raise bad(f"'{key}' must be an object {{layer: list}}, got {type(val).__name__}.")
        extra, missing = set(val) - layers, layers - set(val)
        if extra:
            raise bad(f"'{key}' has layer {sorted(extra)[0]!r}, which is not in n_channels {sorted(layers)}.")
        if exact and missing:
            raise bad(f"'{key}' has no entry for layer {sorted(missing)[0]!r} (n_channels lists it).")
        for layer, v in val.items():
            if not isinstance(v, list):
                raise bad(f"'{key}.{layer}' must be a list, got {type(v).__name__}.")
        return val

    def indices(key: str) -> None:
        val = per_layer(key)
        for layer, idx in (val or {}).items():
            n = n_ch[layer]
            for i in idx:
                if not _is_int(i):
                    raise bad(f"'{key}.{layer}' must hold integer channel indices, got {i!r}.")
                if not 0 <= i < n:
                    raise bad(f"'{key}.{layer}' holds channel {i}, outside [0, {n - 1}] (the layer has {n} "
                              "channels).")
            if len(set(idx)) != len(idx):
                raise bad(f"'{key}.{layer}' lists channel {_first_duplicate(np.asarray(idx))} more than once.")

    if d["channels"] is None:
        raise bad("'channels' must be an object {layer: channel indices}, got null.")
    indices("channels")
    indices("unresponsive")
    for key in ("pe", "mu1", "mu2", "channel_weights"):
        val = per_layer(key)
        for layer, v in (val or {}).items():
            n = n_ch[layer]
            if len(v) != n:
                raise bad(f"'{key}.{layer}' must hold one value per channel ({n}), got {len(v)}.")
            if key == "channel_weights":
                if any(not _is_number(x) or not np.isfinite(x) or x < 0 for x in v):
                    raise bad(f"'channel_weights.{layer}' must hold finite numbers ≥ 0.")
            elif any(x is not None and not _is_number(x) for x in v):
                raise bad(f"'{key}.{layer}' must hold numbers (or null), got "
                          f"{next(x for x in v if x is not None and not _is_number(x))!r}.")
    if "method" in d and not isinstance(d["method"], str):
        raise bad(f"'method' must be text, got {d['method']!r}.")
    frac = d.get("fraction")
    if frac is not None and (not _is_number(frac) or not 0 < frac <= 1):
        raise bad(f"'fraction' must be null or a number in (0, 1], got {frac!r}.")
    seed = d.get("seed")
    if seed is not None and not _is_int(seed):
        raise bad(f"'seed' must be null or an integer, got {seed!r}.")
    if d.get("provenance") is not None and not isinstance(d["provenance"], Mapping):
        raise bad(f"'provenance' must be an object, got {type(d['provenance']).__name__}.")


def load_ranked(path: str | os.PathLike[str], layers: Sequence[str], model: str | None = None,
                role: str = "the network") -> Selection:
    """A `psychofeat analyze` selection.json that ranks by PE every one of `layers` (of `model`, when given).

    What an experiment deriving top/bottom/random-k from a file needs, checked before any work starts.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--selection {path} is a folder; give the selection.json in it.")
    if not path.is_file():
        raise DataMissingError(f"--selection {path} does not exist. Make one with `psychofeat analyze --out DIR` "
                               "(same --model/--weights; it writes DIR/selection.json).")
    sel = Selection.load(path)
    if model is not None and sel.model != model:
        raise InputError(f"--selection {path} ranks channels of {sel.model!r}, but {role} is {model!r}; run "
                         f"`psychofeat analyze --model {model}`.")
    if sel.pe is None:
        raise InputError(f"--selection {path} holds no PE scores, so top/bottom/random-k cannot be derived; use the "
                         "selection.json that `psychofeat analyze` writes.")
    missing = [lay for lay in layers if lay not in sel.pe]
    if missing:
        raise InputError(f"--selection {path} has no scores for layer(s) {missing}; it covers {list(sel.pe)}.")
    return sel


def parse_channel(name: str) -> tuple[str, int]:
    """'relu3_3:17' -> ('relu3_3', 17)."""
    layer, sep, ch = name.rpartition(":")
    if not sep or not layer or not ch.isdigit():
        raise InputError(f"channel names look like 'layer:channel' (e.g. 'relu3_3:17'), got {name!r}.")
    return layer, int(ch)
