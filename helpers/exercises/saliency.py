"""Checks for notebook 06: the saliency map of a batch, and SmoothGrad.

- ``my_saliency(model, images, targets)``: (N, 3, H, W) images and N class indices ->
  (N, H, W) maps ``max_c |d S_target / d x_c|`` of the pre-softmax score, one per image, as
  ``helpers.attribution.saliency`` computes them one image at a time.
- ``my_smoothgrad(model, image, target, noise, samples, seed)``: the mean of the saliency maps
  of ``samples`` noisy copies ``image + noise * (max - min) * eps``, with ``eps`` drawn exactly
  as the helper draws it (one (samples, 3, H, W) tensor from ``torch.Generator().manual_seed(seed)``
  on the CPU), so the check is deterministic.
"""
import torch

from ..attribution import saliency as _saliency
from ..device import model_device
from .verdict import (Case, Mistake, close_to_scale, course_model, photo, predicted, random_images,
                      run, sharp_cnn)

__all__ = ["saliency", "smoothgrad"]


def _model(model):
    model = course_model(model)
    return model, model_device(model)


def _grads(model, batch, targets, prob=False):
    """d S_t / d x (or d p_t / d x) for every image of ``batch`` at once."""
    x = batch.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(x)
        if prob:
            out = out.softmax(-1)
        picked = out[torch.arange(len(x)), torch.as_tensor(targets, device=out.device)]
        grad, = torch.autograd.grad(picked.sum(), x)
    return grad


# --------------------------------------------------------------------------- saliency of a batch
def _reference(model, images, targets):
    return torch.stack([_saliency(model, image, int(t)) for image, t in zip(images, targets)])


def _saliency_slip(model, images, targets, reduce="max", take_abs=True, prob=False, one=False):
    """The saliency map with one of the usual slips switched on (for the hints)."""
    targets = [targets[0]] * len(images) if one else targets
    g = _grads(model, images, targets, prob)
    g = g.abs() if take_abs else g
    return {"max": g.amax(1), "sum": g.sum(1), "mean": g.mean(1)}[reduce]


_COLOURS = ("keep the largest magnitude over the three colour channels: "
            "grad.abs().amax(dim=1), not a sum or a mean.")
_SALIENCY_MISTAKES = [
    Mistake(lambda *a: _saliency_slip(*a, take_abs=False),
            "take the magnitude first: |grad|, then the max over colours (a large negative "
            "gradient matters as much as a positive one)."),
    Mistake(lambda *a: _saliency_slip(*a, reduce="sum"), _COLOURS),
    Mistake(lambda *a: _saliency_slip(*a, reduce="mean"), _COLOURS),
    Mistake(lambda *a: _saliency_slip(*a, prob=True),
            "differentiate the score S_y (the logit, model(x)[:, y]), not the probability "
            "after the softmax."),
    Mistake(lambda *a: _saliency_slip(*a, one=True),
            "each image has its own class: sum out[n, targets[n]] over the batch, e.g. "
            "out[torch.arange(N), targets].sum()."),
]


def saliency(student, model=None):
    """Check ``student(model, images, targets) -> (N, H, W)`` against
    ``helpers.attribution.saliency`` applied to each image.

    Random images run through a small random network; the cat and the coffee photos at 64 px
    through ``model`` (default: ``helpers.load_model()``).
    """
    model, device = _model(model)
    net = sharp_cnn(seed=2)
    one, three = random_images(1, 32, 32, seed=7), random_images(3, 37, 53, seed=8)
    photos = torch.stack([photo("chelsea", 64), photo("coffee", 64)]).to(device)
    cases = [
        Case("a batch of 1 random 32x32 image", (net, one, [predicted(net, one[0])])),
        Case("a random batch of 3 at 37x53 with classes [3, 5, 8]", (net, three, [3, 5, 8])),
        Case("the cat and the coffee photos at 64 px, their predicted classes",
             (model, photos, [predicted(model, p) for p in photos])),
    ]
    return run("saliency", student, _reference, cases, compare=close_to_scale,
               mistakes=_SALIENCY_MISTAKES,
               hint="one forward pass of the batch, the sum of each image's score for its own "
                    "class, torch.autograd.grad to the images, then |.| and the max over colours.")


