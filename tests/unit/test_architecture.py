"""The house's shape, checked over the source (issue 13, DESIGN.md "layers"): no import cycle among
oaops modules (imports inside functions count: a late import must not hide one), no import
pointing up a layer, no SQL in services, and no module a newcomer cannot read in one sitting."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "oaops"
MAX_LINES = 600

# Lowest first; a module imports only from its own layer or below (docs/architecture.md).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("rules", ("oaops.rules", "oaops.errors")),
    (
        "config",
        (
            "oaops.config",
            "oaops.config_estate",
            "oaops.schemas",
            "oaops.signing",
            "oaops.yamlsafe",
            "oaops.checkpoints",
            "oaops.site_files",
            "oaops.starter",
            "oaops.private_cache",
        ),
    ),
    ("store", ("oaops.store",)),
    ("runs", ("oaops.runs",)),
    ("services", ("oaops.services",)),
    ("reports", ("oaops.reports", "oaops.demo", "oaops.demo_data", "oaops.demo_site", "oaops.demo_mail")),
    ("cli", ("oaops.cli", "oaops.web", "oaops.__main__", "oaops")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def sources() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py") if "migrations" not in p.parts}


def imports_of(name: str, path: Path) -> set[str]:
    """Every oaops module `name` imports, at any depth of the file (functions, TYPE_CHECKING)."""
    mods = sources()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target.startswith("oaops") and target != name:
                found.add(target)
    return found


@cache
def graph() -> dict[str, set[str]]:
    return {name: imports_of(name, path) for name, path in sources().items()}


def layer_of(name: str) -> int:
    best, level = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    return level


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
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


def test_the_graph_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The checks below would be empty promises if the walk missed late or typing-only imports."""
    edges = graph()
    assert "oaops.rules.time" in edges["oaops.store.journal"]
    assert "oaops.services.registry" in edges["oaops.services.context"]
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from oaops.store.db import Database\n"
        "def f():\n    from oaops.services import health\n    import oaops.rules.time\n"
    )
    assert imports_of("oaops.probe", probe) == {"oaops.store.db", "oaops.services.health", "oaops.rules.time"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_oaops_modules() -> None:
    assert cycles(graph()) == []


def test_every_module_has_a_layer() -> None:
    assert [name for name in sources() if layer_of(name) < 0] == []


def test_no_import_points_up_a_layer() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]
    assert upward == []


def test_services_write_no_sql() -> None:
    """All SQL lives in oaops/store (DESIGN.md): services call store functions."""
    offenders = []
    for name, path in sources().items():
        if not name.startswith("oaops.services"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            offenders += [f"{name}: {m}" for m in mods if m.split(".")[0] == "sqlalchemy"]
    assert offenders == []


@pytest.mark.parametrize("name", sorted(sources()))
def test_module_is_readable_in_one_sitting(name: str) -> None:
    lines = len(sources()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by concern"
