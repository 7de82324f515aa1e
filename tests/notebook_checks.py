"""pytest plugin: checks that ride on nbval's own run of every course notebook (one kernel, one run).

nbval (``--nbval-lax``) runs a notebook's code cells as the items ``Cell 0``, ``Cell 1``, ... in
one kernel. For every ``notebooks/NN_*.ipynb`` this plugin appends items that run after the last
cell, in that same kernel:

- ``printed values`` (notebooks listed in ``PRINTED``): the exact text a few cells printed
  (nbval has nothing to compare with: the notebooks are committed without outputs);
- ``exercise checks``: every check cell (tag ``check``) printed "passed" for the instructor's
  solution (the student release is tested in ``test_student_release.py``);
- ``widget panels`` (marked ``slow``): ``panel_probe.py`` moves every control of every panel to
  random and edge values with a fixed seed and checks that figures change and are shown, that no
  error reaches the output, that no hooks remain, that the models' modules and weights are
  unchanged, and that memory does not grow (< 5 %) when the same moves repeat. It also writes the
  static page ``artifacts/html/NN_x.html`` from this run (each panel shows its first drawing;
  equations are MathML, so the page needs no network).

Both need the notebook's cells to have run in this session: they fail when a cell failed (the
cell's own failure is reported above them) and are skipped when cells were deselected.
Registered by the repository's ``conftest.py``.
"""
import copy
import json
import re
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile, NbCellError

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
NOTEBOOKS = REPO / "notebooks"
HTML = REPO / "artifacts" / "html"
PROBE = TESTS / "panel_probe.py"
MOVES = 8  # random moves per panel; the probe repeats them once to measure memory growth

# Printed values that matter: a fragment of the cell's source -> the exact text it must print.
PRINTED = {
    "01_filters": {
        'print("AlexNet features.3 weight:"': "AlexNet features.3 weight: (192, 64, 5, 5)\n"},
    "03_activations": {
        'print(model.name, "predicts:"': "efficientnet_lite0 predicts: Egyptian cat\n",
        "for info in helpers.layers(model, SIZE):": (
            "act0       ReLU6      (32, 112, 112)\nblocks.2   MBConv     (24, 56, 56)\n"
            "blocks.5   MBConv     (80, 14, 14)\nblocks.8   MBConv     (112, 14, 14)\n"
            "blocks.11  MBConv     (192, 7, 7)\nblocks.14  MBConv     (192, 7, 7)\n"
            "act1       ReLU6      (1280, 7, 7)\n")},
    "04_max_patches": {"rf = helpers.receptive_field(model, layer, SIZE)": (
        "blocks.1  size   11 px, stride  4, offset   -2\n"
        "blocks.4  size   67 px, stride  8, offset  -26\n"
        "blocks.8  size  211 px, stride 16, offset  -90\n"
        "blocks.14 size  787 px, stride 32, offset -362\n"
        "blocks.4 by gradient:   ReceptiveField(size=67, stride=8, offset=-26)\n"
        "blocks.4 by arithmetic: ReceptiveField(size=67, stride=8, offset=-26)\n")},
    "07_guided_backprop": {
        'print(model.name, "predicts:", model.classes[target])':
            "efficientnet_lite0 predicts: Egyptian cat\n",
        'print("Grad-CAM layer:", CAM_LAYER)': "Grad-CAM layer: act1\n"},
    "12_style_transfer": {'tiny = TransformerNet(["my style"])': (
        "424,899 parameters (EfficientNet-Lite0, the loss network: 4,652,008)\n"
        "  down      ModuleList x 3\n  residual  ModuleList x 5\n  up        ModuleList x 2\n"
        "  pad       ReflectionPad2d\n  out       Conv2d\n")},
}

_OUTCOMES = pytest.StashKey[dict]()  # on a notebook's collector: cell number -> outcome
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def course_notebook(path):
    path = Path(path).resolve()
    return path.parent == NOTEBOOKS and re.fullmatch(r"\d\d_.+\.ipynb", path.name) is not None


