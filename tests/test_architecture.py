"""The shape of the package that docs/architecture.md promises, checked from the tree.

Imports point one way (no cycle, lazy imports included), modules use each other's public names
only, notebooks use only public names of ``helpers``, no module grows past 450 lines, and no
helper makes float64 tensors (Apple's MPS has none).
"""
import ast
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "helpers"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
MAX_LINES = 450
EXERCISES = sorted((PACKAGE / "exercises").glob("*.py"))  # the checks: a layer above every module


def _tree(name):
    return ast.parse((PACKAGE / f"{name}.py").read_text(), filename=f"{name}.py")


def _imports(name):
    """(imported helpers module, names taken from it) for every relative import, lazy ones too."""
    found = []
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:  # from .x import a, b
                found.append((node.module.split(".")[0], [a.name for a in node.names]))
            else:            # from . import x, y
                found.extend((a.name, []) for a in node.names)
    return found


def _graph():
    return {m: {dep for dep, _ in _imports(m) if dep in MODULES and dep != m} for m in MODULES}


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(m, path):
        state[m] = "open"
        for dep in sorted(graph[m]):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep, path + [dep])):
                return found
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m, [m])):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


def test_no_import_cycle_among_helpers_modules():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()))


def _private_uses(name):
    """Private names of other helpers modules that module ``name`` uses."""
    uses = [f"{dep}.{n}" for dep, names in _imports(name) if dep != name
            for n in names if n.startswith("_")]
    modules = {a.asname or a.name for node in ast.walk(_tree(name))
               if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module
               for a in node.names}
    uses += [f"{node.value.id}.{node.attr}" for node in ast.walk(_tree(name))
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
             and node.value.id in modules and node.attr.startswith("_")]
    return uses


@pytest.mark.parametrize("name", MODULES)
def test_modules_use_only_public_names_of_each_other(name):
    assert _private_uses(name) == []


@pytest.mark.parametrize("name", MODULES)
def test_no_module_over_the_line_limit(name):
    lines = len((PACKAGE / f"{name}.py").read_text().splitlines())
    assert lines <= MAX_LINES, f"helpers/{name}.py has {lines} lines; split it by idea"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_exercise_checks_use_public_names_and_stay_short(path):
    """Checks import the helpers they compare with by public name; no helpers module imports them."""
    tree = ast.parse(path.read_text())
    private = [f"{n.module}.{a.name}" for n in ast.walk(tree)
               if isinstance(n, ast.ImportFrom) and n.level == 2 for a in n.names
               if a.name.startswith("_")]
    assert private == []
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_no_helpers_module_imports_the_exercise_checks():
    assert [m for m in MODULES for dep, _ in _imports(m) if dep == "exercises"] == []


def test_no_float64_in_helpers():
    pattern = re.compile(r"float64|\.double\(\)|torch\.double\b")
    hits = [f"{p.name}:{i}" for p in sorted(PACKAGE.rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def _notebook_code(path):
    cells = json.loads(path.read_text())["cells"]
    lines = [line for c in cells if c["cell_type"] == "code"
             for line in "".join(c["source"]).splitlines()
             if not line.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines), filename=path.name)


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_in_code(tree):
    """Private names of ``helpers`` that code reaches: helpers.x._y, widgets._STYLE, ..."""
    bound = {"helpers"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound |= {a.asname or a.name for a in node.names if a.name.startswith("helpers")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
            bound |= {a.asname or a.name for a in node.names}
    hits = [f"from {node.module} import {a.name}" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers")
            for a in node.names if _private(a.name)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in bound:
                hits.append(f"{ast.unparse(node.value)}.{node.attr}")
    return hits


def test_private_name_finder_finds_private_names():
    tree = ast.parse("import helpers\nfrom helpers import widgets\nfrom helpers.x import _y\n"
                     "widgets._STYLE\nhelpers.attribution._class\nhelpers.models.__name__\nother._x")
    assert sorted(_private_in_code(tree)) == sorted([
        "from helpers.x import _y", "widgets._STYLE", "helpers.attribution._class"])


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_use_only_public_names_of_helpers(path):
    assert _private_in_code(_notebook_code(path)) == []


def test_architecture_is_drawn():
    text = (REPO / "docs" / "architecture.md").read_text()
    missing = [m for m in MODULES if f"`{m}`" not in text and f"{m}.py" not in text]
    assert not missing, f"docs/architecture.md does not mention: {missing}"
