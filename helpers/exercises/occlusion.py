"""Check for notebook 05: the occlusion loop (mean drop in probability over the covering windows).

The student's ``my_occlusion(model, image, target, window, stride)`` paints a black (zero)
``window`` x ``window`` square at every position, in steps of ``stride``, and returns the (H, W)
map of ``helpers.attribution.occlusion(..., fill="zero")``: each pixel gets the mean of
``p(target | image) - p(target | occluded)`` over the windows that cover it, the last window of
a row or column hanging over the border when the stride does not fit.
"""
import math

import torch

from ..attribution import occlusion as _occlusion
from ..device import model_device
from .verdict import (Case, Mistake, close_to_scale, course_model, photo, predicted, random_images,
                      run, sharp_cnn)

__all__ = ["occlusion"]


def _reference(model, image, target, window, stride):
    return _occlusion(model, image, target, window=window, stride=stride, fill="zero", fast=False)


def _slip(model, image, target, window, stride, mean=True, prob=True, sign=1, place="ceil",
          keep_holes=False, clamp=False):
    """The occlusion loop with one of the usual slips switched on (for the hints)."""
    h, w = image.shape[-2:]

    def starts(n):
        if place == "ceil":
            return [i * stride for i in range(math.ceil((n - window) / stride) + 1)]
        return list(range(0, n - window + (1 if place == "floor" else 0), stride))

    def value(x):
        out = model(x[None])[0]
        return out.softmax(-1)[target] if prob else out[target]

    total, count = torch.zeros(h, w, device=image.device), torch.zeros(h, w, device=image.device)
    with torch.no_grad():
        base = value(image)
        x = image.clone()
        for y in starts(h):
            for z in starts(w):
                if not keep_holes:
                    x = image.clone()
                x[:, y:y + window, z:z + window] = 0
                total[y:y + window, z:z + window] += sign * (base - value(x))
                count[y:y + window, z:z + window] += 1
    if clamp:  # a guard against 0 / 0 that hides the uncovered border
        count = count.clamp(min=1)
    return total / count if mean else total


_BORDER = ("the windows stop too early at the border: use ceil((H - window) / stride) + 1 "
           "positions per axis (0, stride, 2 * stride, ...); the last window may hang over the "
           "edge, slicing clips it.")
_MISTAKES = [
    Mistake(lambda *a: _slip(*a, prob=False),
            "measure the drop of the probability p = softmax(model(x))[target], as the "
            "helper does, not of the score (logit)."),
    Mistake(lambda *a: _slip(*a, mean=False),
            "each pixel gets the *mean* drop of the windows covering it: count the windows per "
            "pixel and divide the sum by that count."),
    Mistake(lambda *a: _slip(*a, sign=-1),
            "the drop is p(image) - p(occluded): positive where hiding the pixels lowers p."),
    *[Mistake(lambda *a, c=c: _slip(*a, place="floor", clamp=c), _BORDER) for c in (0, 1)],
    *[Mistake(lambda *a, c=c: _slip(*a, place="short", clamp=c), _BORDER) for c in (0, 1)],
    Mistake(lambda *a: _slip(*a, keep_holes=True),
            "start every occluded copy from a fresh clone of the photo: with one copy, the "
            "black squares pile up."),
]


def occlusion(student, model=None):
    """Check ``student(model, image, target, window, stride) -> (H, W)`` against
    ``helpers.attribution.occlusion`` with ``fill="zero"``.

    Random images run through a small random network; the coffee photo at 50 px through
    ``model`` (default: ``helpers.load_model()``).
    """
    model = course_model(model)
    device = model_device(model)
    net = sharp_cnn(seed=1)
    a, b = random_images(1, 24, 24, seed=5)[0], random_images(1, 37, 53, seed=6)[0]
    coffee = photo("coffee", 50).to(device)
    cases = [
        Case("a random 24x24 image, window 8, stride 4", (net, a, predicted(net, a), 8, 4)),
        Case("a random 37x53 image, window 8, stride 4 (the last windows hang over the border)",
             (net, b, predicted(net, b), 8, 4)),
        Case("the coffee photo at 50 px, window 16, stride 8",
             (model, coffee, predicted(model, coffee), 16, 8)),
    ]
    return run("occlusion", student, _reference, cases, compare=close_to_scale,
               mistakes=_MISTAKES,
               hint="compare your loop with the equation of section 1: zero inside the window, "
                    "the drop of the softmax probability, the mean over the covering windows.")
