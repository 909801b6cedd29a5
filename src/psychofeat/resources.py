"""Memory checks before large allocations: estimate what a run needs and refuse it, with both figures, when the
machine cannot give it — rather than start a 1.9 TB allocation and die with a `MemoryError` (or be killed).

The limit is the memory available now: `$PSYCHOFEAT_MEMORY_LIMIT` if set (bytes, or with a unit: `8G`, `512M`),
else `MemAvailable` of /proc/meminfo, capped by the cgroup's own limit (containers, CI), else
`os.sysconf("SC_AVPHYS_PAGES")` × page size; where none can be read, 4 GiB is assumed (`FALLBACK_BYTES`). The
estimates count the large arrays only (images, feature maps), so a run that passes can still fail for other
reasons, but one that is refused could not have run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from psychofeat.errors import InputError, ResourceError

LIMIT_ENV = "PSYCHOFEAT_MEMORY_LIMIT"
#: assumed when the available memory cannot be read (no /proc, no sysconf)
FALLBACK_BYTES = 4 << 30
#: bytes per pixel of a deep metric on one image pair: two images' float32 feature maps of a 64-channel
#: full-resolution layer (VGG-16's first block), two of them alive at once
DEEP_METRIC_BYTES_PER_PIXEL = 2 * 2 * 64 * 4
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str) -> int:
    """'8G' -> 8 GiB, '512m' -> 512 MiB, '1000' -> 1000 bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise InputError(f"{LIMIT_ENV}={text!r} is not a size; use bytes or a number with a unit, e.g. 8G or 512M.")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """What the cgroup (v2) still allows this process tree, if it sets a limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def _sysconf_available() -> int | None:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def available_memory() -> tuple[int, str]:
    """(bytes a run may use now, where that figure comes from)."""
    env = os.environ.get(LIMIT_ENV)
    if env:
        return parse_bytes(env), f"${LIMIT_ENV}"
    found = [(v, src) for v, src in ((_meminfo_available(), "available memory (MemAvailable)"),
                                    (_cgroup_available(), "the cgroup's memory limit")) if v is not None]
    if found:
        return min(found)
    if (v := _sysconf_available()) is not None:
        return v, "available memory (sysconf)"
    return FALLBACK_BYTES, "an assumed 4 GiB (the available memory could not be read)"


def format_bytes(n: float) -> str:
    """1.9e12 -> '1.9 TB' (decimal units, as disk and memory sizes are usually quoted)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_memory(need: float, what: str, fix: str) -> None:
    """Refuse (`ResourceError`) when `need` bytes exceed the memory available; `what` completes "… needs about X"."""
    limit, source = available_memory()
    if need > limit:
        raise ResourceError(f"{what} needs about {format_bytes(need)} of memory, but {format_bytes(limit)} is the "
                            f"limit ({source}); {fix}")


def image_bytes(width: int, height: int, copies: int = 4) -> int:
    """An RGB image as float32, `copies` times (decoded array, tensor, converted and resized versions)."""
    return int(width) * int(height) * 3 * 4 * copies


def pair_bytes(width: int, height: int, deep: bool) -> int:
    """One image pair scored by full-reference metrics (deep: plus the feature maps of a VGG-like trunk)."""
    px = int(width) * int(height)
    return 2 * image_bytes(width, height) + (px * DEEP_METRIC_BYTES_PER_PIXEL if deep else 0)


def stimulus_batch_bytes(size: int, batch: int, widest: int = 64) -> int:
    """A batch of `size`² stimuli through a network whose widest full-resolution layer has `widest` channels:
    the float64 rendering, the float32 input and two live feature maps (the estimate for networks not at hand)."""
    px = int(size) ** 2 * int(batch)
    return px * (3 * 8 + 3 * 4 + 2 * int(widest) * 4)


class _Network(Protocol):
    """What `forward_bytes` asks of a network (a `psychofeat.backbones.Backbone`), described by shape so that this
    module, below the networks, does not import them."""

    @property
    def default_layers(self) -> list[str]: ...

    def depth_order(self, layers: Sequence[str]) -> list[str]: ...

    def feature_numels(self, layers: Sequence[str], size: int = 64) -> dict[str, int]: ...


def forward_bytes(backbone: _Network, layers: Sequence[str], size: int, batch: int) -> int:
    """A batch of `size`² images through `backbone` up to the deepest of `layers`, from the feature-map shapes of
    a 64-px dry run scaled to `size` (two maps alive at once, the largest counted twice), plus the input."""
    ref = 64
    names = backbone.depth_order(list(layers)) if layers else backbone.default_layers
    numels = backbone.feature_numels(list(names), ref)
    scale = (int(size) / ref) ** 2
    widest = max((n * scale for n in numels.values()), default=0.0)
    return int(batch * (int(size) ** 2 * (3 * 8 + 3 * 4) + 2 * widest * 4))
