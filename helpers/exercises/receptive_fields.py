"""Checks for notebook 04: the receptive-field recurrence, and the box a unit sees.

``receptive_field``: the student's function takes ``[(kernel, stride, padding), ...]`` (first
layer first) and returns ``(size, jump, start)``. The reference builds the same chain as convolutions and asks
``helpers.receptive_field``, which follows a forward pass, so the conventions are the helper's:
``start`` is the first input row of unit 0 (negative: it starts in the padding).

``unit_box``: the student's ``my_unit_box(rf, row, col, size)`` returns the
``(top, left, bottom, right)`` box of ``helpers.unit_box``: clipped to the image, bottom and
right exclusive, so that ``image[:, top:bottom, left:right]`` is the patch.
"""
from torch import nn

from ..receptive_fields import receptive_field as _receptive_field
from ..receptive_fields import unit_box as _unit_box
from .verdict import Case, Mismatch, Mistake, run

__all__ = ["receptive_field", "unit_box"]


def _input_side(layers):
    """An input side at which the chain's output is at least 4 units wide."""
    side = 4
    for k, s, p in reversed(layers):
        side = max(1, (side - 1) * s + k - 2 * p)
    return max(side, 16)


def _reference(layers):
    net = nn.Sequential(*[nn.Conv2d(3, 3, k, s, p, bias=False) for k, s, p in layers])
    rf = _receptive_field(net, str(len(layers) - 1), _input_side(layers))
    return (rf.size, rf.stride, rf.offset)


def _recurrence(layers, size_jump=True, start_jump=True, sign=-1, jump_first=False):
    """The recurrence with one of the usual slips switched on (for the hints)."""
    r, j, o = 1, 1, 0
    for k, s, p in layers:
        if jump_first:
            j = j * s
        r = r + (k - 1) * (j if size_jump else 1)
        o = o + sign * p * (j if start_jump else 1)
        if not jump_first:
            j = j * s
    return (r, j, o)


def _show(values):
    """(3, 1, -1) for tuples of ints, tensors or numpy numbers alike."""
    def one(v):
        try:
            return int(v) if float(v).is_integer() else float(v)
        except (TypeError, ValueError):
            return v
    return tuple(one(v) for v in values)


def _ints(names):
    """A comparison of tuples of whole numbers that names the first value that differs."""
    def compare(got, expected):
        if not isinstance(got, (tuple, list)) or len(got) != len(names):
            kind = f"{len(got)} values" if isinstance(got, (tuple, list)) \
                else f"{' '.join(repr(got).split())[:60]} ({type(got).__name__})"
            raise Mismatch(f"your function should return a tuple ({', '.join(names)}), got {kind}")
        for name, g, e in zip(names, got, expected):
            try:
                value = float(g)
            except (TypeError, ValueError):
                raise Mismatch(f"{name} should be a number, got {type(g).__name__}") from None
            if value != e:
                raise Mismatch(f"{name} is {_show([g])[0]}, expected {e} (you returned "
                               f"{_show(got)}, expected {_show(expected)})")
    return compare


_MISTAKES = [
    Mistake(lambda layers: _recurrence(layers, jump_first=True),
            "the size and the start use the jump of the layer *below*, j_{l-1}: update the jump "
            "last."),
    Mistake(lambda layers: _recurrence(layers, size_jump=False),
            "a k x k window of layer l spans (k - 1) steps of layer l-1, and each step is "
            "j_{l-1} input pixels: r_l = r_{l-1} + (k - 1) * j_{l-1}."),
    Mistake(lambda layers: _recurrence(layers, size_jump=False, start_jump=False),
            "multiply by the jump: one step of layer l-1 is j_{l-1} input pixels, both in "
            "r_l = r_{l-1} + (k - 1) * j_{l-1} and in o_l = o_{l-1} - p * j_{l-1}."),
    Mistake(lambda layers: _recurrence(layers, start_jump=False),
            "padding of p units of layer l-1 is p * j_{l-1} input pixels: "
            "o_l = o_{l-1} - p * j_{l-1}."),
    Mistake(lambda layers: _recurrence(layers, sign=+1),
            "padding adds pixels *before* the first one, so the window starts earlier: "
            "o_l = o_{l-1} - p * j_{l-1} (minus)."),
    Mistake(lambda layers: _recurrence(layers, sign=0),
            "the start is the first input row of unit 0's window (not its centre), and padding "
            "moves it back: o_l = o_{l-1} - p * j_{l-1}."),
]

