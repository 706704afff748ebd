"""The package layering of README's "Design", checked on the source: every ``import`` of every
module under ``src/facespot`` (at module level and inside functions, ``TYPE_CHECKING`` blocks
included) points down, never up and never sideways into another package of the same layer,
and the packages import one another without a circle.

Layers, bottom to top: core (``errors``, ``files``, ``images``, ``boxes``, ``anchors``, ``spec``,
the package ``__init__``, ``weights``) -> ``models`` / ``data`` -> ``eval`` -> ``train`` /
``runtime`` / ``shipping`` -> ``serve`` / ``distributed`` -> ``cli`` -> ``__main__``. Core
modules may import each other (without a circle). The lazy ``facespot.load`` / ``align`` of the
package ``__init__`` are names in a table resolved by ``importlib`` on first use, not imports:
the one way down-to-up that is meant (the public facade).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "facespot"

CORE = ("errors", "files", "images", "boxes", "anchors", "spec", PACKAGE, "weights")
LAYERS: dict[str, int] = {
    **{name: 0 for name in CORE},
    "models": 1, "data": 1,
    "eval": 2,
    "train": 3, "runtime": 3, "shipping": 3,
    "serve": 4, "distributed": 4,
    "cli": 5,
    "__main__": 6,
}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def unit(module: str) -> str:
    """The layer unit of a module: its top-level name under ``facespot`` (the package itself for ``facespot``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path) -> list[tuple[str, int]]:
    """``(imported facespot module, line)`` for every import statement in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            for alias in node.names:  # `from facespot import boxes` imports the module facespot.boxes
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in MODULES else target, node.lineno))
    return [(name, line) for name, line in found if name == PACKAGE or name.startswith(PACKAGE + ".")]


def edges() -> list[tuple[str, str, str]]:
    """``(from unit, to unit, "file:line imports module")`` for every import between two units."""
    out = []
    for module, path in MODULES.items():
        for target, line in imports_of(module, path):
            a, b = unit(module), unit(target)
            if a != b:
                out.append((a, b, f"{path.relative_to(SRC)}:{line} imports {target}"))
    return out


def test_every_package_and_core_module_has_a_layer():
    assert len(MODULES) > 100  # the walk found the source
    missing = sorted({unit(m) for m in MODULES} - set(LAYERS))
    assert not missing, f"give these a layer in tests/test_layering.py (and README's Design): {missing}"


def test_no_module_imports_from_a_higher_layer_or_a_sibling_package():
    wrong = []
    for a, b, where in edges():
        if LAYERS[b] > LAYERS[a]:
            wrong.append(f"{where}: {a} (layer {LAYERS[a]}) imports from a higher layer: {b} (layer {LAYERS[b]})")
        elif LAYERS[b] == LAYERS[a] > 0:
            wrong.append(f"{where}: {a} and {b} share layer {LAYERS[a]}; neither may import the other")
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], str] = {}
    for a, b, at in edges():
        graph[a].add(b)
        graph.setdefault(b, set())
        where.setdefault((a, b), at)
    cycles = _cycles(graph)
    shown = [
        " <-> ".join(c) + ": " + "; ".join(where[(a, b)] for a in c for b in c if (a, b) in where) for c in cycles
    ]
    assert not cycles, "\n".join(shown)


@pytest.mark.parametrize(
    "source, module, expected",
    [
        ("from facespot import boxes", "facespot.spec", ["facespot.boxes"]),
        ("from facespot import __version__", "facespot.models.io", ["facespot"]),
        ("from . import postprocess", "facespot.runtime.detector", ["facespot.runtime.postprocess"]),
        ("from ..cli.detect import x", "facespot.distributed.run", ["facespot.cli.detect"]),
        ("def f():\n    import facespot.cli.detect as d", "facespot.distributed.run", ["facespot.cli.detect"]),
        ("import numpy", "facespot.spec", []),
    ],
)
def test_the_checker_sees_every_form_of_import(tmp_path, source, module, expected):
    path = tmp_path / "m.py"
    path.write_text(source + "\n")
    assert [name for name, _ in imports_of(module, path)] == expected
