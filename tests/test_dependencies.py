"""Every third-party module the code imports is declared in pyproject.toml (runtime or an extra)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import distributions, packages_distributions
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the dev extra installs tomli there
    import tomli as tomllib

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
    # tomllib joined the standard library in 3.11 (this test imports it, tomli before 3.11)
    return names - LOCAL - set(sys.stdlib_module_names) - {"__future__", "tomllib"}


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def module_distributions() -> dict[str, list[str]]:
    """Top-level module -> the distributions that install it. Python 3.10's
    `packages_distributions` reads only top_level.txt, which some wheels (scikit-learn) lack;
    3.11 also infers the names from each distribution's RECORD, as this does on any version."""
    found = {module: list(names) for module, names in packages_distributions().items()}
    for dist in distributions():
        name = dist.metadata["Name"]
        # "sklearn/base.py" and "six.py" name a module; "x.dist-info/RECORD" and "../bin" do not
        tops = {
            f.parts[0].removesuffix(".py")
            for f in dist.files or []
            if len(f.parts) > 1 or f.suffix == ".py"
        }
        for top in filter(str.isidentifier, tops):
            if name not in found.setdefault(top, []):
                found[top].append(name)
    return found


def test_every_import_is_a_declared_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    requirements = project["dependencies"] + [r for extra in extras for r in extra]
    declared = {
        normalised(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r).group()) for r in requirements
    }
    sources = [REPO / "train.py"]
    for folder in ("layerft", "benchmarks", "tests"):
        sources += sorted((REPO / folder).rglob("*.py"))
    installed = module_distributions()
    # A module of an extra that is not installed here is looked up under its own name.
    missing = {
        module: installed.get(module, [module])
        for module in imported_modules(sources)
        if not {normalised(d) for d in installed.get(module, [module])} & declared
    }
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
