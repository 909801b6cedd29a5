"""The package's layout rules (docs/developing.md, "Floors"), checked on the source with `ast`.

Every `import` and `from … import` in every module counts — module level, in functions and under
``TYPE_CHECKING`` alike — since each is a dependency someone has to reason about. The rules:

* the import graph has no circles;
* a module imports only from its own floor or lower ones;
* nothing below the package face imports the package itself (``psychofeat/__init__.py``);
* a study never imports its report: ``*_report`` modules are imported only by the CLI and other reports;
* no module is over `MAX_LINES` lines unless it is listed in `ONE_JOB` with the job it does.

Run it alone with ``python -m pytest tests/test_architecture.py``; `python tests/test_architecture.py` prints the
graph's edges that break a rule.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "psychofeat"

#: floor of each module, by longest matching dotted prefix (relative to the package); lowest first
FLOORS: dict[str, int] = {
    # 0 foundations: no knowledge of networks
    "_version": 0, "_deprecation": 0, "errors": 0, "machine": 0, "config": 0, "progress": 0, "io": 0, "precision": 0,
    "resources": 0, "stats": 0, "images": 0, "stimuli": 0, "display": 0, "colour": 0, "csf": 0, "report": 0,
    # 1 networks: weights, trunks, feature extraction
    "weights": 1, "backbones": 1, "features": 1,
    # 2 channels: probing, scoring, selecting
    "probe": 2, "scores": 2, "selection": 2, "agreement": 2, "analysis": 2, "analysis_report": 2, "analyze": 2,
    "analyze_report": 2, "colour_scores": 2,
    # 3 distances built from selected channels
    "distance": 3, "distance_bank": 3, "distance_banks": 3, "metric_banks": 3, "metric": 3, "loss": 3, "classic": 3,
    "bundled": 3, "metrics_registry": 3,
    # 4 studies: data sets and the experiments behind the CLI verbs
    "datasets": 4, "hvs": 4, "experiments": 4, "sr": 4,
    # 5 the faces: command line and package namespace
    "cli": 5, "__main__": 5, "": 5,
}

MAX_LINES = 450
#: modules allowed over MAX_LINES, with their one job
ONE_JOB: dict[str, str] = {
    "io": "outputs written one way: atomic files, exclusive commits, run folders swapped in whole, provenance",
    "selection": "a channel selection: built from scores, checked against its versioned schema, saved and loaded",
    "sr.train": "the SR training loop, one process or DDP, with its resumable checkpoints",
}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    """The module (relative name) that an imported dotted name lives in, or None outside the package."""
    if name != "psychofeat" and not name.startswith("psychofeat."):
        return None
    rel = name[len("psychofeat."):] if name != "psychofeat" else ""
    while rel not in mods:
        if not rel:
            return ""
        rel = rel.rsplit(".", 1)[0] if "." in rel else ""
    return rel


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (relative dotted names, "" = the package itself)."""
    mods = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        here = ("psychofeat." + mod if mod else "psychofeat") if is_pkg else "psychofeat." + mod
        package = here if is_pkg else here.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                # `from psychofeat.x import y` imports module x.y if it is one, else a name of x
                for alias in node.names:
                    sub = f"{origin}.{alias.name}"
                    targets.append(sub if _resolve(sub, mods) == sub[len("psychofeat."):] else origin)
            for t in targets:
                r = _resolve(t, mods)
                if r is not None and r != mod:
                    edges[mod].add(r)
        edges.setdefault(mod, set())
    return edges


def floor(mod: str) -> int:
    best = None
    for prefix, f in FLOORS.items():
        if mod == prefix or (prefix and mod.startswith(prefix + ".")):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, f)
    if best is None:
        raise AssertionError(f"module {mod!r} has no floor: add it to FLOORS in tests/test_architecture.py")
    return best[1]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _is_report(mod: str) -> bool:
    return mod.rsplit(".", 1)[-1].endswith("_report") or mod == "report" or mod.startswith("report.")


def violations() -> dict[str, list[str]]:
    edges = import_graph()
    bad: dict[str, list[str]] = defaultdict(list)
    for comp in cycles(edges):
        bad["circles"].append(" ↔ ".join(comp))
    for mod, targets in sorted(edges.items()):
        for t in sorted(targets):
            if floor(t) > floor(mod):
                bad["upward"].append(f"{mod or 'psychofeat'} (floor {floor(mod)}) imports {t} (floor {floor(t)})")
            if t == "" and floor(mod) < 5:
                bad["package"].append(f"{mod} imports the package face")
            study_report = t.rsplit(".", 1)[-1].endswith("_report")
            if study_report and not (_is_report(mod) or floor(mod) == 5):
                bad["study imports its report"].append(f"{mod} imports {t}")
    for mod, path in sorted(_modules().items()):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES and mod not in ONE_JOB:
            bad["long"].append(f"{mod}: {n} lines")
    return bad


@pytest.mark.parametrize("rule", ["circles", "upward", "package", "study imports its report", "long"])
def test_layout_rule(rule: str) -> None:
    found = violations().get(rule, [])
    assert not found, f"{rule}:\n  " + "\n  ".join(found)


def test_every_module_has_a_floor() -> None:
    for mod in _modules():
        floor(mod)


def test_the_checker_sees_imports() -> None:
    """The walk finds what it must: metric imports distance, the CLI imports commands (guards against a blind check)."""
    edges = import_graph()
    assert "distance" in edges["metric"]
    assert any(t.startswith("cli.commands") for t in edges["cli"])
    assert floor("hvs.detection") == 4 and floor("cli.commands.analyze") == 5 and floor("") == 5


if __name__ == "__main__":
    for rule, items in violations().items():
        print(f"{rule}: {len(items)}")
        for item in items:
            print("  ", item)
