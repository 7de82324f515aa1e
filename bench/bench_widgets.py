"""How long a widget update takes: every control of every panel, moved once and moved back.

Run: .venv/bin/python bench/bench_widgets.py [05 06 07 ...]   (default: 05 06 07)

Each notebook runs top to bottom in a real kernel (nbclient), like a student's Run All. A
probe cell then moves each control of each panel (``helpers.widgets.PANELS``) one step
(the next option, the next slider step) and back, and times the redraw in the kernel:
``move`` is a new setting (computed), ``back`` returns to the setting shown before (the
notebooks cache heavy results per setting, so it should be instant). The browser adds the
transfer of one PNG (tens of ms). The limits printed beside are those of the issues: 1 s
per update for saliency and guided backprop, 3 s for occlusion at default settings.
"""
import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LIMITS = {"05": 3.0, "06": 1.0, "07": 1.0}

PROBE = r'''
import json, math, time
import ipywidgets as _W
from helpers import widgets as _w

def _step(c):
    """A value one step away from the control's current one (None: not a value control)."""
    if isinstance(c, (_W.Dropdown, _W.ToggleButtons, _W.RadioButtons, _W.Select)):
        opts = [o[1] if isinstance(o, tuple) else o for o in c.options]
        return opts[(opts.index(c.value) + 1) % len(opts)] if len(opts) > 1 else None
    if isinstance(c, _W.Checkbox):
        return not c.value
    if isinstance(c, _W.FloatLogSlider):
        e = math.log(c.value, c.base)
        return c.base ** (e + c.step if e + c.step <= c.max else e - c.step)
    if isinstance(c, (_W.IntSlider, _W.FloatSlider)):
        return c.value + c.step if c.value + c.step <= c.max else c.value - c.step
    return None

def _timed(c, v):
    t = time.perf_counter()
    c.value = v
    return time.perf_counter() - t

_rows = []
for _i, _p in enumerate(_w.PANELS):
    for _c in _p.children[:-1]:
        _v = _step(_c)
        if _v is None:
            continue
        _old = _c.value
        _rows.append([_i, _c.description, repr(_old), repr(_v),
                      _timed(_c, _v), _timed(_c, _old)])
print(json.dumps(_rows))
'''


def run(prefix):
    path = sorted(NOTEBOOKS.glob(f"{prefix}_*.ipynb"))[0]
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            client.execute_cell(cell, i)
        notebook_s = time.perf_counter() - start
        probe = nbformat.v4.new_code_cell(PROBE)
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
    text = "".join(o.get("text", "") for o in probe.outputs if o.get("output_type") == "stream")
    return path.stem, notebook_s, json.loads(text.strip().splitlines()[-1])


def main():
    prefixes = sys.argv[1:] or ["05", "06", "07"]
    print("| notebook | panel | control | from -> to | move (s) | back (s) | limit (s) |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for prefix in prefixes:
        stem, notebook_s, rows = run(prefix)
        limit = LIMITS.get(prefix)
        for panel, control, old, new, move, back in rows:
            print(f"| {stem} | {panel} | {control} | {old} -> {new} | {move:.2f} | {back:.3f} | "
                  f"{limit or '-'} |", flush=True)
        worst = max((r[4] for r in rows), default=0.0)
        summary.append((stem, notebook_s, worst, limit))
    print("\n| notebook | Run All in a kernel (s) | slowest move (s) | limit (s) |")
    print("|---|---|---|---|")
    for stem, notebook_s, worst, limit in summary:
        print(f"| {stem} | {notebook_s:.1f} | {worst:.2f} | {limit or '-'} |")


if __name__ == "__main__":
    main()
