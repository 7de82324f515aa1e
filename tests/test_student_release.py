"""The student release (``make student``): written by nbgrader from the instructor notebooks, free
of solutions and answers, and runnable when no exercise is done.

CI runs every instructor notebook in full (nbval). The release differs from it only in the
exercise cells (solutions replaced by ``raise NotImplementedError()``) and the answers (markdown),
so here each release notebook runs its setup cell, exercise cells and check cells: every check
must say "not done yet", and no other cell may use what an exercise cell defines (checked on the
code), so the rest of the release runs exactly as nbval ran it.
"""
import ast
import importlib.util
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
STEMS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
ANSWER_BEGIN, ANSWER_END = "=== BEGIN SOLUTION ===", "=== END SOLUTION ==="

pytest.importorskip("nbgrader", reason="the student release needs nbgrader (dev dependency)")
_spec = importlib.util.spec_from_file_location("student_release",
                                               REPO / "scripts" / "student_release.py")
student_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_release)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    student_release.write_release(out)
    return {stem: nbformat.read(out / f"{stem}.ipynb", as_version=4) for stem in STEMS}


def instructor(stem):
    return nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)


def tagged(nb, tag):
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


def regions(source, begin, end):
    """The text inside every begin/end region of a cell."""
    found, inside = [], None
    for line in source.splitlines():
        if begin in line:
            inside = []
        elif end in line and inside is not None:
            found.append("\n".join(inside))
            inside = None
        elif inside is not None:
            inside.append(line)
    return found


def test_make_student_writes_the_release(tmp_path):
    out = tmp_path / "student"
    subprocess.run(["make", "--no-print-directory", "student", f"STUDENT_OUT={out}"], cwd=REPO,
                   check=True, capture_output=True, text=True)
    assert sorted(p.stem for p in out.glob("*.ipynb")) == STEMS


@pytest.mark.parametrize("stem", STEMS)
def test_every_notebook_has_a_checked_exercise_and_answers(stem):
    nb = instructor(stem)
    exercises, checks = tagged(nb, "exercise"), tagged(nb, "check")
    assert exercises and checks, f"{stem}: no exercise or no check cell"
    for cell in exercises:
        meta = cell.metadata.get("nbgrader", {})
        assert meta.get("solution") is True and meta.get("grade_id", "").startswith("ex"), meta
        assert regions(cell.source, BEGIN, END), f"{stem}: an exercise cell without a solution"
    for cell in checks:
        assert re.search(r"\bcheck\.\w+\(my_\w+", cell.source), cell.source
    answers = tagged(nb, "answers")
    assert len(answers) == 1, f"{stem}: one Questions cell tagged 'answers'"
    questions = re.findall(r"^\d+\. ", answers[0].source, flags=re.MULTILINE)
    given = regions(answers[0].source, ANSWER_BEGIN, ANSWER_END)
    assert len(questions) == len(given) >= 1, f"{stem}: {len(questions)} questions, {len(given)} answers"
    assert all(len(a.strip()) > 40 for a in given), f"{stem}: an empty or one-word answer"


@pytest.mark.parametrize("stem", STEMS)
def test_release_has_no_solution_text_and_no_outputs(stem, release):
    nb, student = instructor(stem), release[stem]
    outside = "\n".join(re.sub(r"(?s)(BEGIN SOLUTION).*?(END SOLUTION)", "", c.source)
                        for c in nb.cells)
    secret = {line.strip() for c in nb.cells
              for r in regions(c.source, BEGIN, END) + regions(c.source, ANSWER_BEGIN, ANSWER_END)
              for line in r.splitlines()
              if len(line.strip()) >= 12 and line.strip() not in outside}
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    leaked = [line for line in secret if line in text]
    assert not leaked, f"{stem}: solution text in the student release: {leaked[:3]}"
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    assert text.count("raise NotImplementedError()") >= len(tagged(nb, "exercise"))
    assert "YOUR ANSWER HERE" in text


@pytest.mark.parametrize("stem", STEMS)
def test_release_differs_only_in_exercises_and_answers(stem, release):
    nb, student = instructor(stem), release[stem]
    assert len(nb.cells) == len(student.cells)
    for mine, theirs in zip(nb.cells, student.cells):
        if mine.source != theirs.source:
            assert {"exercise", "answers"} & set(mine.metadata.get("tags", [])), mine.source[:200]


def _defined(source):
    """Top-level names a cell defines (functions, classes, assignments)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _used(source):
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


@pytest.mark.parametrize("stem", STEMS)
def test_only_exercise_and_check_cells_use_the_students_code(stem):
    """Every other cell runs the same in both versions: the panels use helpers, not my_*."""
    nb = instructor(stem)
    code = [c for c in nb.cells if c.cell_type == "code"]
    theirs = set().union(*(_defined(c.source) for c in tagged(nb, "exercise")))
    for cell in code:
        if {"exercise", "check"} & set(cell.metadata.get("tags", [])):
            continue
        source = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith("%"))
        assert not (theirs & _used(source)), \
            f"{stem}: a cell outside the exercises uses {sorted(theirs & _used(source))}"


@pytest.fixture(scope="module")
def kernel():
    """One kernel for all release notebooks (each test starts with ``%reset -f``)."""
    from nbclient import NotebookClient

    client = NotebookClient(nbformat.v4.new_notebook(), timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    with client.setup_kernel():
        yield client


@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
def test_release_exercises_run_and_say_not_done_yet(stem, release, kernel):
    """Setup cell, exercise cells and check cells of the release, in a kernel with nothing
    defined (``%reset -f``: what an earlier notebook defined is gone)."""
    student = release[stem]
    code = [c for c in student.cells if c.cell_type == "code"]
    cells = [nbformat.v4.new_code_cell("%reset -f"), code[0]] + [
        c for c in code[1:] if {"exercise", "check"} & set(c.metadata.get("tags", []))]
    kernel.nb = nbformat.v4.new_notebook(cells=cells, metadata=student.metadata)
    for i, cell in enumerate(kernel.nb.cells):
        kernel.execute_cell(cell, i)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{stem}: {errors[0].ename}: {errors[0].evalue}\n{cell.source}"
    for cell in tagged(kernel.nb, "check"):
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "not done yet" in printed and "✓" not in printed and "✗" not in printed, \
            f"{stem}: check printed {printed!r}"
