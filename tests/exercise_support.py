"""The instructor notebooks' exercise solutions, for the tests of the checks.

``solution("06_saliency", "my_saliency")`` runs the notebook's setup cell and its exercise cells
in a fresh namespace (model loading included, once per notebook) and returns the function the
notebook defines: the tests check the very code the answer key shows.
"""
import functools
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook(stem):
    return nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)


def tagged(nb, tag):
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


@functools.cache
def _namespace(stem):
    nb = notebook(stem)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    namespace = {"__name__": f"notebook_{stem}"}
    exec(compile(setup.source, f"{stem} setup", "exec"), namespace)
    for i, cell in enumerate(tagged(nb, "exercise")):
        exec(compile(cell.source, f"{stem} exercise {i}", "exec"), namespace)
    return namespace


def solution(stem, name):
    """The object ``name`` (a function or class) defined by the exercise cells of ``stem``."""
    namespace = _namespace(stem)
    if name not in namespace:
        raise KeyError(f"{stem}'s exercise cells define no {name!r}")
    return namespace[name]
