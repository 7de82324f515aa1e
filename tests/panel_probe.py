"""Runs inside a notebook's kernel, after its last cell: drive every widget panel like a restless student.

``notebook_checks.py`` (the pytest plugin) executes ``run(globals())`` in nbval's kernel once the
notebook has run, and checks the report it prints. The probe moves every control of every panel
(``helpers.widgets.PANELS``) to random and edge values with a fixed seed (each control at least
once, at least ``moves`` moves per panel), and checks on the way:
the first move redraws the figure (other pixels), every move shows a figure and raises no error
(tracebacks and displayed figures are caught here, where a front end would catch them), and no
panel's first drawing failed. The report says whether hooks remain on the models, whether their
modules and weights changed, and how much memory grew when the same moves ran a second time.

Cost controls (steps, iterations, octaves, samples, sizes) move within [min, 2 x their value when
the probe starts]; a stride within [its value / 2, max]. Every control still moves, but no move
starts a 512-step optimization.
"""
import gc
import hashlib
import io
import json
import random
import re
import sys
import traceback

COST = re.compile(r"\b(steps?|iterations?|octaves|samples?|size|epochs?)\b", re.IGNORECASE)
INVERSE_COST = re.compile(r"\bstrides?\b", re.IGNORECASE)  # smaller is dearer
CAP = 2  # cost controls go up to CAP x the value they had when the probe started


def value_range(control, start):
    """(low, high) a slider may take in the probe; ``start``: its value before the first move."""
    low, high = control.min, control.max
    description = control.description or ""
    if COST.search(description):
        high = min(high, max(low, CAP * start))
    elif INVERSE_COST.search(description):
        low = max(low, min(high, start / CAP))
    return low, high


class Probe:
    def __init__(self, namespace, seed=0):
        import torch

        from helpers import widgets

        self.panels = widgets.PANELS
        self.rng = random.Random(seed)
        self.models = {k: v for k, v in list(namespace.items())
                       if isinstance(v, torch.nn.Module) and not k.startswith("_")}
        # The value each control had before the probe moved anything: the notebook's default.
        self.start = {id(c): c.value for p in self.panels for c in p.children[:-1]
                      if hasattr(c, "value")}

    # ---------------------------------------------------------------- values to try
    @staticmethod
    def options(control):
        return [o[1] if isinstance(o, tuple) else o for o in control.options]

    def value_for(self, c):
        import ipywidgets as W

        if isinstance(c, (W.Dropdown, W.ToggleButtons, W.RadioButtons, W.Select)):
            return self.rng.choice(self.options(c))
        if isinstance(c, W.Checkbox):
            return not c.value
        if isinstance(c, W.FloatLogSlider):
            return c.base ** self.rng.choice([c.min, c.max, self.rng.uniform(c.min, c.max)])
        if isinstance(c, (W.IntSlider, W.FloatSlider)):
            low, high = value_range(c, self.start.get(id(c), c.value))
            v = self.rng.choice([low, high, self.rng.uniform(low, high)])
            return round(v) if isinstance(c, W.IntSlider) else v
        return None

    def plan(self, n):
        """Per panel: every control once (in random order), then random ones up to ``n`` moves."""
        moves = []
        for p_i, panel in enumerate(self.panels):
            controls = [c for c in panel.children[:-1] if self.value_for(c) is not None]
            order = self.rng.sample(controls, len(controls))
            order += [self.rng.choice(controls) for _ in range(n - len(order) if controls else 0)]
            moves += [(p_i, panel.children.index(c), self.value_for(c)) for c in order]
        return moves

    # ---------------------------------------------------------------- moving
    def move(self, p_i, c_i, value, i=0):
        import matplotlib.figure

        panel = self.panels[p_i]
        control = panel.children[c_i]
        if hasattr(control, "options") and value not in self.options(control):
            # Options that follow another control (e.g. the photo's top-5 classes): pick a
            # current one, deterministically so that the second pass repeats the first.
            value = self.options(control)[i % len(self.options(control))]
        where = f"panel {p_i}, {control.description!r} = {value!r}"
        old = control.value
        with Watch() as seen:
            control.value = value
        assert not seen.errors, f"{where}: the panel shows an error:\n{seen.errors[0]}"
        assert isinstance(panel.result, matplotlib.figure.Figure), (where, type(panel.result))
        if control.value != old:  # setting the current value again redraws nothing
            assert seen.figures, f"{where}: the panel computed a figure but does not show it"

    def run(self, moves):
        for i, (p_i, c_i, value) in enumerate(moves):
            self.move(p_i, c_i, value, i)

    def fingerprint(self):
        """Modules, flags and a hash of every weight of every model (no copy of the weights)."""
        out = {}
        for k, m in self.models.items():
            digest = hashlib.blake2b()
            for n, t in m.state_dict().items():
                digest.update(n.encode())
                digest.update(t.detach().cpu().contiguous().reshape(-1).numpy().view("u1"))
            out[k] = ([(n, type(x).__name__, getattr(x, "inplace", None))
                       for n, x in m.named_modules()], digest.hexdigest())
        return out


