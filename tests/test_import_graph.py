"""The house: no import circles between the project's modules, and the core imports nothing above it.

The graph is read from the source (``ast``), so imports inside functions count too: a lazy import
is still a dependency, and a circle through one is still a circle. Imports under ``if
TYPE_CHECKING:`` do not count (they never run). An import of ``a.b.c`` is an edge to ``a.b.c`` and
to the packages ``a`` and ``a.b`` (their ``__init__`` runs first) unless the importing module lives
inside them already.

Cloud-Twin's state (``clouds``, ``resource``, each service's ``models``) never imports the engines that
act on it (the twin's assembly, faults, routing, the data plane, the app): they are wired in ``twin``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("spider_core", "mock_driver", "cloudtwin", "sgtest", "concurrency", "reports", "spidercluster")
ABOVE_THE_CORE = ("cloudtwin", "sgtest", "concurrency", "spidercluster")

STATE = ("cloudtwin.clouds", "cloudtwin.resource", "cloudtwin.ids")
ENGINES = ("cloudtwin.twin", "cloudtwin.faults", "cloudtwin.routing", "cloudtwin.dataplane", "cloudtwin.app",
           "cloudtwin.stages", "cloudtwin.admin")


def module_files() -> dict[str, Path]:
    """Every module of the project's packages by dotted name (a package is its ``__init__``)."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only; never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)  # submodules: from a import b
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (as defined in the module docstring)."""
    files = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1 + is_package)}
        edges: set[str] = set()
        for name in _imported_names(tree, module, is_package):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in files and target != module and target not in own_packages:
                    edges.add(target)
        graph[module] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            advanced = False
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_no_import_circles(graph):
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def _is_state(module: str) -> bool:
    parts = module.split(".")
    return module in STATE or (module.startswith("cloudtwin.services.") and parts[-1] in ("models", "resources"))


def test_cloudtwin_state_imports_no_engine(graph):
    bad = sorted((a, b) for a, targets in graph.items() if _is_state(a) for b in targets
                 if any(b == e or b.startswith(e + ".") for e in ENGINES))
    assert not bad, "state importing an engine:\n" + "\n".join(f"{a} -> {b}" for a, b in bad)


def test_the_core_imports_nothing_above_it(graph):
    upward = sorted((a, b) for a, targets in graph.items() if a.split(".")[0] == "spider_core"
                    for b in targets if b.split(".")[0] in ABOVE_THE_CORE)
    assert not upward, f"spider_core imports packages built on it: {upward}"


def test_the_graph_sees_lazy_relative_and_package_imports():
    tree = ast.parse("def f():\n    from .b import c\n    import a.x.y\nfrom . import d\n"
                     "if TYPE_CHECKING:\n    import a.typing_only\n")
    names = _imported_names(tree, "a.pkg.m", is_package=False)
    assert {"a.pkg.b", "a.pkg.b.c", "a.x.y", "a.pkg", "a.pkg.d"} <= names
    assert "a.typing_only" not in names
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
