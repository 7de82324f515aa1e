"""Drive every notebook's widget panels headless, the way a restless student would.

Each notebook runs in a real kernel (nbclient) and the printed values that matter are compared
with ``PRINTED``; a probe cell then moves every control of every panel (``helpers.widgets.PANELS``) to random and edge values with a fixed seed, and
checks: the figure changes and is shown, no error reaches the output, no hooks remain, the models'
modules and weights are unchanged, and memory does not grow when the same moves repeat.
"""
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

PROBE = r'''
import gc, json, random
import psutil, torch
import matplotlib.figure
from helpers import widgets as _w
from helpers.hooks import leftover_hooks as _left
import ipywidgets as _W

_rng = random.Random(0)
_models = {k: v for k, v in list(globals().items()) if isinstance(v, torch.nn.Module) and not k.startswith("_")}
def _snapshot():
    return {k: ([(n, type(m).__name__, getattr(m, "inplace", None)) for n, m in v.named_modules()],
                {n: t.detach().clone() for n, t in v.state_dict().items()}) for k, v in _models.items()}
_before = _snapshot()

def _options(c):
    return [o[1] if isinstance(o, tuple) else o for o in c.options]

def _value_for(c):
    if isinstance(c, (_W.Dropdown, _W.ToggleButtons, _W.RadioButtons, _W.Select)):
        return _rng.choice(_options(c))
    if isinstance(c, _W.Checkbox):
        return not c.value
    if isinstance(c, _W.FloatLogSlider):
        return c.base ** _rng.choice([c.min, c.max, _rng.uniform(c.min, c.max)])
    if isinstance(c, (_W.IntSlider, _W.FloatSlider)):
        v = _rng.choice([c.min, c.max, _rng.uniform(c.min, c.max)])
        return int(round(v)) if isinstance(c, _W.IntSlider) else v
    return None

def _errors(panel):
    return [o for o in panel.children[-1].outputs if o.get("output_type") == "error"]

def _moves(n):
    plan = []
    for p_i, panel in enumerate(_w.PANELS):
        controls = [c for c in panel.children[:-1] if _value_for(c) is not None]
        for _ in range(n if controls else 0):
            c_i = _rng.randrange(len(controls))
            plan.append((p_i, panel.children.index(controls[c_i]), _value_for(controls[c_i])))
    return plan

def _run(plan):
    for i, (p_i, c_i, value) in enumerate(plan):
        panel = _w.PANELS[p_i]
        control = panel.children[c_i]
        if hasattr(control, "options") and value not in _options(control):
            # Options that follow another control (e.g. the photo's top-5 classes): pick a
            # current one, deterministically so that the second pass repeats the first.
            value = _options(control)[i % len(_options(control))]
        control.value = value
        assert not _errors(panel), (p_i, panel.children[c_i].description, value, _errors(panel)[0]["evalue"])
        assert isinstance(panel.result, matplotlib.figure.Figure), type(panel.result)
        assert any("image/png" in o.get("data", {}) for o in panel.children[-1].outputs), \
            "the panel computed a figure but does not show it"

def _png(fig):
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()

# 1. A move changes the figure (first panel, first control that changes the drawing).
_changed = None
if _w.PANELS:
    _p = _w.PANELS[0]
    _first = _p.result
    for _c in _p.children[:-1]:
        _v = _value_for(_c)
        if _v is None or _v == _c.value:
            continue
        _c.value = _v
        _changed = _png(_p.result) != _png(_first)  # the pixels, not just a new object
        break

# 2. Random and edge moves, twice the same sequence: the second pass must not grow memory.
_plan = _moves(__MOVES__)
_run(_plan)
gc.collect(); _rss1 = psutil.Process().memory_info().rss
_run(_plan)
gc.collect(); _rss2 = psutil.Process().memory_info().rss
_after = _snapshot()
_same = all(_before[k][0] == _after[k][0] and
            all(torch.equal(_before[k][1][n], _after[k][1][n]) for n in _before[k][1])
            for k in _before)
print(json.dumps({"panels": len(_w.PANELS), "moves": 2 * len(_plan), "changed": _changed,
                  "hooks": {k: _left(v) for k, v in _models.items()}, "models": list(_models),
                  "unchanged": _same, "growth": _rss2 / _rss1 - 1}))
'''


# Printed values that matter, checked after the notebook runs (the notebooks are committed
# without outputs, so nbval has nothing to compare them with): a fragment of the cell's
# source -> the exact text the cell must print.
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
            "efficientnet_lite0 predicts: Egyptian cat\n"},
}


def _printed(nb, fragment):
    """What the one cell whose source contains ``fragment`` printed on stdout."""
    cells = [c for c in nb.cells if c.cell_type == "code" and fragment in c.source]
    assert len(cells) == 1, f"{len(cells)} cells contain {fragment!r}"
    return "".join(o.get("text", "") for o in cells[0].outputs
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _stdout(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_panels_survive_random_moves(path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            client.execute_cell(cell, i)
        for fragment, expected in PRINTED.get(path.stem, {}).items():
            assert _printed(nb, fragment) == expected, fragment
        probe = nbformat.v4.new_code_cell(PROBE.replace("__MOVES__", "8"))
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
    errors = [o for o in probe.outputs if o.get("output_type") == "error"]
    assert not errors, "\n".join(errors[0].get("traceback", []))[-3000:]
    report = json.loads(_stdout(probe).strip().splitlines()[-1])
    assert report["panels"] >= 1, "every notebook has an Explore panel"
    assert report["changed"], "moving a control must redraw the figure"
    assert report["models"], "the notebook keeps its model in a global"
    assert all(h == [] for h in report["hooks"].values()), report["hooks"]
    assert report["unchanged"], "modules or weights of a model changed"
    assert report["growth"] < 0.05, f"memory grew by {report['growth']:.1%} repeating the same moves"
