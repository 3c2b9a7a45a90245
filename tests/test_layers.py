"""The design's one-way flow, checked on the code: features -> models, allocation -> experiments ->
api. No module imports from a layer above its own (allocation needs nothing of models: scores
reach it as a frame), and no import cycle exists between any two modules."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"features": 1, "models": 2, "allocation": 2, "experiments": 3, "api": 4}
# Same floor, still one way: the allocation takes scores as a frame and never imports models.
FORBIDDEN = {("allocation", "models"), ("models", "allocation")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path for package in FLOORS for path in (ROOT / package).rglob("*.py")
    }


def _imports(path: Path, *, module: str, known: set[str]) -> set[str]:
    """Project modules this file imports anywhere in it (top level or inside functions)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {_owner(name, known) for name in names if _owner(name, known)}
    return found - {module}


def _owner(name: str, known: set[str]) -> str | None:
    """The project module a dotted import name refers to (its longest known prefix)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, module=name, known=known) for name, path in modules.items()}


def _package(module: str) -> str:
    return module.split(".")[0]


def test_no_module_imports_from_a_layer_above_its_own(graph):
    upward = sorted(
        f"{module} imports {imported}"
        for module, imports in graph.items()
        for imported in imports
        if FLOORS[_package(imported)] > FLOORS[_package(module)]
        or (_package(module), _package(imported)) in FORBIDDEN
    )
    assert upward == []


def test_there_is_no_import_cycle(graph):
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")


def test_the_check_sees_imports_inside_functions_and_relative_ones(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "def f():\n    from api.app import create_app\n\nfrom .sibling import x\n", encoding="utf-8"
    )
    known = {"api.app", "features.sibling", "features.mod"}
    assert _imports(source, module="features.mod", known=known) == {"api.app", "features.sibling"}