# --------------------------------------------------------------------------- SmoothGrad
def _smooth_reference(model, image, target, noise, samples, seed):
    return _saliency(model, image, target, noise=noise, samples=samples, seed=seed)


def _smooth_slip(model, image, target, noise, samples, seed, scaled=True, accumulate=False,
                 abs_last=False, mean=True, prob=False, clamp=None):
    """SmoothGrad with one of the usual slips switched on (for the hints); ``clamp``: the
    noisy copies clamped to [0, 1] before ("copies") or after ("inside") the input leaf."""
    sigma = noise * float(image.max() - image.min()) if scaled else noise
    eps = torch.randn((samples,) + tuple(image.shape), generator=torch.Generator().manual_seed(seed))
    batch = image + sigma * eps.to(image.device)
    grads = _grads(model, batch.clamp(0, 1) if clamp else batch, [target] * samples, prob)
    if clamp == "inside":  # the gradient of clamp: zero where a value was clipped
        grads = grads * ((batch >= 0) & (batch <= 1))
    if accumulate:  # x.grad never zeroed: copy k sees the sum of the first k gradients
        grads = grads.cumsum(0)
    if abs_last:
        total = grads.sum(0).abs().amax(0)
    else:
        total = grads.abs().amax(1).sum(0)
    return total / samples if mean else total


_NO_CLAMP = ("do not clamp the noisy copies to [0, 1]: SmoothGrad averages over noise that may "
             "leave the [0, 1] range; use image + sigma * eps as it is.")
_SMOOTH_MISTAKES = [
    Mistake(lambda *a: _smooth_slip(*a, scaled=False),
            "scale the noise by the image's value range: sigma = noise * (image.max() - "
            "image.min())."),
    Mistake(lambda *a: _smooth_slip(*a, accumulate=True),
            "the gradients pile up from copy to copy: zero x.grad after each copy, or use "
            "torch.autograd.grad, which returns fresh gradients."),
    Mistake(lambda *a: _smooth_slip(*a, abs_last=True),
            "average the maps, not the gradients: |grad| and the max over colours for each "
            "copy first, then the mean over the copies."),
    Mistake(lambda *a: _smooth_slip(*a, mean=False),
            "divide by the number of copies: SmoothGrad is the mean of the maps, not the sum."),
    Mistake(lambda *a: _smooth_slip(*a, prob=True),
            "differentiate the score (the logit), not the probability after the softmax."),
    Mistake(lambda *a: _smooth_slip(*a, clamp="copies"), _NO_CLAMP),
    Mistake(lambda *a: _smooth_slip(*a, clamp="inside"), _NO_CLAMP),
]


def smoothgrad(student, model=None):
    """Check ``student(model, image, target, noise, samples, seed) -> (H, W)`` against
    ``helpers.attribution.saliency(model, image, target, noise=..., samples=..., seed=...)``.

    Random images (values in [0.25, 0.75], so that the noise's scaling by the value range
    matters) run through a small random network; the cat photo at 64 px through ``model``
    (default: ``helpers.load_model()``).
    """
    model, device = _model(model)
    net = sharp_cnn(seed=3)
    a = 0.25 + 0.5 * random_images(1, 29, 31, seed=9)[0]
    b = 0.25 + 0.5 * random_images(1, 40, 36, seed=10)[0]
    cat = photo("chelsea", 64).to(device)
    cases = [
        Case("1 noisy copy of a random 29x31 image, noise 0.2, seed 0",
             (net, a, predicted(net, a), 0.2, 1, 0)),
        Case("6 noisy copies of a random 40x36 image, noise 0.15, seed 3",
             (net, b, predicted(net, b), 0.15, 6, 3)),
        Case("4 noisy copies of the cat photo at 64 px, noise 0.2, seed 1",
             (model, cat, predicted(model, cat), 0.2, 4, 1)),
    ]
    return run("smoothgrad", student, _smooth_reference, cases, compare=close_to_scale,
               mistakes=_SMOOTH_MISTAKES,
               hint="draw the noise exactly as described, eps = torch.randn((samples, 3, H, W), "
                    "generator=torch.Generator().manual_seed(seed)), then average the saliency "
                    "maps of image + sigma * eps.")
