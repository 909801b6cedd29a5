"""Deprecated aliases of names that moved: one module `__getattr__` for every module that keeps old names working.

The new home is imported by name when an old name is used (`importlib`), not by an import statement, so a study can
keep an alias of a name that moved up to its report module without importing that report (tests/test_architecture.py
walks import statements).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def moved_names(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `module`: each old name in `moved` (old name -> the module that now defines
    it) warns with a DeprecationWarning naming the new place and returns the object from there."""

    def __getattr__(name: str) -> Any:
        new = moved.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} is deprecated; import it from {new}.", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(new), name)

    return __getattr__
