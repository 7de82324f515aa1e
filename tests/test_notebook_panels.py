"""The notebook checks that ride on nbval's run: are they wired up, and do they probe cheaply?

The checks themselves run as items of each notebook, in nbval's kernel after its last cell
(``notebook_checks.py``, registered by the repository's ``conftest.py``): ``printed values``
compares the text of the cells listed in ``PRINTED``, ``widget panels`` runs ``panel_probe.py``
(every control of every panel moved with a fixed seed; figures change and are shown, no errors,
no hooks left, models unchanged, memory growth < 5 %). The tests here are quick: they make sure
that every notebook gets those items and that the probe's cost caps do what they say.
"""
import subprocess
import sys

import ipywidgets as W
import nbformat
import pytest
from notebook_checks import NOTEBOOKS, PRINTED, REPO, course_notebook
from panel_probe import CAP, value_range

COURSE = [p for p in sorted(NOTEBOOKS.glob("*.ipynb")) if course_notebook(p)]


def test_twelve_course_notebooks():
    assert len(COURSE) == 12, [p.name for p in COURSE]


@pytest.mark.parametrize("stem, fragments", list(PRINTED.items()))
def test_each_printed_value_has_one_cell(stem, fragments):
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    for fragment in fragments:
        cells = [c for c in nb.cells if c.cell_type == "code" and fragment in c.source]
        assert len(cells) == 1, f"{stem}: {len(cells)} cells contain {fragment!r}"


def test_every_notebook_gets_its_checks():
    """Collected by pytest itself: each notebook's cells, then its printed values, exercise checks
    and panels."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "notebooks"],
                         cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    for nb in COURSE:
        mine = [i.split("::", 1)[1] for i in ids if i.startswith(f"notebooks/{nb.name}::")]
        expected = ["printed values"] * (nb.stem in PRINTED) + ["exercise checks", "widget panels"]
        assert mine[-len(expected):] == expected, (nb.name, mine)
        assert all(i.startswith("Cell ") for i in mine[:-len(expected)]), (nb.name, mine)


def test_not_slow_keeps_printed_values_and_drops_the_probe():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "-m", "not slow",
                          "notebooks/03_activations.ipynb"],
                         cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert "03_activations.ipynb::printed values" in out.stdout, out.stdout[-2000:]
    assert "widget panels" not in out.stdout, out.stdout[-2000:]


def test_cost_controls_are_capped_and_still_move():
    steps = W.IntSlider(value=64, min=16, max=512, description="steps")
    assert value_range(steps, 64) == (16, CAP * 64)
    octaves = W.IntSlider(value=3, min=1, max=6, description="octaves")
    assert value_range(octaves, 3) == (1, 6)  # 2 x 3 is the maximum already
    size = W.IntSlider(value=128, min=64, max=192, description="output size")
    assert value_range(size, 128) == (64, 192)
    few = W.IntSlider(value=1, min=1, max=100, description="steps / octave")
    assert value_range(few, 1) == (1, 2)  # still moves
    stride = W.IntSlider(value=32, min=16, max=64, description="stride")
    assert value_range(stride, 32) == (16, 64)
    stride = W.IntSlider(value=48, min=16, max=64, description="stride")
    assert value_range(stride, 48) == (24, 64)
    lr = W.FloatSlider(value=0.1, min=0.01, max=0.3, description="learning rate")
    assert value_range(lr, 0.1) == (0.01, 0.3)  # not a cost: the whole range