def probe_source(moves=MOVES):
    """The probe cell: load panel_probe.py as a module in the kernel and print its report."""
    return ("import importlib.util as _u\n"
            f"_spec = _u.spec_from_file_location('panel_probe', {str(PROBE)!r})\n"
            "_probe = _u.module_from_spec(_spec)\n"
            "_spec.loader.exec_module(_probe)\n"
            f"print(_probe.run(globals(), moves={moves}))\n")


def stdout(outputs):
    return "".join(o.get("text", "") for o in outputs or []
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def cells_containing(cells, fragment):
    return [c for c in cells if fragment in c.cell.source]


def check_report(report):
    """The assertions on what the probe saw (each move was checked in the kernel already)."""
    assert report["panels"] >= 1, "every notebook has an Explore panel"
    assert report["changed"], "moving a control must redraw the figure"
    assert report["models"], "the notebook keeps its model in a global"
    assert all(h == [] for h in report["hooks"].values()), report["hooks"]
    assert report["unchanged"], "modules or weights of a model changed"
    assert report["growth"] < 0.05, f"memory grew by {report['growth']:.1%} repeating the same moves"


def _require_run(item, cells):
    """Fail when one of ``cells`` failed, skip when one did not run in this session."""
    outcomes = item.parent.stash.get(_OUTCOMES, {})
    failed = [c.cell_num for c in cells if outcomes.get(c.cell_num) == "failed"]
    if failed:
        pytest.fail(f"{item.path.name}: Cell {failed[0]} failed (reported above), so "
                    f"{item.name!r} could not be checked", pytrace=False)
    missing = [c.cell_num for c in cells if c.cell_num not in outcomes]
    if missing:
        pytest.skip(f"{item.path.name}: cells {missing} did not run in this session; "
                    f"{item.name!r} needs the whole notebook run by nbval")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """After nbval collected a course notebook's cells, append the items that check its run."""
    report = yield
    if isinstance(collector, IPyNbFile) and report.passed and course_notebook(collector.path):
        cells = [i for i in report.result if isinstance(i, IPyNbCell)]
        expected = PRINTED.get(collector.path.stem)
        if expected:
            report.result.append(PrintedValues.from_parent(
                collector, name="printed values", cells=cells, expected=expected))
        if any("check" in c.cell.metadata.get("tags", []) for c in cells):
            report.result.append(ExerciseChecks.from_parent(
                collector, name="exercise checks", cells=cells))
        report.result.append(PanelProbe.from_parent(collector, name="widget panels", cells=cells))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember how each notebook cell went, for the items that need the whole run."""
    report = yield
    if (isinstance(item, IPyNbCell) and not isinstance(item, PanelProbe)
            and (report.when == "call" or report.failed)):
        item.parent.stash.setdefault(_OUTCOMES, {})[item.cell_num] = report.outcome
    return report


class _Extra:
    def reportinfo(self):
        return self.path, None, f"{self.path.relative_to(REPO)}::{self.name}"


class PrintedValues(_Extra, pytest.Item):
    """The exact stdout of the cells named in ``PRINTED``, as nbval's run printed it."""

    def __init__(self, *, cells, expected, **kwargs):
        super().__init__(**kwargs)
        self.cells, self.expected = cells, expected

    def runtest(self):
        for fragment, text in self.expected.items():
            found = cells_containing(self.cells, fragment)
            assert len(found) == 1, f"{len(found)} cells contain {fragment!r}"
            _require_run(self, found)
            got = stdout(found[0].test_outputs)
            assert got == text, (f"Cell {found[0].cell_num} ({fragment!r}) printed:\n{got}\n"
                                 f"expected:\n{text}")


class ExerciseChecks(_Extra, pytest.Item):
    """Each exercise check, run on the instructor's solution by nbval, printed "passed"."""

    def __init__(self, *, cells, **kwargs):
        super().__init__(**kwargs)
        self.cells = [c for c in cells if "check" in c.cell.metadata.get("tags", [])]

    def runtest(self):
        _require_run(self, self.cells)
        for cell in self.cells:
            got = stdout(cell.test_outputs)
            verdicts = [line for line in got.splitlines() if line[:1] in "✓✗…"]
            assert verdicts and all(v.startswith("✓") for v in verdicts), \
                f"Cell {cell.cell_num} ({cell.cell.source.strip()!r}) printed:\n{got}"


class PanelProbe(_Extra, IPyNbCell):
    """``panel_probe.py`` run as one more cell in nbval's kernel; its report checked here."""

    def __init__(self, *, cells, **kwargs):
        super().__init__(cell_num=len(cells), cell=nbformat.v4.new_code_cell(probe_source()),
                         options=defaultdict(bool, check=False), **kwargs)
        self.cells = cells
        self.add_marker(pytest.mark.slow)

    def runtest(self):
        _require_run(self, self.cells)
        super().runtest()  # raises NbCellError (traceback below) if the probe failed in the kernel
        lines = stdout(self.test_outputs).strip().splitlines()
        assert lines, f"the probe printed no report: {self.test_outputs}"
        report = json.loads(lines[-1])
        check_report(report)
        write_html(self.path, self.parent.nb, self.cells, report["drawings"])

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NbCellError):
            return (f"{self.path.name}: the panel probe failed in the notebook's kernel "
                    f"({excinfo.value})\n{_ANSI.sub('', excinfo.value.inner_traceback or '')}")
        return pytest.Item.repr_failure(self, excinfo)


