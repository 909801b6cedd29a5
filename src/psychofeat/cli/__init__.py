"""The `psychofeat` command line. Each verb lives in its own module under `psychofeat.cli.commands`.

A command module defines `register(subparsers) -> None`, which adds its parser(s) and sets
`func=<callable taking the parsed args, returning an exit code>`. Modules are discovered, so adding a verb
never edits this file. Heavy imports happen inside the command functions so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

import psychofeat
from psychofeat.errors import PsychofeatError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if args.data_root:
        from psychofeat.config import set_data_root

        try:
            set_data_root(args.data_root)
        except PsychofeatError as exc:
            print(f"psychofeat: error: {exc}", file=sys.stderr)
            return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except PsychofeatError as exc:
        print(f"psychofeat: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("psychofeat: interrupted", file=sys.stderr)
        return 130
