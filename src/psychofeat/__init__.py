"""psychofeat: which deep-feature channels behave like human vision, and metrics built from them.

The package follows the data flow of an analysis:
stimuli -> probe -> scores -> selection -> distance (metric / loss) -> evaluation -> report.

The names most users need are importable from here::

    from psychofeat import PerceptualDistance, PerceptualLoss
    metric = PerceptualDistance("vgg16", selection="pe")          # the bundled top-25 % PE selection
    loss = PerceptualLoss("vgg16", selection="pe", which="top")

They are imported lazily (module `__getattr__`), so `import psychofeat` and `psychofeat --help` do not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from psychofeat._version import __version__

#: public name -> module that defines it
_LAZY = {
    "PerceptualDistance": "psychofeat.metric",
    "perceptual_distance": "psychofeat.metric",
    "PerceptualLoss": "psychofeat.loss",
    "perceptual_loss": "psychofeat.loss",
    "load_backbone": "psychofeat.backbones",
    "analyze": "psychofeat.analysis",
    "Selection": "psychofeat.selection",
    "list_metrics": "psychofeat.metrics_registry",
    "create_metric": "psychofeat.metrics_registry",
    "metric_info": "psychofeat.metrics_registry",
    "MetricInfo": "psychofeat.metrics_registry",
    "bundled_models": "psychofeat.bundled",
    "load_bundled": "psychofeat.bundled",
    "PsychofeatError": "psychofeat.errors",
    "InputError": "psychofeat.errors",
}

__all__ = [
    "__version__",
    "InputError",
    "MetricInfo",
    "PerceptualDistance",
    "PerceptualLoss",
    "PsychofeatError",
    "Selection",
    "analyze",
    "bundled_models",
    "create_metric",
    "list_metrics",
    "load_backbone",
    "load_bundled",
    "metric_info",
    "perceptual_distance",
    "perceptual_loss",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time these come from __getattr__
    from psychofeat.analysis import analyze
    from psychofeat.backbones import load_backbone
    from psychofeat.bundled import bundled_models, load_bundled
    from psychofeat.errors import InputError, PsychofeatError
    from psychofeat.loss import PerceptualLoss, perceptual_loss
    from psychofeat.metric import PerceptualDistance, perceptual_distance
    from psychofeat.metrics_registry import MetricInfo, create_metric, list_metrics, metric_info
    from psychofeat.selection import Selection


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'psychofeat' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
