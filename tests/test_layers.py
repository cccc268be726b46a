"""The package's layering, checked on its source (nothing is imported).

`core` is the ground floor and imports nothing of gristmill; above it `filters`, then `stages`,
then `report` and `pipeline` (orchestration and the CLI): core ← filters ← stages ← report, pipeline.
`trainer` stands on core only, and only `pipeline` may reach it. The top level (`gristmill/__init__.py`,
`gristmill/__main__.py`) may import anything. Every import counts, wherever it sits (in a function,
under `if TYPE_CHECKING:`). `LAYERS` below is the one statement of the rule; a new sub-package must
be given its place there. Separately, no two modules may import each other at import time, however
indirectly (imports inside functions, for lazy loading of heavy dependencies, run late and are exempt,
as are type-only imports under `if TYPE_CHECKING:`).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gristmill"

LAYERS: dict[str, set[str]] = {  # sub-package -> the other sub-packages it may import
    "core": set(),
    "filters": {"core"},
    "stages": {"core", "filters"},
    "report": {"core", "filters", "stages"},
    "trainer": {"core"},
    "pipeline": {"core", "filters", "stages", "report", "trainer"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def known(name: str, modules) -> str:
    """The longest prefix of `name` that is a module (a package stands for its __init__)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(source: str, module: str, is_package: bool, modules=MODULES) -> list[tuple[int, str, bool]]:
    """(line, imported module, runs at import time) for each gristmill import in the source."""
    tree = ast.parse(source)
    late = set()  # nodes in a function body or under `if TYPE_CHECKING:`
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            late |= {id(n) for n in ast.walk(node)}
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            late |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[:len(package) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target == "gristmill" or target.startswith("gristmill."):
                found.append((node.lineno, known(target, modules), id(node) not in late))
    return found


def layer(module: str) -> str:
    """The sub-package a module belongs to ("gristmill" for the top level)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else "gristmill"


def all_imports():
    for module, path in MODULES.items():
        for line, target, eager in imports(path.read_text(), module, path.name == "__init__.py"):
            yield module, f"{path.relative_to(ROOT)}:{line}", target, eager


def test_no_import_points_up():
    bad = []
    for module, where, target, _ in all_imports():
        source, dest = layer(module), layer(target)
        if source in LAYERS and dest != source and dest not in LAYERS[source]:
            allowed = ", ".join(sorted(LAYERS[source])) or "nothing of gristmill"
            bad.append(f"{where}: {source} imports {target} ({source} may import only: {allowed})")
    assert not bad, f"{len(bad)} imports point up or across the layers:\n" + "\n".join(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v), on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop()), on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_modules():
    graph, where = {m: set() for m in MODULES}, {}
    for module, at, target, eager in all_imports():
        if eager and target != module:
            graph[module].add(target)
            where.setdefault((module, target), at)
    report = []
    for component in cycles(graph):
        report.append(f"cycle among {len(component)} modules: {', '.join(component)}")
        report += [f"  {where[m, t]}: {m} -> {t}" for m in component for t in sorted(graph[m]) if t in component]
    assert not report, "import-time cycles:\n" + "\n".join(report)


def test_every_subpackage_is_known():
    found = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert found <= set(LAYERS), f"sub-packages missing from LAYERS: {sorted(found - set(LAYERS))}"


def test_resolver():
    modules = {"gristmill.stages", "gristmill.stages.dedup", "gristmill.stages.dedup.records", "gristmill.core",
               "gristmill.core.io"}
    source = ("from . import records\nfrom ..base import x\nfrom gristmill.stages.dedup import records, run_dedup\n"
              "import gristmill.core.io\nfrom gristmill import core\nif TYPE_CHECKING:\n    import gristmill.core\n"
              "def f():\n    from ...core.io import y\n")
    assert imports(source, "gristmill.stages.dedup.buckets", False, modules) == [
        (1, "gristmill.stages.dedup.records", True), (2, "gristmill.stages", True),
        (3, "gristmill.stages.dedup.records", True), (3, "gristmill.stages.dedup", True),
        (4, "gristmill.core.io", True), (5, "gristmill.core", True), (7, "gristmill.core", False),
        (9, "gristmill.core.io", False)]
    assert imports("from .. import io", "gristmill.core.dedup", True, modules) == [(1, "gristmill.core.io", True)]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
