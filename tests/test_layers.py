"""The layers of the package, enforced: who may import whom, and no import cycles.

    bottom     optimizer.{vocabulary, errors, units, outcome, fileio, economics, limits}: nothing above them
    catalogs   catalogs.*                                              bottom + catalogs
    optimizer  the other optimizer.* modules                           bottom + catalogs + optimizer
    cli        cli.*                                                   anything below
    package    flopopt/__init__.py, __main__.py                        anything

Every import counts, including the lazy ones inside functions (they keep start-up fast, but a
lazy import is still a dependency). The graph of flopopt modules must have no cycle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from builders import REPO

BOTTOM = {"optimizer.vocabulary", "optimizer.errors", "optimizer.units", "optimizer.outcome", "optimizer.fileio",
          "optimizer.economics", "optimizer.limits"}
RANK = {"bottom": 0, "catalogs": 1, "optimizer": 2, "cli": 3, "package": 4}


def _modules() -> dict[str, Path]:
    found = {}
    for folder in ("optimizer", "catalogs", "cli"):
        for path in sorted((REPO / folder).rglob("*.py")):  # subpackages too (catalogs/sources/)
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    found["__init__"] = REPO / "__init__.py"
    found["__main__"] = REPO / "__main__.py"
    return found


def _layer(module: str) -> str:
    if module in BOTTOM:
        return "bottom"
    top = module.split(".")[0]
    return top if top in ("catalogs", "optimizer", "cli") else "package"


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """flopopt modules imported anywhere in the file (relative and absolute forms)."""
    if path.name == "__init__.py":
        package = module if module not in ("__init__", "__main__") else ""
    else:
        package = module.rsplit(".", 1)[0] if "." in module else ""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("flopopt"):
                target = node.module.removeprefix("flopopt").lstrip(".")
            else:
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}" if target else alias.name
                out.add(candidate if candidate in known else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("flopopt."):
                    out.add(alias.name.removeprefix("flopopt."))
    return {m for m in out if m in known and m != module}


@functools.cache   # parsed once per test process: the sources do not change during a run
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {m: _imports(m, p, known) for m, p in modules.items()}


def test_every_import_points_down_or_sideways() -> None:
    wrong = []
    for module, targets in _graph().items():
        mine = _layer(module)
        for target in targets:
            theirs = _layer(target)
            if theirs in ("catalogs", "optimizer", "cli") and target.split(".")[0] in ("catalogs", "optimizer", "cli") \
                    and target in ("catalogs", "optimizer", "cli"):
                continue  # the folder packages' empty __init__ files
            if RANK[theirs] > RANK[mine] or (mine == "bottom" and theirs != "bottom"):
                wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" → ".join(c) for c in cycles)


def test_the_checker_sees_lazy_imports() -> None:
    """Guard against a checker that passes by seeing nothing: solve's lazy serving import is found."""
    graph = _graph()
    assert "optimizer.serving_solve" in graph["optimizer.solve"]
    assert "optimizer.vocabulary" in graph["catalogs.schema"]
    assert "catalogs.sources.base" in graph["catalogs.sources.azure"]   # modules in subpackages count
