"""The import graph of ``kairos/``: imports point only downward, and no two modules import
each other, directly or through others (function-level imports included).

The layer table below is the map drawn in ``docs/architecture.md``; a new package or module
must find its place in it (the test fails on a module no layer claims).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "kairos"

# Bottom to top.  Each layer holds one or more units (name, module prefixes); a module may
# import any module of its own unit or of a lower layer, never one of a higher layer, nor one
# of another unit of its own layer (siblings, such as ingest and query, stay independent).
LAYERS: list[list[tuple[str, tuple[str, ...]]]] = [
    [("native", ("kairos._native",))],
    [("errors", ("kairos.errors",))],
    [("model", ("kairos.model",))],
    [("logs", ("kairos.logs",)), ("hist", ("kairos._hist",)), ("allocator", ("kairos.allocator",))],
    [("config", ("kairos.config",))],
    [
        (
            "storage-base",
            (
                "kairos.storage._fs",
                "kairos.storage._frame",
                "kairos.storage.protocol",
                "kairos.storage.versions",
                "kairos.storage.records",
                "kairos.storage.wal",
            ),
        )
    ],
    [("embedded", ("kairos.storage.embedded",)), ("cassandra", ("kairos.storage.cassandra",))],
    [("storage", ("kairos.storage",))],
    [("ingest", ("kairos.ingest",)), ("query", ("kairos.query",))],
    [("app", ("kairos.app",))],
    [("perf", ("kairos.perf",))],
    [("root", ("kairos",))],  # kairos/__init__.py: __version__, Histogram, a lazy create_app
    [("cli", ("kairos.cli", "kairos.__main__"))],
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _unit(module: str) -> tuple[int, str]:
    """(layer index, unit name) of ``module``: the unit with the longest matching prefix."""
    best: tuple[int, int, str] | None = None
    for i, layer in enumerate(LAYERS):
        for name, prefixes in layer:
            for prefix in prefixes:
                matches = module == prefix or module.startswith(prefix + ".")
                if matches and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), i, name)
    assert best is not None, f"{module} is in no layer of tests/unit/test_layers.py"
    return best[1], best[2]


def _imports(module: str, path: Path) -> set[str]:
    """The kairos modules ``module`` imports anywhere in its body (``from p import m`` counts
    as importing the module ``p.m`` when that is a module, else ``p``)."""
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                src = ".".join([*base, *([node.module] if node.module else [])])
            else:
                src = node.module or ""
            targets = [
                f"{src}.{a.name}" if f"{src}.{a.name}" in MODULES else src for a in node.names
            ]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:  # `import kairos.x.y` of a non-module name
                t = t.rpartition(".")[0]
            if t.startswith("kairos") and t != module:
                out.add(t)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    for m in MODULES:
        _unit(m)


def test_imports_point_downward() -> None:
    bad = []
    for m, targets in sorted(GRAPH.items()):
        layer, unit = _unit(m)
        for t in sorted(targets):
            t_layer, t_unit = _unit(t)
            if t_layer > layer:
                bad.append(f"{m} ({unit}) imports {t} ({t_unit}): upward")
            elif t_layer == layer and t_unit != unit:
                bad.append(f"{m} ({unit}) imports {t} ({t_unit}): sideways")
    assert not bad, "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_the_checks_can_fail() -> None:
    """The graph walk sees real imports, and the checks flag what they should."""
    assert "kairos.model.batch" in GRAPH["kairos.storage.protocol"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _unit("kairos.storage.embedded.store") == (6, "embedded")
    assert _unit("kairos.storage.writer") == (7, "storage")
    assert _unit("kairos.ingest.parser")[0] == _unit("kairos.query.engine")[0]


def test_kernels_are_modules() -> None:
    """Compiled kernels have no ``.py``: they are imported as ``kairos._native.x`` and count
    as the native layer."""
    assert importlib.util.find_spec("kairos._native.chunks") is not None
    assert _unit("kairos._native.chunks") == (0, "native")
