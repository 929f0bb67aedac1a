"""Every third-party module the code imports is declared in pyproject.toml (runtime or an extra)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The package and the modules of its own folders (the tests' helpers, the benchmark scripts).
LOCAL = {"layerft"} | {
    p.stem for folder in ("tests", "benchmarks") for p in (REPO / folder).glob("*.py")
}


def imported_modules(paths: list[Path]) -> set[str]:
    """Top-level names of every absolute import in `paths`."""
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - LOCAL - set(sys.stdlib_module_names) - {"__future__"}


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_import_is_a_declared_dependency() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    requirements = project["dependencies"] + [r for extra in extras for r in extra]
    declared = {
        normalised(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r).group()) for r in requirements
    }
    sources = [REPO / "train.py"]
    for folder in ("layerft", "benchmarks", "tests"):
        sources += sorted((REPO / folder).rglob("*.py"))
    distributions = packages_distributions()
    # A module of an extra that is not installed here is looked up under its own name.
    missing = {
        module: distributions.get(module, [module])
        for module in imported_modules(sources)
        if not {normalised(d) for d in distributions.get(module, [module])} & declared
    }
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
