"""Where psychofeat looks for data, weights and its cache. All locations are settings, never hard-coded.

- `PSYCHOFEAT_DATA_ROOT`: the shared data folder (`live_subset/`, `sr_benchmark/`, `hvs/`, ...).
  Default: the first `shared/data` found beside the current directory or any of its parents, or beside
  the installed package's source tree (a checkout next to `../shared`).
- `PSYCHOFEAT_WEIGHTS_DIR`: offline weight files (e.g. SqueezeNet's ncnn files). Default: `<data root>/../weights`.
- `PSYCHOFEAT_HOME`: the cache of imported/downloaded weights. Default: `~/.cache/psychofeat`.
"""

from __future__ import annotations

import os
from pathlib import Path

from psychofeat.errors import DataMissingError

DATA_ROOT_ENV = "PSYCHOFEAT_DATA_ROOT"
WEIGHTS_DIR_ENV = "PSYCHOFEAT_WEIGHTS_DIR"
HOME_ENV = "PSYCHOFEAT_HOME"


def _candidate_roots() -> list[Path]:
    starts = [Path.cwd().resolve(), Path(__file__).resolve().parent]
    seen: list[Path] = []
    for start in starts:
        for parent in [start, *start.parents]:
            cand = parent / "shared" / "data"
            if cand not in seen:
                seen.append(cand)
    return seen


def find_data_root() -> Path | None:
    """The data root, or None when neither the setting nor a `shared/data` folder is found."""
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    for cand in _candidate_roots():
        if cand.is_dir():
            return cand
    return None


def data_root() -> Path:
    """The data root; raises `DataMissingError` explaining the setting when it cannot be found."""
    root = find_data_root()
    if root is None:
        env = os.environ.get(DATA_ROOT_ENV)
        where = f"{DATA_ROOT_ENV}={env!r} is not a directory" if env else "no shared/data folder was found"
        raise DataMissingError(
            f"psychofeat's data root is missing ({where}). Set {DATA_ROOT_ENV} to the folder holding "
            "live_subset/, sr_benchmark/, sr_train/ and hvs/, or pass --data-root."
        )
    return root


def data_path(*parts: str) -> Path:
    """A path inside the data root that must exist."""
    p = data_root().joinpath(*parts)
    if not p.exists():
        raise DataMissingError(f"{p} does not exist (data root: {data_root()}). Check {DATA_ROOT_ENV}.")
    return p


def weights_dir() -> Path | None:
    """Folder of offline weight files, or None when absent."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    root = find_data_root()
    if root is not None and (root.parent / "weights").is_dir():
        return root.parent / "weights"
    return None


def cache_home() -> Path:
    """The weights cache (created on demand)."""
    env = os.environ.get(HOME_ENV)
    p = Path(env).expanduser() if env else Path.home() / ".cache" / "psychofeat"
    return p


def set_data_root(path: str | os.PathLike[str]) -> None:
    """Point this process (and the subprocesses it starts) at another data root (`--data-root`)."""
    p = Path(path).expanduser().resolve()
    if not p.is_dir():
        raise DataMissingError(f"--data-root {p} is not a directory.")
    os.environ[DATA_ROOT_ENV] = str(p)
