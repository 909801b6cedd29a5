"""psychofeat: which deep-feature channels behave like human vision, and metrics built from them.

The package follows the data flow of an analysis:
stimuli -> probe -> scores -> selection -> distance (metric / loss) -> evaluation -> report.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
