"""Progress for long loops: a tqdm bar on a terminal, coarse one-line reports when stderr is a file or a pipe.

A CI log or `psychofeat analyze > log 2>&1` would otherwise show nothing for minutes (tqdm hides itself off a
terminal). Off a terminal a line like `psychofeat: frequency sweep 48/97 stim (12 s)` is printed at most every
`every_s` seconds, plus one at the end.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from tqdm.auto import tqdm


class LineProgress:
    """The part of tqdm's interface the loops use (update, close, context manager), printing coarse lines."""

    def __init__(self, total: int, desc: str, unit: str, every_s: float = 10.0) -> None:
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.n = 0
        self._t0 = self._last = time.perf_counter()

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.perf_counter()
        if now - self._last >= self.every_s and self.n < self.total:
            self._last = now
            self._say(now)

    def _say(self, now: float) -> None:
        print(f"psychofeat: {self.desc} {self.n}/{self.total} {self.unit} ({now - self._t0:.0f} s)", file=sys.stderr,
              flush=True)

    def close(self) -> None:
        if self.n and self.total:
            self._say(time.perf_counter())
        self.total = 0  # idempotent

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def progress_bar(total: int, desc: str, unit: str = "it", enabled: bool = True, **tqdm_kwargs: Any) -> Any:
    """A tqdm bar on a terminal; `LineProgress` lines when stderr is not one; nothing when not `enabled`."""
    if enabled and not _stderr_is_tty():
        return LineProgress(total, desc, unit)
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, **tqdm_kwargs)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["LineProgress", "progress_bar"]
