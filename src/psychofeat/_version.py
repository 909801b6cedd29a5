"""The package version, in a module of its own so that modules below the package face (io's provenance) can read it
without importing the package (`psychofeat/__init__.py` re-exports it; pyproject.toml repeats it for the build and a
test checks the two agree)."""

from __future__ import annotations

__version__ = "0.2.0"