# Math in markdown ($...$, $$...$$), outside code spans and fenced code.
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)", re.DOTALL)
# nbconvert's MathJax configuration (which quotes "$$") and every script from the web (MathJax,
# require.js for widgets): not needed with MathML and panels drawn as pictures.
_WEB_SCRIPTS = re.compile(r'<script type="text/x-mathjax-config">.*?</script>'
                          r'|<script src="https?://[^"]*">\s*</script>', re.IGNORECASE | re.DOTALL)


def math_to_mathml(nb):
    """Replace every equation of the markdown cells by a placeholder; returns {placeholder: MathML}
    (None, equations left for MathJax, without latex2mathml).

    nbconvert's pages load MathJax from the web, so offline every equation stays raw ``$$...$$``.
    The equations become MathML (latex2mathml, pure Python), which browsers draw themselves.
    Placeholders (letters and digits) pass through the markdown renderer untouched.
    """
    try:
        from latex2mathml.converter import convert
    except ImportError:  # a dev dependency: without it the page keeps MathJax (online only)
        return None
    found = {}

    def to_mathml(m):
        tex, display = (m.group(1), "block") if m.group(1) is not None else (m.group(2), "inline")
        key = f"MATHMLPLACEHOLDER{len(found)}X"
        found[key] = convert(tex.strip(), display=display)
        return key

    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        parts, last = [], 0
        for code in _CODE.finditer(cell.source):
            parts += [_MATH.sub(to_mathml, cell.source[last:code.start()]), code.group(0)]
            last = code.end()
        cell.source = "".join(parts) + _MATH.sub(to_mathml, cell.source[last:])
    return found


def write_html(path, nb, cells, drawings):
    """artifacts/html/NN_x.html from nbval's run: the outputs these tests checked.

    Widgets have no Python behind them in a static page: a panel becomes its first drawing
    (``drawings``: widget model id -> outputs, from the probe), any other widget a one-line note.
    Equations are MathML (``math_to_mathml``): the page needs no network.
    """
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    mathml = math_to_mathml(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    note = {"output_type": "display_data", "metadata": {},
            "data": {"text/plain": "(interactive widgets: run the notebook in JupyterLab or Voila)"}}
    for item in cells:
        outputs = []
        for out in item.test_outputs or []:
            widget = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            outputs.extend([out] if widget is None else drawings.get(widget["model_id"], [note]))
        code[item.cell_num].outputs = [nbformat.from_dict(copy.deepcopy(o)) for o in outputs]
        code[item.cell_num].execution_count = item.cell_num + 1
    body, _ = HTMLExporter(embed_images=True).from_notebook_node(
        nb, resources={"metadata": {"path": str(path.parent)}})
    if mathml is not None:
        body = _WEB_SCRIPTS.sub("", body)
        for key, markup in mathml.items():
            body = body.replace(key, markup)
    HTML.mkdir(parents=True, exist_ok=True)
    (HTML / f"{path.stem}.html").write_text(body, encoding="utf-8")
