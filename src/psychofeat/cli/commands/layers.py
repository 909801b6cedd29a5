"""`psychofeat layers [MODEL]`: the probe-able layers of a network, or the list of networks.

Shapes do not depend on weights, so the network is built with `random:0` unless `--weights` is given (which
also checks that a weights file fits the architecture, naming the first parameter that does not).
"""

from __future__ import annotations

import argparse

from psychofeat.cli.common import size_arg


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "layers",
        help="list a network's probe-able layers (name, module path, channels, spatial size)",
        description="List the probe-able layers of MODEL: human name, module path, output channels and spatial "
        "size for a SIZE×SIZE input; '*' marks the default analysis layers. Without MODEL, list the networks. "
        "MODEL may be a registered name or torchvision:<name> / timm:<name>.",
    )
    p.add_argument("model", nargs="?", default=None, help="network name (omit to list them)")
    p.add_argument(
        "--weights",
        default=None,
        help="weights to load and check (default random:0: shapes do not depend on weights); "
        "'imagenet', 'random[:SEED]', 'shuffled[:SEED]' or a .pth path",
    )
    p.add_argument("--size", type=size_arg, default=224,
                   help="input size in pixels for the spatial sizes (default 224)")
    p.set_defaults(func=run)


def format_table(rows: list[list[str]], header: list[str]) -> str:
    """Left-aligned text columns (numbers right-aligned), two spaces apart."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    numeric = [all(r[i].replace("x", "").isdigit() for r in rows) and rows != [] for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(r, widths, numeric)).rstrip()

    return "\n".join([fmt(header), *(fmt(r) for r in rows)])


def list_models() -> str:
    from psychofeat.backbones.registry import available_models, get_spec

    rows = []
    for name in available_models():
        spec = get_spec(name)
        rows.append([name, ", ".join(spec.sources), spec.description])
    table = format_table(rows, ["model", "pretrained weights", "description"])
    return table + "\n\nAlso: torchvision:<name> and timm:<name> (with those packages installed and --weights PATH)."


def layer_rows(model: str, weights: str | None, size: int) -> tuple[str, list[list[str]]]:
    from psychofeat.backbones import load_backbone
    from psychofeat.backbones.external import trace_layers
    from psychofeat.resources import check_memory, stimulus_batch_bytes

    b = load_backbone(model, weights=weights if weights is not None else "random:0")
    check_memory(stimulus_batch_bytes(size, 1), f"tracing {b.name} at --size {size}", "lower --size.")
    traced = trace_layers(b.net, size)
    defaults = {b.canonical_layer(layer) for layer in b.default_layers}
    rows = []
    for human, path in b.layer_paths.items():
        t = traced[path]
        if t.shape is None or len(t.shape) != 4:
            continue
        _n, c, h, w = t.shape
        rows.append([human, path, str(c), f"{h}x{w}", "*" if human in defaults else ""])
    why = "" if weights is not None else " (shapes only: they do not depend on the weights; --weights checks a file)"
    head = (f"# {b.name}: weights {b.weights_info.source}{why}, preprocessing {b.preprocessing.name}, "
            f"input {size}x{size}")
    return head, rows


def run(args: argparse.Namespace) -> int:
    if args.model is None:
        print(list_models())
        return 0
    head, rows = layer_rows(args.model, args.weights, args.size)
    print(head)
    print(format_table(rows, ["layer", "module", "channels", "size", "default"]))
    return 0
