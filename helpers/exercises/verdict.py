"""Run a student's function on several inputs, compare it with the reference, say what differs.

Every exercise check in this package is one call to ``run``: a list of ``Case`` inputs, the
reference (a ``helpers`` function), and the usual mistakes as ``Mistake`` s so that a wrong answer
gets a hint, not only a number. The verdict is printed (one or a few lines, never a traceback from
deep inside torch) and returned as a ``Verdict`` for code that wants it.
"""
import copy
import functools
import linecache
import os
import traceback
from dataclasses import dataclass, field

import torch

from ..device import model_device
from ..images import load_image
from ..models import load_model

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # helpers/
_TORCH = os.path.dirname(os.path.abspath(torch.__file__))


class Mismatch(Exception):
    """Raised by a comparison: the student's output differs; the message says how."""


@dataclass
class Case:
    """One input to a student's function: a label the verdict can name, args, kwargs."""
    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class Mistake:
    """A usual wrong answer: ``output(*args, **kwargs)`` computes what it returns; ``hint`` says
    what to fix when the student's output matches it."""
    output: object
    hint: str


class Verdict:
    """The outcome of a check: ``status`` is "passed", "failed" or "not done"; truthy if passed.

    The check already printed ``message``, so a notebook does not show the return value again.
    """

    def __init__(self, name, status, message):
        self.name, self.status, self.message = name, status, message

    @property
    def passed(self):
        return self.status == "passed"

    def __bool__(self):
        return self.passed

    def __str__(self):
        return self.message

    def __repr__(self):
        return f"Verdict({self.name!r}, {self.status!r})"

    def _ipython_display_(self):  # printed by the check; nothing more to show
        pass


def _clone(value):
    """A deep copy: a function that edits its input in place cannot change the next input."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, torch.nn.Module):
        return value  # models are shared (checks compare their hooks and weights separately)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(_clone(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return copy.copy(value)


def _where(err):
    """' (your line N: code)': the last frame of the traceback outside torch and helpers."""
    frames = traceback.extract_tb(err.__traceback__)
    own = [f for f in frames if not os.path.abspath(f.filename).startswith((_PACKAGE, _TORCH))]
    if not own:
        return ""
    frame = own[-1]
    line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    return f" (in {frame.name}, line {frame.lineno}: {line})" if line else ""


def _short(text, limit=240):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _as_tensor(value, what):
    if isinstance(value, torch.Tensor):
        return value.detach()
    try:
        import numpy as np
        if isinstance(value, np.ndarray):
            return torch.from_numpy(value)
    except ImportError:  # numpy comes with torch; kept safe anyway
        pass
    raise Mismatch(f"{what} should be a torch tensor, got {type(value).__name__}")


def close(got, expected, rtol=1e-4, atol=1e-5, what="the output"):
    """Compare tensors (or tuples/lists of them, or plain values) and raise ``Mismatch`` naming
    the first difference: type, length, shape, NaN, or the element that differs most."""
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            kind = f"{type(got).__name__} of {len(got)}" if isinstance(got, (tuple, list)) \
                else type(got).__name__
            raise Mismatch(f"{what} should be a {type(expected).__name__} of {len(expected)} "
                           f"values, got a {kind}")
        for i, (g, e) in enumerate(zip(got, expected)):
            close(g, e, rtol, atol, f"{what}[{i}]")
        return
    if not isinstance(expected, torch.Tensor):
        if isinstance(expected, float) and isinstance(got, (int, float)):
            if abs(got - expected) <= atol + rtol * abs(expected):
                return
        elif got == expected:
            return
        raise Mismatch(f"{what}: expected {expected!r}, got {got!r}")
    got = _as_tensor(got, what)
    if tuple(got.shape) != tuple(expected.shape):
        raise Mismatch(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    got, expected = got.float().cpu(), expected.detach().float().cpu()
    if torch.isnan(got).any() and not torch.isnan(expected).any():
        raise Mismatch(f"{what} contains NaN")
    if torch.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True):
        return
    if expected.dim() == 0:
        raise Mismatch(f"{what} is {got.item():.4g}, expected {expected.item():.4g}")
    diff = (got - expected).abs().nan_to_num(float("inf"))
    bad = diff > atol + rtol * expected.abs()
    index = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
    raise Mismatch(f"{what} differs at element {index}: expected {expected[index].item():.4g}, "
                   f"got {got[index].item():.4g} ({int(bad.sum())} of {bad.numel()} elements "
                   f"differ)")


def close_number(got, expected):
    """A single number (a 0-dim tensor or a float) within 0.1 % of the reference's 0-dim result."""
    if isinstance(got, (int, float)):
        got = torch.tensor(float(got))
    if isinstance(got, torch.Tensor) and got.dim() > 0 and got.numel() == 1:
        raise Mismatch(f"the output should be a single number (0-dim tensor), got shape "
                       f"{tuple(got.shape)}; return the value itself (e.g. .mean() or [0])")
    close(got, expected, rtol=1e-3, atol=1e-7)