class Watch:
    """What one move sends to the front end: figures shown, tracebacks shown.

    Both are kept from the notebook's output (no front end is listening; the probe checks them).
    """

    def __enter__(self):
        from IPython import get_ipython

        self.ip, self.figures, self.errors = get_ipython(), 0, []
        self.ip.display_pub.register_hook(self._display)
        self.ip.showtraceback = self._traceback  # instance attribute: shadows the method
        return self

    def _display(self, msg):
        if "image/png" in msg.get("content", {}).get("data", {}):
            self.figures += 1

    def _traceback(self, exc_tuple=None, *args, **kwargs):
        etype, value, tb = exc_tuple or sys.exc_info()
        self.errors.append("".join(traceback.format_exception(etype, value, tb)))

    def __exit__(self, *exc):
        self.ip.display_pub.unregister_hook(self._display)
        del self.ip.showtraceback


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def first_drawings(panels):
    """Widget model id -> the outputs its panel drew while the notebook ran (for static pages).

    A notebook displays a panel inside a box (``helpers.widgets.panel``): both the box and the
    panel map to the panel's outputs.
    """
    from ipywidgets.widgets import widget

    instances = getattr(widget, "_instances", {})
    drawings = {}
    for panel in panels:
        outputs = [dict(o) for o in panel.children[-1].outputs]
        drawings[panel.model_id] = outputs
        for model_id, w in list(instances.items()):
            if panel.children[-1] in getattr(w, "children", ()):
                drawings[model_id] = outputs
    return drawings


def run(namespace, moves=8, seed=0):
    """Drive every panel; return the report (a JSON line) that notebook_checks.py checks."""
    import psutil

    from helpers import leftover_hooks

    probe = Probe(namespace, seed)
    before = probe.fingerprint()
    drawings = first_drawings(probe.panels)
    for p_i, panel in enumerate(probe.panels):  # the drawing made while the notebook ran
        errors = [o for o in panel.children[-1].outputs if o.get("output_type") == "error"]
        assert not errors, f"panel {p_i}: its first drawing failed: {errors[0].get('evalue')}"

    # 1. A move changes the figure (first panel, first control that changes the drawing).
    changed = None
    if probe.panels:
        panel = probe.panels[0]
        first = panel.result
        for c_i, c in enumerate(panel.children[:-1]):
            v = probe.value_for(c)
            if v is None or v == c.value:
                continue
            probe.move(0, c_i, v)
            changed = _png(panel.result) != _png(first)  # the pixels, not just a new object
            break

    # 2. Random and edge moves, twice the same sequence: the second pass must not grow memory.
    plan = probe.plan(moves)
    probe.run(plan)
    rss1 = _live_rss(psutil)
    probe.run(plan)
    rss2 = _live_rss(psutil)
    return json.dumps({"panels": len(probe.panels), "moves": 2 * len(plan), "changed": changed,
                       "hooks": {k: leftover_hooks(v) for k, v in probe.models.items()},
                       "models": list(probe.models), "unchanged": probe.fingerprint() == before,
                       "growth": rss2 / rss1 - 1, "drawings": drawings})


def _live_rss(psutil):
    """Resident memory after a collection, with freed heap given back to the system where
    glibc allows it (``malloc_trim``): what stays is memory still in use, not the allocator's
    spare pages, which vary from run to run after large temporary tensors."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
    return psutil.Process().memory_info().rss
