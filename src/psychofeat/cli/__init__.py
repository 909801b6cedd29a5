"""The `psychofeat` command line. Each verb lives in its own module under `psychofeat.cli.commands`.

A command module defines `register(subparsers) -> None`, which adds its parser(s) and sets
`func=<callable taking the parsed args, returning an exit code>`. Modules are discovered, so adding a verb
never edits this file. Heavy imports happen inside the command functions so `--help` stays fast.

Errors are one line, `psychofeat: error: ...`, never a traceback, with the exit status of the error's class
(`PsychofeatError.exit_code`): 2 for usage (argparse's errors, bad option values, unknown names, paths, outputs,
runs too large for the machine), 1 for data (input files whose content is damaged or unusable). 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

import psychofeat
from psychofeat.errors import PsychofeatError


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors (sub-parsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("psychofeat").strip()
        self.exit(2, f"psychofeat: error: {where + ': ' if where else ''}{message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="psychofeat",
        description="Probe CNN channels with psychophysical stimuli, score them against human vision "
        "(mu1, mu2, Perceptual Efficacy), and build/evaluate metrics and losses from the selected channels.",
    )
    parser.add_argument("--version", action="version", version=f"psychofeat {psychofeat.__version__}")
    parser.add_argument(
        "--data-root", default=None, help="shared data folder (default: $PSYCHOFEAT_DATA_ROOT or ../shared/data)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from psychofeat.cli import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"psychofeat.cli.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: a status, as for every other outcome
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if args.data_root:
        from psychofeat.config import set_data_root

        try:
            set_data_root(args.data_root)
        except PsychofeatError as exc:
            return _fail(exc)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except PsychofeatError as exc:
        return _fail(exc)
    except MemoryError:
        print("psychofeat: error: out of memory. Lower --batch-size or --size, or free memory (the estimate checked "
              "before the run did not foresee this: please report it).", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("psychofeat: interrupted", file=sys.stderr)
        return 130


def _fail(exc: PsychofeatError) -> int:
    """Print a refusal as one line (a multi-line message keeps its first line first) and return its exit status."""
    print(f"psychofeat: error: {exc}", file=sys.stderr)
    return int(getattr(exc, "exit_code", 2))
