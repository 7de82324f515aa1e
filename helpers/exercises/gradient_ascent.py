"""Check for notebook 08: one step of regularized gradient ascent on the pixels (Yosinski et al.).

The reference is the notebook's own engine: ``helpers.optimize.optimize`` for one plain gradient
step (SGD) on a ``pixel_image``, the jitter as a fixed ``torch.roll`` transform, then the
post-steps ``regularizers.Decay`` and ``regularizers.BlurEvery``. The jitter offset and the step
number are arguments, so the check is deterministic.
"""
import torch

from .. import regularizers as reg
from ..device import model_device
from ..images import load_image
from ..objectives import class_score
from ..optimize import optimize
from ..params import pixel_image
from . import verdict
from .verdict import Case, Mistake

__all__ = ["ascent_step"]


def _roll(shift):
    return lambda x: torch.roll(x, shifts=tuple(shift), dims=(-2, -1))


def _reference(model, image, unit, step, shift, lr, decay, blur_sigma, blur_every):
    """One step of ``optimize``: the summed score of ``unit`` up by SGD, then decay and blur."""
    blur = reg.BlurEvery(blur_every, blur_sigma)
    post = [reg.Decay(decay), lambda pixels, grad, i: blur(pixels, grad, step)]
    # class_score averages over the batch; times N it is the sum, so each image has its own step.
    objective = class_score(unit) * len(image)
    return optimize(model, pixel_image(image), objective, [_roll(shift)], post, steps=1,
                    optimizer="sgd", lr=lr, progress=False).image


def _wrong(*, sign=1, mean=False, unshifted=False, keep_shift=False, clamp=True,
           decay_grad=False, decay_zero=False, blur_always=False, blur_mod=False):
    """The step with one usual mistake switched on."""

    def step_fn(model, image, unit, step, shift, lr, decay, blur_sigma, blur_every):
        x = image.clone().requires_grad_(True)
        shifted = _roll(shift)(x)
        if unshifted:  # gradient of the shifted copy, added without shifting it back
            shifted = shifted.detach().requires_grad_(True)
        scores = model(shifted)[:, unit]
        grad, = torch.autograd.grad(scores.mean() if mean else scores.sum(),
                                    shifted if unshifted else x)
        with torch.no_grad():
            if decay_grad:
                grad = grad * (1 - decay)
            x = (shifted if keep_shift else x) + sign * lr * grad
            x = x.clamp(0, 1) if clamp else x
            if not decay_grad:
                x = x * (1 - decay) if decay_zero else 0.5 + (1 - decay) * (x - 0.5)
            if blur_always or ((step % blur_every == 0) if blur_mod else
                               (step + 1) % blur_every == 0):
                x = reg.gaussian_blur(x, blur_sigma)
        return x
    return step_fn


MISTAKES = [  # (the switch of ``_wrong``, the hint)
    ({"sign": -1}, "that is gradient descent: to raise the score, add lr * gradient."),
    ({"decay_grad": True},
     ("the decay shrinks the image towards grey, not the gradient: "
     "image = 0.5 + (1 - decay) * (image - 0.5) after the step.")),
    ({"decay_zero": True}, "the decay pulls the image towards grey 0.5, not towards 0 (black)."),
    ({"blur_always": True},
     "blur only every blur_every steps: when (step + 1) % blur_every == 0, not on every step."),
    ({"blur_mod": True},
     ("steps count from 0: blur when (step + 1) % blur_every == 0 (after steps "
     "blur_every - 1, 2 * blur_every - 1, ...).")),
    ({"unshifted": True},
     ("take the gradient with respect to the unshifted image (or roll the gradient back by "
     "-shift): the jitter is only for the forward pass.")),
    ({"keep_shift": True},
     ("the jitter is only for the forward pass: step from the original image, not from the "
     "shifted copy.")),
    ({"mean": True},
     ("use the sum of the scores over the batch, not their mean, so each image's step does not "
     "depend on the batch size.")),
    ({"clamp": False},
     "clip the pixels to [0, 1] right after the gradient step, before the decay and the blur."),
]


def ascent_step(student, model=None):
    """Check ``my_ascent_step(model, image, unit, step, shift, lr, decay, blur_sigma,
    blur_every)`` -> (N, 3, H, W) in [0, 1] against one step of ``helpers.optimize.optimize``.

    ``model`` defaults to ``verdict.tiny_cnn()`` (any classifier works; the steps are sized
    for the small one's gradients).
    """
    model = verdict.tiny_cnn() if model is None else model
    dev = model_device(model)
    photo = load_image("chelsea", 48).to(dev)[None]
    settings = {"lr": 20.0, "decay": 0.05, "blur_sigma": 0.8}
    cases = [
        Case("a random batch of 2 at 37x53, step 1 of blur every 3 (no blur), shift (3, -5)",
             (model, verdict.random_images(2, 37, 53, seed=1).to(dev)),
             dict(unit=3, step=1, shift=(3, -5), blur_every=3, **settings)),
        Case("the same batch at step 1 of blur every 2 (blur), shift (-2, 4)",
             (model, verdict.random_images(2, 37, 53, seed=1).to(dev)),
             dict(unit=3, step=1, shift=(-2, 4), blur_every=2, **settings)),
        Case("the cat photo at 48 px, step 5 of blur every 3 (blur), shift (0, 7)",
             (model, photo), dict(unit=7, step=5, shift=(0, 7), blur_every=3, **settings)),
        Case("a random 29x29 image, step 3 of blur every 4 (blur), no decay, shift (1, 1)",
             (model, verdict.random_images(1, 29, 29, seed=2).to(dev)),
             {"unit": 0, "step": 3, "shift": (1, 1), "blur_every": 4, "lr": 20.0, "decay": 0.0,
              "blur_sigma": 0.5}),
    ]
    mistakes = [Mistake(_wrong(**switch), hint) for switch, hint in MISTAKES]
    return verdict.run("ascent step", student, _reference, cases, mistakes=mistakes)
