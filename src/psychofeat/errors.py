"""Error types. Every error a user can cause says what was wrong and how to fix it.

The CLI prints `PsychofeatError` messages as one line without a traceback; library users can catch the
specific subclasses (which also derive from the matching built-in exception). Each class carries the CLI's exit
status (`exit_code`): 2 for usage (the command line asks for something that cannot be done: bad option values,
unknown names, missing or wrong-kind paths, outputs that exist or cannot be written, runs too large for the
machine), 1 for data (an input file was read and its content is damaged or unusable, or the data give no result).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PsychofeatError(Exception):
    """Base class of all errors raised on purpose by psychofeat."""

    #: the CLI's exit status for this error: 2 usage, 1 data (module docstring)
    exit_code: int = 2


class InputError(PsychofeatError, ValueError):
    """An argument or tensor is malformed (shape, range, dtype, NaN, ...)."""


class DataError(InputError):
    """An input file was read and its content is damaged or unusable (an image that cannot be decoded, ...)."""

    exit_code = 1


class SelectionError(DataError):
    """A selection (file or object) breaks the selection schema; the message names the key and what was expected."""


class UnknownNameError(PsychofeatError, ValueError):
    """A name (layer, model, metric, CSF, dataset) is not known; the message lists close matches."""


class WeightsError(PsychofeatError, ValueError):
    """A weights file is missing, corrupt, truncated or for another architecture."""


class DamagedWeightsError(WeightsError, DataError):
    """A weights file was read and is not usable at all: corrupt, truncated, not a weights file (exit status 1)."""


class DataMissingError(PsychofeatError, FileNotFoundError):
    """Data the command needs is not on disk; the message says where it was looked for."""


class OutputExistsError(PsychofeatError, FileExistsError):
    """The output directory is not empty and `--overwrite` was not given."""


class OutputError(PsychofeatError, OSError):
    """An output cannot be written where asked: a folder where a file is expected, a path under a file, a read-only
    or unreachable folder, or an existing target that is not a regular file (device, symlink, fifo)."""


class ResourceError(PsychofeatError, MemoryError):
    """A run would need more memory than the machine has; the message gives the estimate and the limit."""


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
