"""`psychofeat distance A B`: named metrics on two images or on the same-named images of two folders, as CSV."""

from __future__ import annotations

import argparse

from psychofeat.cli.common import add_threads_arg, csv_list, device_arg, set_threads, size_arg

#: the text columns of the CSV (file names): neutralised against spreadsheet formulas (`io.csv_safe`)
TEXT_COLUMNS = ("name", "a", "b", "converted_to_rgb")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "distance",
        help="score two images, or the same-named images of two folders, with any listed metric (CSV)",
        description="Compute metrics of the registry (deep selected-channel distances bundled with the package, "
        "PSNR, SSIM) between two images, or between the images of two folders paired by file name. Writes CSV to "
        "stdout or --out; unmatched names, skipped files and greyscale conversions are reported on stderr.",
    )
    p.add_argument("a", nargs="?", help="an image file or a folder of images")
    p.add_argument("b", nargs="?", help="an image file or a folder of images (same kind as A)")
    p.add_argument("--metric", default="vgg16-pe-top25",
                   help="comma-separated metric names (default vgg16-pe-top25); see --list-metrics")
    p.add_argument("--list-metrics", action="store_true", help="list the metrics with their metadata and exit")
    p.add_argument("--resize", type=size_arg, default=None, metavar="SHORT_SIDE",
                   help="scale both images so the short side has this many pixels (antialiased bicubic; "
                   "default: native size)")
    p.add_argument("--out", default=None, help="write the CSV here instead of stdout")
    p.add_argument("--overwrite", action="store_true", help="allow replacing an existing --out file")
    p.add_argument("--device", default="cpu", type=device_arg, help="torch device, e.g. cpu, cuda (default cpu)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "auto"],
                   help="compute dtype of the deep metrics (default float32; auto = bfloat16 only where the device "
                   "computes it natively)")
    add_threads_arg(p)
    p.set_defaults(func=run)


def list_metrics_table() -> str:
    import pandas as pd

    from psychofeat.metrics_registry import list_metrics, metric_info

    rows = []
    for name in list_metrics():
        i = metric_info(name)
        rows.append({"metric": name, "lower_better": i.lower_better, "min_size": i.min_size,
                     "network": i.network or "", "layers": len(i.channels) or "", "channels": i.n_channels or "",
                     "description": i.description})
    return pd.DataFrame(rows).to_string(index=False)


def run(args: argparse.Namespace) -> int:
    import os
    import sys
    from pathlib import Path

    from psychofeat.errors import InputError
    from psychofeat.io import check_output_file, csv_safe

    if args.list_metrics:
        print(list_metrics_table())
        return 0
    if args.a is None or args.b is None:
        raise InputError("give two image files or two folders: psychofeat distance A B (or --list-metrics).")
    # refused before any work: a folder, a device, a link or fifo, an existing file without --overwrite, an
    # unwritable place; without --overwrite the file is also created exclusively at the end (io.atomic_path)
    out = check_output_file(args.out, args.overwrite) if args.out else None
    if out is not None and out.exists() and any(Path(p).exists() and os.path.samefile(out, p)
                                                for p in (args.a, args.b)):
        raise InputError(f"--out {out} is one of the input images; choose another path for the CSV.")
    set_threads(args.threads)
    from psychofeat.experiments.score_pairs import score_pairs

    result = score_pairs(args.a, args.b, csv_list(args.metric) or [], args.resize, args.device, args.dtype)
    plan = result.plan
    for label, names in ((f"in {args.a} only", plan.only_a), (f"in {args.b} only", plan.only_b),
                         ("not images (skipped)", plan.skipped)):
        if names:
            print(f"psychofeat: {len(names)} file(s) {label}: {', '.join(names[:20])}"
                  + (" ..." if len(names) > 20 else ""), file=sys.stderr)
    n_conv = int((result.table["converted_to_rgb"] != "").sum())
    if n_conv:
        print(f"psychofeat: {n_conv} pair(s) had images converted to RGB (column converted_to_rgb)", file=sys.stderr)
    table = csv_safe(result.table, TEXT_COLUMNS)
    if out is None:
        table.to_csv(sys.stdout, index=False)
    else:
        from psychofeat.io import write_table

        write_table(out, table, overwrite=args.overwrite)
        n = len(table)
        print(f"{n} pair{'' if n == 1 else 's'}; wrote {out}", file=sys.stderr)
    return 0
