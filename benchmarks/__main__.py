"""`python -m benchmarks {analyze,...} [--device cpu] [--out FILE.json]`: speed/memory ratios measured in one run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.common import machine_info, print_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("which", choices=["analyze"], help="benchmark to run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", default=None, help="VGG-16 weights (default: original ImageNet)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    import torch

    from psychofeat.io import write_json

    results = []
    if args.which == "analyze":
        from benchmarks.analyze_bench import run

        r = run(args.device, args.weights, args.batch_size)
        results.append(r)
        print_table([r], ["benchmark", "n_stimuli", "analyze_s", "bare_forward_s", "ratio", "target_ratio"])
    payload = {"machine": machine_info(torch.device(args.device)), "results": results}
    if args.out:
        write_json(Path(args.out), payload)
    else:
        json.dump(payload, sys.stdout, indent=2, default=str)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
