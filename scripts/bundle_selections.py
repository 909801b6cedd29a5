"""Regenerate the selections shipped in src/psychofeat/data/selections/ (see psychofeat.bundled).

Each is the default `psychofeat analyze` result of a network with its original ImageNet weights (analysis defaults,
float32, CPU), trimmed to what selection needs. Run from the repository root:

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bundle_selections.py                  # all bundled networks
    .venv/bin/python scripts/bundle_selections.py --models vgg16 --from out/analyze   # reuse an analysis folder

`--from DIR` takes DIR/selection.json of an earlier `psychofeat analyze --model M` run instead of analysing again;
it is accepted only when that run used the default configuration and the same weights. A network whose weights
cannot be obtained (e.g. EfficientNet-Lite0 without the `efficientnet` extra) is reported and skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from psychofeat import bundled
from psychofeat.analysis import AnalysisConfig, analyze
from psychofeat.backbones import load_backbone
from psychofeat.errors import PsychofeatError
from psychofeat.selection import Selection


def default_selection(model: str, reuse: Path | None) -> Selection:
    """The selection of the default analysis of `model` (its original ImageNet weights)."""
    backbone = load_backbone(model)
    if reuse is not None:
        sel = Selection.load(reuse / "selection.json")
        analysis = sel.provenance.get("analysis", {})
        config = analysis.get("config")
        default_layers = backbone.depth_order(backbone.default_layers)
        if sel.model != model or config != AnalysisConfig().to_dict() or list(sel.layers) != default_layers:
            raise SystemExit(f"{reuse}/selection.json is not the default analysis of {model}; run without --from.")
        if sel.weights.get("params_sha256") != backbone.weights_info.params_sha256:
            raise SystemExit(f"{reuse}/selection.json was computed with other weights than {model}'s original ones.")
        return sel
    return analyze(backbone, progress=True).selection


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(bundled.MODELS), help="comma-separated networks (default: all)")
    p.add_argument("--from", dest="reuse", type=Path, default=None,
                   help="an analyze output folder to reuse (only with a single --models)")
    p.add_argument("--out", type=Path, default=bundled.data_dir(), help="where to write (default: the package data)")
    args = p.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.reuse is not None and len(models) != 1:
        raise SystemExit("--from needs exactly one --models.")
    selections: dict[str, Selection] = {}
    for model in models:
        t0 = time.perf_counter()
        try:
            selections[model] = default_selection(model, args.reuse)
        except PsychofeatError as exc:
            print(f"{model}: skipped: {exc}", file=sys.stderr)
            continue
        print(f"{model}: analysed in {time.perf_counter() - t0:.0f} s ({torch.get_num_threads()} threads)",
              file=sys.stderr)
    entries = bundled.write_bundles(selections, args.out)
    for model, e in entries.items():
        print(f"{args.out / e['file']}: {e['bytes']:,} bytes, sha256 {e['sha256'][:12]}…, "
              f"{sum(e['n_selected'].values())} of {sum(e['n_channels'].values())} channels selected")
    return 0 if selections else 1


if __name__ == "__main__":
    sys.exit(main())
