"""Many channel selections evaluated at once from stored feature maps (the batched form of `psychofeat.distance`).

For a selection S of a layer's channels, the normalized distance at each position needs only three sums over S —
Sxx = Σ x_m², Syy = Σ y_m², Sdd = Σ (x_m − y_m)² — because with a = (Sxx + ε)^-½ and b = (Syy + ε)^-½

    Σ_{m∈S} (a x_m − b y_m)² = (a − b)(a Sxx − b Syy) + a b Sdd      (exact; see `distance_from_sums`).

The sums of *all* selections are one matrix product of the squared feature maps with a channel × selection 0/1
mask, so dozens of selections (top/bottom/random × seeds × k) cost two GEMMs per layer and image instead of one
`index_select` + `layer_distance_map` each. `direct_distances` is the reference route through the shared core;
experiments verify the two agree (psychofeat iqa does so on the first pair of every run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from psychofeat.distance import DEFAULT_EPS, MODES, layer_distance_map
from psychofeat.errors import InputError
from psychofeat.selection import Selection

#: positions × selections per block of the batched evaluation (256 KB per float32 temporary: stays in cache)
BLOCK_ELEMENTS = 65_536


def reference_terms(syy: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """b = (Syy + ε)^-½ and b·Syy: what a reference contributes to `distance_from_sums` (computed once)."""
    b = (syy + eps).rsqrt()
    return b, b * syy


def distance_from_sums(
    sxx: torch.Tensor, sdd: torch.Tensor, b: torch.Tensor, by: torch.Tensor, eps: float
) -> torch.Tensor:
    """Σ_{m∈S} (φ̂_m(x) − φ̂_m(y))² per position from the sums of x² and (x − y)² over the channels S.

    `b, by = reference_terms(Syy, eps)`. With a = (Sxx + ε)^-½ and b = (Syy + ε)^-½ (the unit normalisation of
    `psychofeat.distance`, ε inside the root), expanding the square gives a²Sxx + b²Syy − 2ab·Sxy, and
    substituting 2Sxy = Sxx + Syy − Sdd gives

        (a − b)(a·Sxx − b·Syy) + a·b·Sdd.

    This form is used because for small distortions both terms are of the size of the result (the a²Sxx + b²Syy
    − 2ab·Sxy form subtracts numbers near 1 from each other). Where every selected channel of one image is 0
    (ReLU), a (or b) = ε^-½ is huge and the terms cancel; there the exact value is used: b²Syy where x_S = 0,
    a²Sxx where y_S = 0.

    Accuracy in float32: ~1e-7 relative to a·b·Sdd, i.e. ~1e-6 of the distance for the distortions of IQA sets.
    The one regime where it is worse is feature vectors that are nearly parallel (x ≈ λy, a pure change of
    feature contrast), where the distance is a small remainder of the two terms (tested against that bound).
    The elementwise route of the shared core is more accurate there; no ranking of IQA images is affected.
    """
    a = (sxx + eps).rsqrt_()
    d = a * sxx
    d.sub_(by).mul_(a - b).addcmul_(a * b, sdd)
    x_zero = sxx == 0
    if bool(x_zero.any()):
        d[x_zero] = b[x_zero] * by[x_zero]
    y_zero = by == 0
    if bool(y_zero.any()):
        d[y_zero] = a[y_zero].square() * sxx[y_zero]
    return d


def _rows(f: torch.Tensor) -> torch.Tensor:
    """A 1×C×H×W feature map as positions × channels (a free view of a channels-last map)."""
    if f.ndim != 4 or f.shape[0] != 1:
        raise InputError(f"expected one feature map 1×C×H×W, got {tuple(f.shape)}.")
    return f[0].permute(1, 2, 0).reshape(-1, f.shape[1])


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


@dataclass
class ReferenceStats:
    """What a reference contributes to every comparison, per layer: feature rows, b and b·Syy per selection
    (see `distance_from_sums`) and the mean squared activation per channel."""

    rows: dict[str, torch.Tensor]
    b: dict[str, torch.Tensor]
    by: dict[str, torch.Tensor]
    y2_mean: dict[str, torch.Tensor]


class SelectionBank:
    """Many channel selections of the same layers, evaluated together from stored feature maps.

    Identical channel sets (e.g. top-100% and all) share one column. Results per layer equal the shared core's
    `layer_distance_map(...).mean()` up to float32 rounding (see `distance_from_sums`). Positions are processed
    in blocks of about `BLOCK_ELEMENTS / columns` so that the per-position temporaries stay in the CPU cache.
    """

    def __init__(
        self,
        selections: Mapping[str, Selection],
        layers: Sequence[str],
        n_channels: Mapping[str, int],
        mode: str = "normalized",
        eps: float = DEFAULT_EPS,
        device: str | torch.device = "cpu",
    ) -> None:
        if mode not in MODES:
            raise InputError(f"unknown distance mode {mode!r}; choose one of {', '.join(MODES)}.")
        if not selections:
            raise InputError("no selections to evaluate.")
        self.layers = list(layers)
        self.mode = mode
        self.eps = float(eps)
        self.device = torch.device(device)
        self.column: dict[str, int] = {}
        unique: dict[bytes, int] = {}
        columns: list[Selection] = []
        for name, sel in selections.items():
            key = b"|".join(np.asarray(sel.channels[k], dtype=np.int64).tobytes() for k in self.layers)
            if key not in unique:
                unique[key] = len(columns)
                columns.append(sel)
            self.column[name] = unique[key]
        self.n_columns = len(columns)
        self.block = max(64, BLOCK_ELEMENTS // self.n_columns)
        self.masks: dict[str, torch.Tensor] = {}
        self.counts: dict[str, torch.Tensor] = {}
        for k in self.layers:
            mask = torch.zeros(int(n_channels[k]), self.n_columns, dtype=torch.float32)
            for j, sel in enumerate(columns):  # a loop over selections; channels are set in one indexed write
                idx = torch.as_tensor(np.asarray(sel.channels[k], dtype=np.int64))
                if idx.numel() == 0:
                    raise InputError(f"a selection has no channels in layer {k!r}.")
                mask[idx, j] = 1.0
            self.masks[k] = mask.to(self.device)
            self.counts[k] = mask.sum(dim=0).to(self.device)

    def _blocks(self, n_rows: int) -> list[slice]:
        return [slice(s, min(s + self.block, n_rows)) for s in range(0, n_rows, self.block)]

    def _cpu_threads(self) -> int | None:
        return 1 if self.device.type == "cpu" else None

    def reference(self, fy: Mapping[str, torch.Tensor]) -> ReferenceStats:
        """Per-selection terms of the reference's features (once per reference image)."""
        rows, bs, bys, y2m = {}, {}, {}, {}
        with torch.no_grad(), single_threaded(self._cpu_threads()):
            for k in self.layers:
                y = _rows(fy[k].float())
                rows[k] = y
                y2m[k] = y.square().mean(dim=0)
                if self.mode == "normalized":
                    b = torch.empty(y.shape[0], self.n_columns, device=y.device)
                    by = torch.empty_like(b)
                    for blk in self._blocks(y.shape[0]):
                        b[blk], by[blk] = reference_terms(y[blk].square() @ self.masks[k], self.eps)
                    bs[k], bys[k] = b, by
        return ReferenceStats(rows, bs, bys, y2m)

    def compare(self, fx: Mapping[str, torch.Tensor], ref: ReferenceStats) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(per-layer distances L×columns, {layer: single-channel distances C}) of one distorted image."""
        per_layer = np.empty((len(self.layers), self.n_columns), dtype=np.float64)
        channels: dict[str, np.ndarray] = {}
        with torch.no_grad(), single_threaded(self._cpu_threads()):
            for li, k in enumerate(self.layers):
                x = _rows(fx[k].float())
                y = ref.rows[k]
                if x.shape != y.shape:
                    raise InputError(f"layer {k}: features of shape {tuple(x.shape)} vs reference {tuple(y.shape)}.")
                mask = self.masks[k]
                acc = torch.zeros(self.n_columns, dtype=torch.float64, device=x.device)
                d2_sum = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
                for blk in self._blocks(x.shape[0]):
                    xb = x[blk]
                    d2 = (xb - y[blk]).square_()
                    d2_sum += d2.sum(dim=0, dtype=torch.float64)
                    sdd = d2 @ mask
                    if self.mode == "normalized":
                        sdd = distance_from_sums(xb.square() @ mask, sdd, ref.b[k][blk], ref.by[k][blk], self.eps)
                    acc += sdd.sum(dim=0, dtype=torch.float64)  # float64: the result does not depend on the blocks
                n_pos = x.shape[0]
                value = acc / n_pos if self.mode == "normalized" else acc / (n_pos * self.counts[k].double())
                per_layer[li] = value.cpu().numpy()
                channels[k] = (d2_sum / n_pos / (ref.y2_mean[k].double() + self.eps)).cpu().numpy()
        return per_layer, channels


def direct_distances(
    fx: Mapping[str, torch.Tensor],
    fy: Mapping[str, torch.Tensor],
    selections: Mapping[str, Selection],
    mode: str,
    eps: float,
) -> dict[str, np.ndarray]:
    """Per-layer distances of each selection with the shared core (`index_select` + `layer_distance_map`)."""
    out: dict[str, np.ndarray] = {}
    layers = list(next(iter(selections.values())).channels)
    dense_x = {k: fx[k].float().contiguous() for k in layers}  # index_select on channels-last maps is slow
    dense_y = {k: fy[k].float().contiguous() for k in layers}
    for name, sel in selections.items():
        vals = []
        for k in layers:
            idx = torch.as_tensor(np.asarray(sel.channels[k], dtype=np.int64), device=dense_x[k].device)
            m = layer_distance_map(dense_x[k].index_select(1, idx), dense_y[k].index_select(1, idx), mode, eps)
            vals.append(float(m.mean()))
        out[name] = np.asarray(vals)
    return out