def close_to_scale(got, expected):
    """``close`` with tolerances relative to the largest expected value (maps of tiny networks
    are small numbers; float32 sums in another order differ in the last digits)."""
    scale = float(expected.detach().nan_to_num(0).abs().max()) if torch.is_tensor(expected) else 0
    close(got, expected, rtol=1e-3, atol=1e-4 * scale + 1e-9)


def _mistake_hint(got, case, mistakes, compare):
    for mistake in mistakes:
        try:
            wrong = mistake.output(*_clone(case.args), **_clone(case.kwargs))
            compare(got, wrong)
        except Exception:  # the mistake's output differs too (or does not apply to this case)
            continue
        return mistake.hint
    return None


def run(name, student, reference, cases, compare=close, mistakes=(), hint=None):
    """Check ``student`` against ``reference`` on every case; print and return the ``Verdict``.

    Args:
        name: what the student implemented, as the verdict names it (e.g. "saliency").
        student: the student's function.
        reference: the helpers' function with the same signature.
        cases: ``Case`` s, from the simplest to the hardest; the first failure is reported.
        compare: raises ``Mismatch`` when outputs differ (default ``close``).
        mistakes: usual wrong answers; when the student's output matches one, its hint is shown.
        hint: shown on a failure that matches no known mistake.
    """
    if not callable(student):
        return _say(name, "failed", f"expects your function, got {type(student).__name__}. "
                                    "Pass the function itself, without calling it.")
    for case in cases:
        expected = reference(*_clone(case.args), **_clone(case.kwargs))
        try:
            got = student(*_clone(case.args), **_clone(case.kwargs))
        except NotImplementedError:
            return _say(name, "not done", "not done yet: write the function in the cell above, "
                                          "run that cell, then run this one again.")
        except Exception as err:  # the student's bug, reported in one line with their line
            return _say(name, "failed", f"on {case.label}, your function raised "
                                        f"{type(err).__name__}: {_short(err)}{_where(err)}")
        try:
            compare(got, expected)
        except Mismatch as diff:
            found = _mistake_hint(got, case, mistakes, compare) or hint
            return _say(name, "failed", f"on {case.label}, {diff}."
                        + (f"\n  Hint: {found}" if found else ""))
    labels = "; ".join(c.label for c in cases)
    return _say(name, "passed", f"passed on {len(cases)} inputs ({labels}).")


def _say(name, status, message):
    mark = {"passed": "✓", "failed": "✗", "not done": "…"}[status]
    verdict = Verdict(name, status, f"{mark} {name}: {message}")
    print(verdict.message)
    return verdict


def tiny_cnn(classes=10, seed=0):
    """A small random ReLU network (conv, ReLU, conv, ReLU, pool, linear) for checks: fast, with
    the same layer kinds as the real model, deterministic for a given ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, classes))
    return net.eval().requires_grad_(False)


def random_images(n, height, width, seed=0):
    """(n, 3, height, width) uniform in [0, 1], the same for a given seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, height, width, generator=generator)


@functools.lru_cache(maxsize=1)
def _course_model():
    return load_model()


def course_model(model=None):
    """``model``, or the course's offline model (loaded once for all checks) when None."""
    return _course_model() if model is None else model


def sharp_cnn(seed=0):
    """``tiny_cnn`` with its last layer scaled by 30: confident, unequal class probabilities, so a
    probability and a score (or a mean and a sum) give clearly different maps."""
    net = tiny_cnn(seed=seed)
    net[-1].weight.mul_(30)
    net[-1].bias.mul_(30)
    return net


def noise(shape, seed):
    """Standard normal values of ``shape``, the same for a given seed."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@functools.lru_cache(maxsize=8)
def photo(name, size):
    """A bundled photo, (3, size, size) in [0, 1] (cached: checks run again and again)."""
    return load_image(name, size)


def photos(model, names, size):
    """(len(names), 3, size, size) bundled photos on the model's device."""
    return torch.stack([photo(n, size) for n in names]).to(model_device(model))


def predicted(model, image):
    """The class ``model`` predicts for one (3, H, W) image."""
    with torch.no_grad():
        return int(model(image[None]).argmax(-1)[0])


_HOOK_KINDS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def hook_ids(model):
    """Every hook on ``model`` as (module name, kind, key): compare before and after a call."""
    return {(name, kind, key) for name, m in model.named_modules() for kind in _HOOK_KINDS
            for key in getattr(m, kind, {})}


def remove_new_hooks(model, before):
    """Remove the hooks added since ``hook_ids`` gave ``before`` (a check leaves the model as it
    found it); returns the names of the modules that had them."""
    modules = dict(model.named_modules())
    new = hook_ids(model) - before
    for name, kind, key in new:
        m = modules[name]
        getattr(m, kind).pop(key, None)
        for extra in ("_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                      "_forward_pre_hooks_with_kwargs"):
            getattr(m, extra, {}).pop(key, None)
    return sorted({name for name, _, _ in new})
