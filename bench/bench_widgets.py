"""How long a widget update takes: every control of every panel, moved, moved back, moved again.

Run: .venv/bin/python bench/bench_widgets.py [01 02 ...]   (default: all twelve notebooks)

Each notebook runs top to bottom in a real kernel (nbclient), like a student's Run All. A
probe cell then moves each control of each panel (``helpers.widgets.PANELS``) one step
(the next option, the next slider step) and back, and times the redraw in the kernel:

- ``first``: a new setting, computed and drawn;
- ``revisit before``: a setting shown before, redrawn without the panel's picture cache (the
  helpers' own caches are warm): what a revisit cost before ``panel`` kept pictures;
- ``revisit after``: the same revisit with the cache: the kept PNG bytes are sent again.

The browser adds the transfer of one PNG (tens of ms; tests/e2e measures it once). The goal of
issue 15 is a revisit on screen within 0.1 s; the limits of the earlier issues are 1 s per new
setting for saliency and guided backprop and 3 s for occlusion.
"""
import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LIMITS = {"05": 3.0, "06": 1.0, "07": 1.0}
REVISIT_LIMIT_S = 0.1

PROBE = r'''
import collections, json, math, time
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

def _uncached(p, c, v, back):
    """Revisit ``v`` with the panel's picture cache out of the way (then put back)."""
    kept, size = p.memo, _w.CACHE_SIZE
    p._memo, _w.CACHE_SIZE = collections.OrderedDict(), 0
    try:
        t = _timed(c, v)
        c.value = back
    finally:
        p._memo, _w.CACHE_SIZE = kept, size
    return t

_rows = []
for _i, _p in enumerate(_w.PANELS):
    for _c in _p.children[:-1]:
        _v = _step(_c)
        if _v is None:
            continue
        _old = _c.value
        _first = _timed(_c, _v)
        _after = _timed(_c, _old)
        _before = _uncached(_p, _c, _v, _old)
        _rows.append([_i, _p.f.__name__, _c.description, repr(_old), repr(_v), _first, _before,
                      _after])
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
    prefixes = sys.argv[1:] or [p.name[:2] for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))]
    print("| notebook | panel | control | from -> to | first (s) | revisit before (s) | "
          "revisit after (s) |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for prefix in prefixes:
        stem, notebook_s, rows = run(prefix)
        for panel, name, control, old, new, first, before, after in rows:
            print(f"| {stem} | {panel} {name} | {control} | {old} -> {new} | {first:.2f} | "
                  f"{before:.3f} | {after:.4f} |", flush=True)
        for panel in sorted({r[0] for r in rows}):
            mine = [r for r in rows if r[0] == panel]
            summary.append((stem, f"{panel} {mine[0][1]}", notebook_s, max(r[5] for r in mine),
                            max(r[6] for r in mine), max(r[7] for r in mine), LIMITS.get(prefix)))
    print(f"\n| notebook | panel | Run All (s) | slowest first (s) | slowest revisit before (s) | "
          f"slowest revisit after (s) | revisit < {REVISIT_LIMIT_S} s |")
    print("|---|---|---|---|---|---|---|")
    for stem, panel, notebook_s, first, before, after, limit in summary:
        print(f"| {stem} | {panel} | {notebook_s:.1f} | {first:.2f}"
              f"{f' (limit {limit})' if limit else ''} | {before:.3f} | {after:.4f} | "
              f"{'yes' if after < REVISIT_LIMIT_S else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
