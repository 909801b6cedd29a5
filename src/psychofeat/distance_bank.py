"""Many channel selections evaluated at once from stored feature maps: the batched form of `psychofeat.distance`.

Experiments that compare dozens of selections on the same images (`psychofeat iqa`, `psychofeat hvs detect`) run
each image through the network once and read every selection off those feature maps. Per position, the
distance of a selection S needs only sums over S (δ = x − y, x the distorted and y the reference features):

    Sdd = Σ δ²,   Sdy = Σ δ·y,   Sxx = Σ x²,   Syy = Σ y²      (see `distance_from_sums`),

and the sums of *all* selections are matrix products of the per-position products with a channel × selection
0/1 mask: three GEMMs per layer and image (one for "mse" selections) instead of one `index_select` + distance
per selection. Syy is the reference's and is computed once per reference. The same squared differences give
every channel's single-channel distance (`psychofeat.distance.channel_distances`) at no extra cost.

A soft selection (channel weights a_m; `psychofeat.distance`: a channel enters as √a_m·φ_m) puts its weights in
the mask instead of 1: the sums become Σ a δ², Σ a δ·y, ..., the sums of the scaled channels, so the identity
holds unchanged.

One evaluator serves both experiments: `psychofeat iqa` in float32 (speed; ~1e-7 relative), `psychofeat hvs
detect` in float64 (stimuli that differ from the blank by 1e-4 and less), with selections of their own layers
and modes. `direct_distances` is the reference route through the shared core (`psychofeat.distance`):
`psychofeat iqa` recomputes the first pair of every run with it, and the tests compare the bank with it, with
`PerceptualDistance` and with the definition evaluated in extended precision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, SupportsIndex, TypeAlias

import numpy as np
import torch

from psychofeat.distance import DEFAULT_EPS, MODES, pair_distance_map
from psychofeat.errors import InputError
from psychofeat.selection import ChannelWeights, Selection

#: bytes of one positions × selections temporary of the blocked evaluation (256 KB: stays in the CPU cache)
BLOCK_BYTES = 262_144
#: fewest positions per block (many selections would otherwise make the blocks too short to be efficient)
MIN_BLOCK_ROWS = 64

#: channel indices per layer (None: every channel of the layer), or indices with weights (a soft selection);
#: the layers a selection uses are its keys
ChannelSets: TypeAlias = Mapping[str, "np.ndarray | Sequence[int] | ChannelWeights | None"]


# ------------------------------------------------------------------------------------------------ the identity
def distance_from_sums(
    sdd: torch.Tensor, sdy: torch.Tensor, sxx: torch.Tensor, syy: torch.Tensor, eps: float = DEFAULT_EPS
) -> torch.Tensor:
    """Σ_{m∈S} (x_m/n_x − y_m/n_y)² per position from sums over the channels S, n² = Σ_S φ² + ε.

    This is `psychofeat.distance`'s normalized distance (ε inside the root). Multiplying by n_x² n_y²,

        ‖n_y x − n_x y‖² = ‖n_s δ + T s‖² = n_s² Sdd + 2 T n_s Sds + T² Sss,
        T = n_y − n_x = −(Sdd + 2 Sdy)/(n_x + n_y),

    where s may be either vector (n_y x − n_x y = n_y δ + T y = n_x δ + T x; Sdx = Sdd + Sdy). T is written in δ,
    never as the difference of two nearly equal norms, so for small distortions every term is of the size of the
    result and the relative precision is that of the dtype (the threshold stimuli of `psychofeat hvs detect`
    differ from the blank by 1e-4 and less; n_x − n_y computed directly loses ~|y|/|δ| of relative precision).

    s is the vector with the *smaller* norm: then |T| ≤ n_big, n_s ≤ n_big and Sdd ≤ 4 n_big², so no term exceeds
    4 n_x² n_y² (the distance is at most 4) and the exact zeros of ReLU features come out exact. Where y_S = 0
    (s = y), Sdy = Syy = 0 and the result is Sxx/(Sxx + ε). Where x_S = 0 (s = x), Sss = 0 and Sdx is set to its
    exact 0 (computed as Sdd + Sdy it would be a rounding residue, amplified by T/n_x ≈ n_y/√ε), so the result is
    Sdd/(Syy + ε) = Syy/(Syy + ε). Expanding always around y (or always around x) instead cancels terms of size
    Sbig/Ssmall wherever that vector is the smaller one: 1/ε at an exact zero, an error of order one even in
    float64.

    Remaining error, relative to 1: ~u·√(Syy/Sxx) where x_S is tiny but not 0 (Sdx is derived), and
    ~u·(λ − 1)² for nearly parallel x ≈ λy (a pure change of feature contrast, whose distance is a remainder of
    order ε); u = 6e-8 in float32, 1e-16 in float64. The inputs are not modified.
    """
    shape = torch.broadcast_shapes(sdd.shape, sdy.shape, sxx.shape, syy.shape)
    sdd, sdy, sxx, syy = (v.expand(shape).reshape(-1, 1).clone() for v in (sdd, sdy, sxx, syy))
    ny2 = syy.add_(eps)
    d = _distance_in_place(sdd, sdy, sxx, ny2, ny2.sqrt(), eps, _Scratch(sdd.shape[0], sdd.dtype, sdd.device))
    return d.reshape(shape)


def _distance_in_place(
    sdd: torch.Tensor, sdy: torch.Tensor, sxx: torch.Tensor, ny2: torch.Tensor, ny: torch.Tensor, eps: float,
    scratch: _Scratch,
) -> torch.Tensor:
    """`distance_from_sums` with the reference's n_y² and n_y given, overwriting sdd, sdy and sxx and writing
    into `scratch`: fresh temporaries for every block were measured to cost more than the arithmetic (page
    faults). Returns a view of a scratch buffer, valid until the scratch is used again."""
    rows, cols = sdd.shape
    t, ns, tmp, live = (scratch.get(name, cols, rows) for name in ("t", "ns", "tmp", "live"))
    torch.gt(sxx, 0.0, out=live)  # 0 where x_S = 0 (ReLU): there Sds = 0 exactly, for s = x or s = y (y_S = 0)
    nx2 = sxx.add_(eps)
    torch.sqrt(nx2, out=ns)  # n_x
    torch.add(sdd, sdy, alpha=2.0, out=t).div_(torch.add(ns, ny, out=tmp))  # −T = (Sxx − Syy)/(n_x + n_y)
    sdy.addcmul_(torch.lt(nx2, ny2, out=tmp), sdd).mul_(live)  # Sds: Sdy where s = y, Sdx = Sdy + Sdd where s = x
    torch.minimum(ns, ny, out=ns)  # n_s
    ns2 = torch.minimum(nx2, ny2, out=tmp)  # n_s² (consistent with n_s: the square root is monotone)
    sdd.mul_(ns2)  # n_s² Sdd
    num = ns2.sub_(eps).mul_(t).addcmul_(ns, sdy, value=-2.0).mul_(t).add_(sdd)  # T² Sss + 2 T n_s Sds + n_s² Sdd
    d = num.div_(nx2.mul_(ny2))
    return d


# ---------------------------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def single_threaded(n: int | None) -> Iterator[None]:
    """Run with `n` intra-op threads (None: unchanged).

    The per-position work on the selection sums is many short operations; when the CPU cores are shared with
    other processes, OpenMP barriers wait for descheduled threads and 2 threads were measured 10-40x slower
    than 1 on this project's 2-core machine under load. The forward passes keep torch's setting.
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _rows(f: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A 1×C×H×W feature map as positions × channels (a free view of a channels-last map of `dtype`)."""
    if f.ndim != 4 or f.shape[0] != 1:
        raise InputError(f"expected one feature map 1×C×H×W, got {tuple(f.shape)}.")
    return f[0].permute(1, 2, 0).reshape(-1, f.shape[1]).to(dtype)


class _Scratch:
    """Block temporaries (rows × columns), allocated once and reused for every block, layer and image.

    Not thread-safe: one bank evaluates one image at a time."""

    def __init__(self, rows: int, dtype: torch.dtype, device: str | torch.device) -> None:
        self.rows, self.dtype, self.device = rows, dtype, torch.device(device)
        self._buffers: dict[tuple[str, int], torch.Tensor] = {}

    def get(self, name: str, cols: int, rows: int | None = None) -> torch.Tensor:
        """The buffer `name` of `cols` columns, as a (contiguous) view of its first `rows` rows."""
        buf = self._buffers.get((name, cols))
        if buf is None:
            buf = self._buffers[(name, cols)] = torch.empty(self.rows, cols, dtype=self.dtype, device=self.device)
        return buf[: self.rows if rows is None else rows]


def _channel_sets(sel: Selection | ChannelSets) -> ChannelSets:
    return sel.channel_sets() if isinstance(sel, Selection) else sel


def _indices(
    name: str, layer: str, idx: np.ndarray | Sequence[int] | ChannelWeights | None, n_channels: int
) -> ChannelWeights:
    """Sorted unique channel indices of one selection in one layer (None: all), checked against the layer, with
    their weights (all 1 for a hard selection)."""
    if idx is None:
        return ChannelWeights(np.arange(n_channels, dtype=np.int64), np.ones(n_channels))
    if isinstance(idx, ChannelWeights):
        raw, w = np.asarray(idx.indices, dtype=np.int64), np.asarray(idx.weights, dtype=np.float64)
        if w.shape != raw.shape or not (np.isfinite(w) & (w > 0)).all():
            raise InputError(f"selection {name!r}: layer {layer} needs one positive weight per channel index.")
    else:
        raw = np.asarray(idx, dtype=np.int64)
        w = np.ones(raw.shape)
    ii, first = np.unique(raw, return_index=True)
    if ii.size == 0:
        raise InputError(f"selection {name!r} has no channels in layer {layer!r}.")
    if ii[0] < 0 or ii[-1] >= n_channels:
        raise InputError(f"selection {name!r}: channel indices of {layer} must be in [0, {n_channels}).")
    return ChannelWeights(ii, w[first])


# ------------------------------------------------------------------------------------------------------- bank
@dataclass(frozen=True)
class _LayerPlan:
    """The columns that use one layer, normalized ones first: their indices and channel masks (C × columns)."""

    columns: np.ndarray  # bank columns, normalized first
    norm_mask: torch.Tensor  # C × #normalized: 0/1, or the channel weights of a soft selection
    mse_mask: torch.Tensor  # C × #mse, float64: applied to the channels' summed squared differences
    mse_counts: torch.Tensor  # #mse, float64: Σ weights per mse column (its distance is a weighted mean)


@dataclass
class ReferenceStats:
    """What a reference contributes to every comparison, per layer: its feature rows (positions × channels),
    n_y² = Syy + ε and n_y of every normalized column (positions × columns), and the mean squared activation of
    every channel (the denominator of the single-channel distance, in the bank's dtype)."""

    rows: dict[str, torch.Tensor]
    ny2: dict[str, torch.Tensor]
    ny: dict[str, torch.Tensor]
    y2_mean: dict[str, torch.Tensor]


class Comparison(NamedTuple):
    """One distorted image against its reference."""

    per_layer: np.ndarray  # layers × columns, float64; NaN where a column does not use the layer
    channels: dict[str, np.ndarray]  # layer -> single-channel distances (C), float64


class SelectionBank:
    """Many channel selections, evaluated together from stored feature maps.

    `selections` maps a name to a `Selection` or to channel indices per layer (None: all channels); each
    selection uses the layers it names, with weights 1/#layers (`combine`), in its own `mode` ("normalized"
    or "mse", one for all or one per name). Identical selections (same mode, layers and channels: e.g. top-100%
    and all) share one column (`column[name]`).

    `dtype`: float32 (IQA: fast, ~1e-7 relative) or float64 (threshold-level differences of 1e-4 and less).
    Positions are processed in blocks of about `BLOCK_BYTES` per positions × columns temporary, so the
    per-position work stays in the CPU cache; position sums are accumulated in float64, so results do not depend
    on the blocks. On the CPU the bank's work runs on `threads` intra-op threads (see `single_threaded`).
    """

    def __init__(
        self,
        selections: Mapping[str, Selection | ChannelSets],
        layers: Sequence[str],
        n_channels: Mapping[str, int],
        mode: str | Mapping[str, str] = "normalized",
        eps: float = DEFAULT_EPS,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        threads: int | None = 1,
    ) -> None:
        if not selections:
            raise InputError("no selections to evaluate.")
        if dtype not in (torch.float32, torch.float64):
            raise InputError(f"the selection bank computes in float32 or float64, not {dtype}.")
        if eps <= 0:
            raise InputError(f"eps must be positive, got {eps}.")
        self.layers = list(layers)
        self.eps = float(eps)
        self.device = torch.device(device)
        self.dtype = dtype
        self.threads = threads if self.device.type == "cpu" else None
        self.modes = {name: mode if isinstance(mode, str) else mode[name] for name in selections}
        bad = sorted({m for m in self.modes.values() if m not in MODES})
        if bad:
            raise InputError(f"unknown distance mode {bad[0]!r}; choose one of {', '.join(MODES)}.")
        self.column: dict[str, int] = {}
        columns = self._columns(selections, n_channels)
        self.n_columns = len(columns)
        self.column_modes = [m for m, _ in columns]
        #: layers × columns: which column uses which layer, and its weight 1/#layers there
        self.uses = np.array([[k in sets for _, sets in columns] for k in self.layers], dtype=bool)
        self.weights = self.uses / np.maximum(self.uses.sum(axis=0, keepdims=True), 1)
        self.plans = {k: self._plan(li, columns, int(n_channels[k])) for li, k in enumerate(self.layers)}
        itemsize = torch.empty((), dtype=dtype).element_size()
        self._block = max(MIN_BLOCK_ROWS, BLOCK_BYTES // (itemsize * self.n_columns))
        self._scratch = _Scratch(self._block, dtype, self.device)

    @property
    def block(self) -> int:
        """Positions per block of the evaluation (results do not depend on it beyond float64 summation)."""
        return self._block

    @block.setter
    def block(self, rows: int) -> None:
        self._block = int(rows)
        self._scratch = _Scratch(self._block, self.dtype, self.device)

    @property
    def mode(self) -> str:
        """The distance mode of every selection (an error if they differ)."""
        modes = set(self.column_modes)
        if len(modes) != 1:
            raise InputError("this bank mixes distance modes; see `modes` per selection.")
        return modes.pop()

    def _columns(
        self, selections: Mapping[str, Selection | ChannelSets], n_channels: Mapping[str, int]
    ) -> list[tuple[str, dict[str, ChannelWeights]]]:
        """Unique (mode, {layer: indices and weights}) columns; fills `self.column`."""
        unique: dict[tuple[str, tuple[tuple[str, bytes, bytes], ...]], int] = {}
        columns: list[tuple[str, dict[str, ChannelWeights]]] = []
        for name, sel in selections.items():
            sets = _channel_sets(sel)
            unknown = [k for k in sets if k not in self.layers]
            if unknown or not sets:
                raise InputError(f"selection {name!r} uses layers {list(sets)}; the bank's layers are {self.layers}.")
            chans = {k: _indices(name, k, sets[k], int(n_channels[k])) for k in self.layers if k in sets}
            key = (self.modes[name], tuple((k, v.indices.tobytes(), v.weights.tobytes()) for k, v in chans.items()))
            if key not in unique:
                unique[key] = len(columns)
                columns.append((self.modes[name], chans))
            self.column[name] = unique[key]
        return columns

    def _plan(self, li: int, columns: list[tuple[str, dict[str, ChannelWeights]]], n_channels: int) -> _LayerPlan:
        layer = self.layers[li]
        used = np.flatnonzero(self.uses[li])
        norm = [j for j in used if columns[j][0] == "normalized"]
        mse = [j for j in used if columns[j][0] == "mse"]

        def mask(cols: Sequence[SupportsIndex], dtype: torch.dtype) -> torch.Tensor:
            """Channel weights per column: 1 for a hard selection's channels, a_m for a soft one's, else 0."""
            m = torch.zeros(n_channels, len(cols), dtype=dtype)
            for i, j in enumerate(cols):  # a loop over selections; channels are set in one indexed write
                cw = columns[j][1][layer]
                m[torch.from_numpy(cw.indices), i] = torch.from_numpy(cw.weights).to(dtype)
            return m.to(self.device)

        # an mse column's distance is Σ a δ² / Σ a (the mean over its channels when hard)
        counts = torch.tensor([float(columns[j][1][layer].weights.sum()) for j in mse], dtype=torch.float64)
        return _LayerPlan(np.array(norm + mse, dtype=np.int64), mask(norm, self.dtype), mask(mse, torch.float64),
                          counts.to(self.device))

    def _blocks(self, n_rows: int) -> list[slice]:
        return [slice(s, min(s + self.block, n_rows)) for s in range(0, n_rows, self.block)]

    # -- evaluation ----------------------------------------------------------------------------------------
    def reference(self, fy: Mapping[str, torch.Tensor]) -> ReferenceStats:
        """Per-column terms of a reference's features {layer: 1×C×H×W} (computed once per reference image)."""
        stats = ReferenceStats({}, {}, {}, {})
        with torch.no_grad(), single_threaded(self.threads):
            for k in self.layers:
                y = _rows(fy[k], self.dtype)
                mask = self.plans[k].norm_mask
                n_pos, n_ch = y.shape
                ny2 = torch.empty(n_pos, mask.shape[1], dtype=self.dtype, device=y.device)
                ny = torch.empty_like(ny2)
                for blk in self._blocks(n_pos):
                    y2 = torch.mul(y[blk], y[blk], out=self._scratch.get("sq", n_ch, blk.stop - blk.start))
                    torch.sqrt(torch.mm(y2, mask, out=ny2[blk]).add_(self.eps), out=ny[blk])
                # in the bank's dtype, as `channel_distances` does: where a channel is silent in the distorted
                # image its distance is 1 up to this rounding, and float64 would rank those near-ties differently
                y2_mean = y.square().mean(dim=0)
                stats.rows[k], stats.ny2[k], stats.ny[k], stats.y2_mean[k] = y, ny2, ny, y2_mean
        return stats

    def compare_layer(self, layer: str, fx: torch.Tensor, ref: ReferenceStats) -> tuple[np.ndarray, np.ndarray]:
        """(distance of every column, NaN where it does not use `layer`; single-channel distances) of one layer.

        The single-channel distance is `psychofeat.distance.channel_distances`'s: mean_{h,w} δ² / (mean y² + ε).
        """
        plan = self.plans[layer]
        x, y = _rows(fx, self.dtype), ref.rows[layer]
        if x.shape != y.shape:
            raise InputError(f"layer {layer}: features of shape {tuple(x.shape)} vs reference {tuple(y.shape)}.")
        n_pos, n_ch = x.shape
        n_norm, n_mse = plan.norm_mask.shape[1], plan.mse_mask.shape[1]
        acc = torch.zeros(n_norm + n_mse, dtype=torch.float64, device=x.device)
        d2_sum = torch.zeros(n_ch, dtype=torch.float64, device=x.device)
        work = self._scratch
        with torch.no_grad(), single_threaded(self.threads):
            for blk in self._blocks(n_pos):
                rows = blk.stop - blk.start
                xb, yb = x[blk], y[blk]
                delta = torch.sub(xb, yb, out=work.get("delta", n_ch, rows))
                sq = torch.mul(delta, delta, out=work.get("sq", n_ch, rows))
                d2_sum += sq.sum(dim=0, dtype=torch.float64)
                if n_norm:
                    sdd = torch.mm(sq, plan.norm_mask, out=work.get("sdd", n_norm, rows))
                    sdy = torch.mm(delta.mul_(yb), plan.norm_mask, out=work.get("sdy", n_norm, rows))
                    sxx = torch.mm(torch.mul(xb, xb, out=sq), plan.norm_mask, out=work.get("sxx", n_norm, rows))
                    d = _distance_in_place(sdd, sdy, sxx, ref.ny2[layer][blk], ref.ny[layer][blk], self.eps, work)
                    acc[:n_norm] += d.sum(dim=0, dtype=torch.float64)
        if n_mse:  # an mse column's sum of δ² is the sum of its channels' sums
            acc[n_norm:] = d2_sum @ plan.mse_mask
        acc /= n_pos
        acc[n_norm:] /= plan.mse_counts
        row = np.full(self.n_columns, np.nan)
        row[plan.columns] = acc.cpu().numpy()
        channels = d2_sum / n_pos / (ref.y2_mean[layer].double() + self.eps)
        return row, channels.cpu().numpy()

    def compare(self, fx: Mapping[str, torch.Tensor], ref: ReferenceStats) -> Comparison:
        """Every column's distance per layer, and every channel's single-channel distance, of one image."""
        per_layer = np.empty((len(self.layers), self.n_columns), dtype=np.float64)
        channels: dict[str, np.ndarray] = {}
        for li, k in enumerate(self.layers):
            per_layer[li], channels[k] = self.compare_layer(k, fx[k], ref)
        return Comparison(per_layer, channels)

    def combine(self, per_layer: np.ndarray) -> np.ndarray:
        """Σ_k w_k d_k per column (w_k = 1/#layers of the column's layers): ...×layers×columns → ...×columns."""
        return (np.where(self.uses, per_layer, 0.0) * self.weights).sum(axis=-2)


# -------------------------------------------------------------------------------------- the reference route
def direct_distances(
    fx: Mapping[str, torch.Tensor],
    fy: Mapping[str, torch.Tensor],
    selections: Mapping[str, Selection | ChannelSets],
    mode: str | Mapping[str, str],
    eps: float = DEFAULT_EPS,
    dtype: torch.dtype = torch.float32,
) -> dict[str, np.ndarray]:
    """Per-layer distances of each selection of one image pair (in the order of its layers) with the shared core:
    `index_select` + `psychofeat.distance.pair_distance_map` in `dtype` (float32: the metric's), with the channel
    weights of soft selections."""
    dense_x: dict[str, torch.Tensor] = {}  # index_select on channels-last maps is slow: made dense once per layer
    dense_y: dict[str, torch.Tensor] = {}
    out: dict[str, np.ndarray] = {}
    for name, sel in selections.items():
        vals = []
        for k, idx in _channel_sets(sel).items():
            if k not in dense_x:
                dense_x[k], dense_y[k] = fx[k].to(dtype).contiguous(), fy[k].to(dtype).contiguous()
            a, b = dense_x[k], dense_y[k]
            w = None
            if isinstance(idx, ChannelWeights):
                w = torch.as_tensor(np.asarray(idx.weights), dtype=dtype, device=a.device)
                idx = idx.indices
            if idx is not None:
                ii = torch.as_tensor(np.asarray(idx, dtype=np.int64), device=a.device)
                a, b = a.index_select(1, ii), b.index_select(1, ii)
            m = mode if isinstance(mode, str) else mode[name]
            vals.append(float(pair_distance_map(a, b, m, eps, weights=w).mean()))
        out[name] = np.asarray(vals)
    return out
