"""Checks for notebook 10 (deep dream): one normalized ascent step, and the octave loop.

The references are the helpers' own: ``optimize`` with the ``"normalized"`` optimizer and the
``layer_norm`` objective for a step, ``dream.deep_dream`` (jitter 0, so it is deterministic)
for the octaves. Randomness is an argument (the roll offset, the dreaming function).
"""
import torch

from .. import hooks
from ..dream import MIN_OCTAVE, deep_dream, octave_sizes
from ..images import resize
from ..models import min_input_size
from ..objectives import layer_norm
from ..optimize import optimize
from ..params import pixel_image
from ..regularizers import Jitter
from .verdict import Case, Mistake, course_model, photos, random_images, run, tiny_cnn

__all__ = ["dream_step", "octave_dream"]


def _layer(model, wanted="blocks.3"):
    """``wanted`` if the model has it, else a layer a third of the way down ``main_layers``."""
    try:
        hooks.get_layer(model, wanted)
        return wanted
    except KeyError:
        names = hooks.main_layers(model)
        return names[len(names) // 3]


# ---- one step --------------------------------------------------------------------------------

def _step_reference(model, image, layer, step_size, shift):
    """``helpers.optimize``: one ``"normalized"`` step on ``layer_norm(layer)``, image rolled."""
    def roll(x):
        return torch.roll(x, shifts=tuple(shift), dims=(-2, -1))
    return optimize(model, pixel_image(image), layer_norm(layer), transforms=[roll], steps=1,
                    optimizer="normalized", lr=step_size, progress=False).image


def _gradient(model, image, layer, shift, objective=lambda a: a.pow(2).mean()):
    x = image.detach().clone().requires_grad_(True)
    with hooks.record(model, [layer], stop=True) as rec:
        rec.run(torch.roll(x, shifts=tuple(shift), dims=(-2, -1)))
    return torch.autograd.grad(objective(rec[layer]), x)[0]


def _per_image(g, fn):
    return fn(g.abs().flatten(1), 1).reshape(-1, 1, 1, 1).clamp_min(1e-12)


def _wrong_step(sign=1.0, scale="mean", clamp=True, objective=None, roll_back=True):
    """A plausible wrong step (for the hints), built from the same gradient."""
    def step(model, image, layer, step_size, shift):
        kwargs = {"objective": objective} if objective else {}
        g = _gradient(model, image, layer, shift, **kwargs)
        norm = {"mean": _per_image(g, torch.mean),
                "max": _per_image(g, lambda t, d: t.max(d).values),
                "batch": g.abs().mean().clamp_min(1e-12),
                "none": 1.0}[scale]
        out = image + sign * step_size * g / norm
        out = out.clamp(0, 1) if clamp else out
        return out if roll_back else torch.roll(out, shifts=tuple(shift), dims=(-2, -1))
    return step


def _not_rolled_back(model, image, layer, step_size, shift):
    return torch.roll(_step_reference(model, image, layer, step_size, shift),
                      shifts=tuple(shift), dims=(-2, -1))


def _no_roll(model, image, layer, step_size, shift):
    return _step_reference(model, image, layer, step_size, (0, 0))


STEP_MISTAKES = [
    Mistake(_wrong_step(sign=-1.0), "that is a step down the gradient. Deep dream *ascends* "
            "J = mean(A^2): add step_size * g / mean|g| to the image."),
    Mistake(_wrong_step(scale="none"), "the gradient is not normalized: divide it by the mean "
            "of its absolute values (per image) so that step_size is in pixel units."),
    Mistake(_wrong_step(scale="max"), "divide by the MEAN absolute gradient, not the max: "
            "then step_size is the average change of a pixel, as in helpers.optimize."),
    Mistake(_wrong_step(scale="batch"), "normalize each image by its own mean |gradient| "
            "(mean over dims 1, 2, 3 with keepdim=True), not by one mean over the whole batch."),
    Mistake(_wrong_step(clamp=False), "keep the image a valid picture: clamp the result to [0, 1]."),
    Mistake(_wrong_step(objective=lambda a: a.mean()), "the objective is the mean of the "
            "SQUARED activations, A.pow(2).mean(); the plain mean lets negative values cancel."),
    Mistake(_not_rolled_back, "your result is still rolled: take the gradient with respect to "
            "the unrolled image (roll inside the forward pass) so the step lands on the right "
            "pixels."),
    Mistake(_no_roll, "the shift is missing: run the forward pass on "
            "torch.roll(x, shifts=shift, dims=(-2, -1)), the jittered image."),
]


def dream_step(student, model=None):
    """Check ``my_dream_step(model, image, layer, step_size, shift)`` -> the image after one
    normalized ascent step on ``mean(A_layer^2)``, rolled by ``shift`` for the forward pass."""
    model = course_model(model)
    net = tiny_cnn()
    layer = _layer(model)
    cases = [
        Case("a random image at 32x32 on a small CNN, no shift",
             (net, random_images(1, 32, 32, seed=1), "3", 0.01, (0, 0))),
        Case("a random batch of 2 at 37x53 on a small CNN, shifted by (5, -3)",
             (net, random_images(2, 37, 53, seed=2), "1", 0.02, (5, -3))),
        Case(f"the cat photo at 64 px, layer {layer}, shifted by (-7, 4)",
             (model, photos(model, ["chelsea"], 64), layer, 0.01, (-7, 4))),
        Case(f"a batch of 2 photos at 64 px, layer {layer}, shifted by (3, 9)",
             (model, photos(model, ["coffee", "astronaut"], 64), layer, 0.03, (3, 9))),
    ]
    return run("dream step", student, _step_reference, cases, mistakes=STEP_MISTAKES,
               hint="compare with the equation: I + step_size * g / mean|g|, with g the "
                    "gradient of mean(A^2) for the rolled image, then clamp to [0, 1].")


# ---- octaves ---------------------------------------------------------------------------------

class DreamAtScale:
    """What ``deep_dream`` runs at one octave: ``steps`` normalized steps on ``layer_norm``,
    no jitter. Called with an (N, 3, h, w) image, returns the dreamed (N, 3, h, w) image."""

    def __init__(self, model, layer, steps, step_size, octaves, scale):
        self.model, self.layer, self.steps, self.step_size = model, layer, steps, step_size
        self.octaves, self.scale = octaves, scale

    def __call__(self, image):
        return optimize(self.model, pixel_image(image), layer_norm(self.layer),
                        transforms=[Jitter(0)], steps=self.steps, optimizer="normalized",
                        lr=self.step_size, progress=False, seed=0).image

    def sizes(self, height, width):
        smallest = max(MIN_OCTAVE, min_input_size(self.model) or 1)
        return octave_sizes(height, width, self.octaves, self.scale, smallest)

    def __repr__(self):
        return f"dream({self.layer}, {self.steps} steps)"


def _octave_reference(image, sizes, dream):
    """``helpers.dream.deep_dream`` (jitter 0) on each image of the batch."""
    return torch.stack([deep_dream(dream.model, im, dream.layer, dream.steps, dream.octaves,
                                   dream.scale, dream.step_size, jitter=0) for im in image])


def _no_detail(image, sizes, dream):
    return dream(resize(image, sizes[-1])).clamp(0, 1)


def _carry_image(image, sizes, dream):
    x = resize(image, sizes[0])
    for size in sizes:
        x = dream(resize(x, size).clamp(0, 1))
    return x.clamp(0, 1)


def _reversed_loop(image, sizes, dream):
    detail = None
    for size in reversed(sizes):
        b = resize(image, size)
        detail = torch.zeros_like(b) if detail is None else resize(detail, size)
        detail = dream((b + detail).clamp(0, 1)) - b
    return (image + resize(detail, tuple(image.shape[-2:]))).clamp(0, 1)


def _only_detail(image, sizes, dream):
    return _octave_reference(image, sizes, dream) - image


OCTAVE_MISTAKES = [
    Mistake(_no_detail, "only the last octave shows: carry the detail up. After each scale keep "
            "detail = dreamed - photo at that scale, resize it to the next size and add it to "
            "the photo resized to that size."),
    Mistake(_carry_image, "you carried the whole dreamed image up: resizing it up blurs the "
            "photo. Carry only the detail (dreamed - photo at that scale) and add it to the "
            "photo resized from full size."),
    Mistake(_reversed_loop, "go from the smallest size to the full size (sizes[0] is the "
            "smallest), so the last octave is the full photo."),
    Mistake(_only_detail, "return the full-size photo plus the detail, clamped to [0, 1], "
            "not the detail alone."),
]


def octave_dream(student, model=None):
    """Check ``my_octave_dream(image, sizes, dream)`` -> ``deep_dream``'s octave loop: dream at
    each size from small to large, carrying the added detail up; (N, 3, H, W) in [0, 1]."""
    model = course_model(model)
    net = tiny_cnn()
    layer = _layer(model)

    def case(label, image, dream):
        return Case(label, (image, dream.sizes(*image.shape[-2:]), dream))
    return run("octave dream", student, _octave_reference, [
        case("a random image at 40x40 on a small CNN, 2 octaves",
             random_images(1, 40, 40, seed=3), DreamAtScale(net, "3", 3, 0.02, 2, 1.4)),
        case("a random batch of 2 at 37x53 on a small CNN, 3 octaves",
             random_images(2, 37, 53, seed=4), DreamAtScale(net, "1", 2, 0.02, 3, 1.3)),
        case(f"the cat photo at 72 px, layer {layer}, 3 octaves",
             photos(model, ["chelsea"], 72), DreamAtScale(model, layer, 2, 0.02, 3, 1.4)),
    ], mistakes=OCTAVE_MISTAKES,
        hint="for each size: b = helpers.resize(image, size); detail resized to size (zeros at "
             "first); dreamed = dream((b + detail).clamp(0, 1)); detail = dreamed - b. Return "
             "(image + detail).clamp(0, 1).")
