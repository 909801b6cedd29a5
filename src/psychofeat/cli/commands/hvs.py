"""`psychofeat hvs ...`: human-vision checks. Sub-verbs share this parser so siblings (network-csf, detect)
can be added next to `csf-check` without touching the top-level CLI."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from psychofeat.cli.common import add_out_args, csv_list


def register(subparsers: Any) -> None:
    """Add the `hvs` verb and its sub-verbs. A new sub-verb (network-csf, detect) gets its own
    `_register_<name>(hvs_sub)` below and one call here."""
    parser = subparsers.add_parser(
        "hvs",
        help="human vision: CSF models checked against psychophysical threshold data",
        description="Human-vision reference checks built on castleCSF's contrast-sensitivity measurements.",
    )
    hvs_sub = parser.add_subparsers(dest="hvs_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=_print_help(parser))
    _register_csf_check(hvs_sub)


def _print_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """`psychofeat hvs` alone lists the sub-verbs, like `psychofeat` alone lists the verbs."""

    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    return show


def _register_csf_check(hvs_sub: Any) -> None:
    p = hvs_sub.add_parser(
        "csf-check",
        help="compare the CSF models with achromatic foveal static human thresholds",
        description="Score each CSF model (psychofeat.csf) on castleCSF's achromatic, foveal, static Gabor/grating "
        "thresholds: RMSE of log10 sensitivity with one free vertical shift per dataset. Writes csf_check.csv, "
        "csf_check_rows.csv, manifest.json and report.html.",
    )
    p.add_argument(
        "--datasets",
        choices=["modelfest", "all"],
        default="all",
        help="'modelfest': ModelFest's 14 rows only; 'all': every achromatic foveal static dataset, ModelFest "
        "included and listed first (default all)",
    )
    p.add_argument("--models", default=None, help="comma-separated CSF models (default: all; see psychofeat.csf)")
    p.add_argument(
        "--achromatic-max-angle",
        type=float,
        default=5.0,
        metavar="DEG",
        help="a row is achromatic when its cone-contrast vector is within DEG of (1,1,1) (default 5; docs/csf.md)",
    )
    add_out_args(p, default="out/hvs/csf_check")
    p.set_defaults(func=_csf_check)


def _csf_check(args: argparse.Namespace) -> int:
    from psychofeat.hvs.csf_check import run_csf_check

    table = run_csf_check(
        args.out,
        datasets=args.datasets,
        model_names=csv_list(args.models),
        overwrite=args.overwrite,
        max_angle_deg=args.achromatic_max_angle,
    )
    shown = table[["dataset", "model", "n", "shift", "rmse"]].round({"shift": 3, "rmse": 3})
    print(shown.to_string(index=False))
    print(f"wrote {args.out}/csf_check.csv, manifest.json, report.html")
    return 0
