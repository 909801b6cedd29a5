"""Channel selections: which channels of which layers a metric or loss uses.

`psychofeat analyze` writes `selection.json`: the PE of every channel of every analysed layer (so any
top-k / bottom-k / random-k can be derived later) plus the default top-k selection. Selections record the
network and weights they were computed for; using one with another network is refused.

Choices (documented in docs/science.md): k = max(1, round(fraction · n_channels)) per layer; unresponsive
channels (PE = 0 because they do not respond to gratings) are excluded from bottom-k and random-k pools, so
the controls are not trivially weakened by silent channels.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from psychofeat.errors import InputError, WeightsError
from psychofeat.io import read_json, write_json

FORMAT = "psychofeat.selection/1"
METHODS = ("top", "bottom", "random", "all")


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

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def all_channels(cls, model: str, n_channels: Mapping[str, int], weights: Mapping[str, Any] | None = None) -> Selection:
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
        """From the per-channel table of `psychofeat analyze` (columns layer, channel, pe, unresponsive)."""
        pe: dict[str, np.ndarray] = {}
        dead: dict[str, np.ndarray] = {}
        for layer, df in scores.groupby("layer", sort=False):
            df = df.sort_values("channel")
            if not np.array_equal(df["channel"].to_numpy(), np.arange(len(df))):
                raise InputError(f"scores for layer {layer!r} do not list channels 0..{len(df) - 1} exactly once.")
            pe[str(layer)] = df["pe"].to_numpy(dtype=np.float64)
            dead[str(layer)] = df["unresponsive"].to_numpy(dtype=bool)
        base = cls(
            model=model,
            channels={},
            n_channels={k: len(v) for k, v in pe.items()},
            weights=dict(weights or {}),
            pe=pe,
            unresponsive=dead,
            provenance=dict(provenance or {}),
        )
        return base.select(method, fraction, seed)

    # -- deriving selections ------------------------------------------------------------------------
    def select(self, method: str, fraction: float | None = None, seed: int = 0) -> Selection:
        if method == "all":
            return replace(self, channels={k: np.arange(n, dtype=np.int64) for k, n in self.n_channels.items()},
                           method="all", fraction=None, seed=None)
        if method not in METHODS:
            raise InputError(f"unknown selection method {method!r}; choose one of {', '.join(METHODS)}.")
        if fraction is None or not 0 < fraction <= 1:
            raise InputError(f"selection fraction must be in (0, 1], got {fraction!r}.")
        if self.pe is None:
            raise InputError("this selection carries no PE ranking; top/bottom/random need the analyze output.")
        rng = np.random.default_rng(seed)
        chosen: dict[str, np.ndarray] = {}
        for layer, pe in self.pe.items():
            n = pe.size
            k = max(1, int(round(fraction * n)))
            dead = self.unresponsive[layer] if self.unresponsive is not None else np.zeros(n, bool)
            live = np.flatnonzero(~dead)
            pool = live if live.size >= k else np.arange(n)  # the controls' pool: responsive channels
            if method == "top":
                order = np.lexsort((np.arange(n), -pe))  # PE descending, ties by channel index
                idx = order[:k]
            elif method == "bottom":
                order = pool[np.lexsort((pool, pe[pool]))]
                idx = order[:k]
            else:
                idx = rng.choice(pool, size=k, replace=False)
            chosen[layer] = np.sort(idx.astype(np.int64))
        return replace(self, channels=chosen, method=method, fraction=float(fraction), seed=seed if method == "random" else None)

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
        return replace(
            self,
            channels={k: self.channels[k] for k in keep},
            n_channels={k: self.n_channels[k] for k in keep},
            pe={k: self.pe[k] for k in keep} if self.pe is not None else None,
            unresponsive={k: self.unresponsive[k] for k in keep} if self.unresponsive is not None else None,
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
        d["provenance"] = self.provenance
        return d

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Selection:
        if d.get("format") != FORMAT:
            raise InputError(f"not a psychofeat selection (format {d.get('format')!r}, expected {FORMAT!r}).")
        n_channels = {k: int(v) for k, v in d["n_channels"].items()}
        pe = {k: np.asarray(v, dtype=np.float64) for k, v in d["pe"].items()} if d.get("pe") is not None else None
        dead = None
        if d.get("unresponsive") is not None:
            dead = {}
            for k, idx in d["unresponsive"].items():
                m = np.zeros(n_channels[k], dtype=bool)
                m[np.asarray(idx, dtype=np.int64)] = True
                dead[k] = m
        return cls(
            model=str(d["model"]),
            channels={k: np.asarray(v, dtype=np.int64) for k, v in d["channels"].items()},
            n_channels=n_channels,
            method=str(d.get("method", "custom")),
            fraction=d.get("fraction"),
            seed=d.get("seed"),
            weights=dict(d.get("weights") or {}),
            pe=pe,
            unresponsive=dead,
            provenance=dict(d.get("provenance") or {}),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Selection:
        path = Path(path)
        if not path.is_file():
            from psychofeat.errors import DataMissingError

            raise DataMissingError(f"selection file {path} does not exist (it is written by `psychofeat analyze`).")
        try:
            data = read_json(path)
        except ValueError as exc:
            raise InputError(f"selection file {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def parse_channel(name: str) -> tuple[str, int]:
    """'relu3_3:17' -> ('relu3_3', 17)."""
    layer, sep, ch = name.rpartition(":")
    if not sep or not layer or not ch.isdigit():
        raise InputError(f"channel names look like 'layer:channel' (e.g. 'relu3_3:17'), got {name!r}.")
    return layer, int(ch)