_CASES = [
    Case("one 3x3 convolution with padding 1", ([(3, 1, 1)],)),
    Case("two 3x3 stride-2 convolutions with padding 1", ([(3, 2, 1), (3, 2, 1)],)),
    Case("a chain with a 1x1, an even kernel and no padding",
         ([(1, 1, 0), (4, 2, 1), (2, 2, 0), (7, 3, 3), (3, 1, 0)],)),
    Case("AlexNet's convolutions and max pools up to pool5",
         ([(11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1),
           (3, 2, 0)],)),
    Case("VGG-16's first three stages (conv 3x3 pad 1, pool 2x2/2)",
         ([(3, 1, 1), (3, 1, 1), (2, 2, 0), (3, 1, 1), (3, 1, 1), (2, 2, 0), (3, 1, 1),
           (3, 1, 1), (3, 1, 1), (2, 2, 0)],)),
]


def receptive_field(student, model=None):
    """Check ``student(layers) -> (size, jump, start)`` against ``helpers.receptive_field``.

    ``model`` is not used (the chains are built here); it is accepted like in every check.
    """
    return run("receptive_field", student, _reference, _CASES, compare=_ints(("size", "jump", "start")),
               mistakes=_MISTAKES,
               hint="follow the recurrence of section 1 from j = r = 1, o = 0, one layer at a "
                    "time, and return (r, j, o).")


# --------------------------------------------------------------------------- the box of one unit
def _box(rf, row, col, size, clip_start=True, limit="size", end=0, swap=False):
    """The box with one of the usual slips switched on (for the hints); ``limit`` is where
    bottom and right are clipped: "size", "size - 1" or None."""
    r, j, o = rf
    if swap:
        row, col = col, row
    top, left = o + row * j, o + col * j
    bottom, right = top + r + end, left + r + end
    if limit is not None:
        last = size if limit == "size" else size - 1
        bottom, right = min(bottom, last), min(right, last)
    if clip_start:
        top, left = max(top, 0), max(left, 0)
    return (top, left, bottom, right)


_BOX_MISTAKES = [
    Mistake(lambda *a: _box(*a, swap=True),
            "row moves the box down (top), col moves it right (left): top = o + row * j, "
            "left = o + col * j."),
    Mistake(lambda *a: _box(*a, end=-1),
            "bottom and right are exclusive, like a Python slice: bottom = top + r, so that "
            "image[:, top:bottom, left:right] is r pixels high before clipping."),
    Mistake(lambda *a: _box(*a, clip_start=False, limit=None),
            "clip the box to the image: max(top, 0), max(left, 0), min(bottom, size), "
            "min(right, size)."),
    Mistake(lambda *a: _box(*a, limit=None),
            "clip the end too: bottom = min(top + r, size) (and the same for right)."),
    Mistake(lambda *a: _box(*a, limit="size - 1"),
            "bottom and right are exclusive, so clip them to size, not size - 1."),
]

_BOX_CASES = [
    Case("unit (3, 5) of an 11 px field with stride 4, offset -2, in a 128 px image",
         ((11, 4, -2), 3, 5, 128)),
    Case("unit (0, 0) of the same field (it starts in the padding)",
         ((11, 4, -2), 0, 0, 128)),
    Case("unit (2, 9) of a 67 px field with stride 8, offset -26 (clipped at the top)",
         ((67, 8, -26), 2, 9, 128)),
    Case("unit (15, 1) of the same field (clipped at the bottom and the left)",
         ((67, 8, -26), 15, 1, 128)),
    Case("unit (1, 2) of a 211 px field with stride 16, offset -90 in a 128 px image",
         ((211, 16, -90), 1, 2, 128)),
]


def unit_box(student, model=None):
    """Check ``student(rf, row, col, size) -> (top, left, bottom, right)`` against
    ``helpers.unit_box`` (square fields; ``model`` is not used)."""
    return run("unit_box", student, _unit_box, _BOX_CASES,
               compare=_ints(("top", "left", "bottom", "right")), mistakes=_BOX_MISTAKES,
               hint="unit (row, col) starts at o + row * j, o + col * j and is r pixels wide; "
                    "clip to 0 and size, bottom and right exclusive.")
