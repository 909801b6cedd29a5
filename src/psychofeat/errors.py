"""Error types. Every error a user can cause says what was wrong and how to fix it.

The CLI prints `PsychofeatError` messages without a traceback; library users can catch the
specific subclasses (which also derive from the matching built-in exception).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PsychofeatError(Exception):
    """Base class of all errors raised on purpose by psychofeat."""


class InputError(PsychofeatError, ValueError):
    """An argument or tensor is malformed (shape, range, dtype, NaN, ...)."""


class UnknownNameError(PsychofeatError, ValueError):
    """A name (layer, model, metric, CSF, dataset) is not known; the message lists close matches."""


class WeightsError(PsychofeatError, ValueError):
    """A weights file is missing, corrupt, truncated or for another architecture."""


class DataMissingError(PsychofeatError, FileNotFoundError):
    """Data the command needs is not on disk; the message says where it was looked for."""


class OutputExistsError(PsychofeatError, FileExistsError):
    """The output directory is not empty and `--overwrite` was not given."""


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> UnknownNameError:
    """Build an `UnknownNameError` that suggests the closest known names."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    msg = f"unknown {kind} {name!r}."
    if close:
        msg += f" Did you mean: {', '.join(close)}?"
    shown = known if len(known) <= 40 else known[:40] + ["..."]
    msg += f" Known: {', '.join(shown)}."
    if hint:
        msg += f" {hint}"
    return UnknownNameError(msg)
