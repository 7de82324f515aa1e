"""Feature inversion: which images does a layer consider the same as a photo?

Find ``x`` minimising ``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + lambda * TV_beta(x)``
(+ an optional L-alpha bound) from noise (Mahendran & Vedaldi, "Understanding deep
image representations by inverting them", CVPR 2015). What survives in the
reconstruction is what the layer keeps; detail fades with depth.

Every optimization runs through ``helpers.optimize.optimize``.
"""
from dataclasses import dataclass, field

import torch

from .checks import check_strength
from .device import model_device, small_image_threads
from .hooks import activations, get_layer
from .images import as_batch
from .models import model_input
from .objectives import Objective, smoother, tv
from .optimize import channels_last, optimize
from .params import pixel_image


@torch.no_grad()
def evaluate(model, objective, image):
    """The value (float) of an objective -- or a list of floats for a list of objectives --
    for a fixed (1, 3, H, W) image, from one forward pass (``hooks.activations``)."""
    many = isinstance(objective, (list, tuple))
    objectives = list(objective) if many else [objective]
    image = as_batch(image, model_device(model))
    acts = activations(model, image, sorted(set().union(*(o.layers for o in objectives))))
    values = [float(o(acts, image)) for o in objectives]
    return values if many else values[0]


def feature_distance(layer, target, smooth=None):
    """Objective ``||phi(x) - phi0||^2 / ||phi0||^2`` at ``layer`` (relative squared distance).

    Args:
        layer: layer name.
        target: (1, C, H, W) activation ``phi0`` of the photo (from ``hooks.activations``).
        smooth: apply the softmax smoothing of ``objectives.softmax_smooth`` to both
            sides first (False, True or a temperature).
    Returns:
        ``Objective`` averaged over the batch; 1 for an all-zero ``phi(x)``.
    """
    f = smoother(smooth)
    target = f(target.detach())
    norm = target.pow(2).sum().clamp_min(1e-12)

    def fn(rec, image):
        act = f(rec[layer])
        if act.shape[1:] != target.shape[1:]:
            raise ValueError(f"Layer {layer!r}: the image gives activations of shape "
                             f"{tuple(act.shape[1:])} but the target has "
                             f"{tuple(target.shape[1:])}; reconstruct at the photo's size.")
        return (act - target).pow(2).flatten(1).sum(1).mean() / norm
    return Objective(fn, {layer}, f"feature_distance({layer})")


def alpha_norm(alpha=6.0, strength=1.0, bound=0.5):
    """Penalty ``strength * mean(|(x - 0.5) / bound|^alpha)`` (Mahendran & Vedaldi, 2015).

    A large ``alpha`` leaves pixels inside ``0.5 +- bound`` almost free and stops them
    from drifting far outside: a soft box constraint on the dynamic range.
    """
    if alpha < 1:
        raise ValueError(f"alpha must be >= 1, got {alpha}.")

    def fn(rec, image):
        return strength * ((image - 0.5).abs() / bound).pow(alpha).mean()
    return Objective(fn, (), f"{strength:g}*alpha_norm({alpha:g})")


def pixel_error(a, b):
    """Root-mean-square difference of two images in [0, 1] (any leading shape)."""
    return float((as_batch(a, "cpu") - as_batch(b, "cpu")).pow(2).mean().sqrt())


@dataclass
class Inversion:
    """What ``invert`` returns.

    Attributes:
        image: (1, 3, H, W) reconstruction in [0, 1].
        layer: the inverted layer.
        history: total loss per step.
        distance_start, distance: relative feature distance from the noise start and at the end.
        pixel_error: RMS pixel difference to the photo.
    """
    image: torch.Tensor
    layer: str
    history: list = field(default_factory=list)
    distance_start: float = float("nan")
    distance: float = float("nan")
    pixel_error: float = float("nan")
    steps: int = 0
    interrupted: bool = False


def invert(model, image, layer, tv_strength=8.0, beta=2.0, alpha=6.0, alpha_strength=0.0,
           steps=80, optimizer="adam", lr=None, sd=0.1, seed=0, smooth=None, transforms=(),
           progress=False, callback=None, every=10):
    """Reconstruct a photo from one layer's activations (Mahendran & Vedaldi, 2015).

    Args:
        model: any model from ``helpers.models``.
        image: (3, H, W) photo in [0, 1]; the reconstruction has its size.
        layer: the layer whose activations are matched.
        tv_strength: weight of the total variation ``TV_beta`` (``objectives.tv``, a mean
            over pixels); 0 switches it off.
        beta: TV exponent; < 2 allows sharper edges.
        alpha, alpha_strength: optional L-alpha bound (``alpha_norm``); 0 = off.
        steps, optimizer, lr: passed to ``optimize`` (``"adam"``, ``"lbfgs"``...); ``lr=None``
            is the optimizer's own default (``optimize.DEFAULT_LR``).
        sd: noise around grey at the start.
        smooth: softmax smoothing of the activations (``objectives.softmax_smooth``).
    Returns:
        ``Inversion`` with the reconstruction and its feature distance before and after.
    """
    image = model_input(model, image)
    get_layer(model, layer)
    for name, value in [("tv_strength", tv_strength), ("alpha_strength", alpha_strength),
                        ("sd", sd)]:
        check_strength(value, name)
    target = activations(model, image, [layer])[layer]
    distance = feature_distance(layer, target, smooth)
    objective = distance
    if tv_strength:
        objective = objective + tv(tv_strength, beta)
    if alpha_strength:
        objective = objective + alpha_norm(alpha, alpha_strength)
    param = pixel_image(tuple(image.shape[-2:]), sd=sd, seed=seed)
    start = evaluate(model, distance, param().detach())
    with small_image_threads(*image.shape[-2:]):
        res = optimize(model, param, objective, transforms=[*transforms, channels_last],
                       steps=steps, optimizer=optimizer, lr=lr, progress=progress,
                       callback=callback, every=every, seed=seed)
    return Inversion(res.image, layer, res.history, start, evaluate(model, distance, res.image),
                     pixel_error(res.image, image), res.steps, res.interrupted)


def invert_layers(model, image, layers, **kwargs):
    """``invert`` at several layers (same settings), in the given order: a list of ``Inversion``."""
    for name in layers:
        get_layer(model, name)
    return [invert(model, image, name, **kwargs) for name in layers]


def inversion_figure(image, inversions, size=2.4, title=None):
    """The photo, then one reconstruction per layer titled with its feature distance."""
    from .plotting import show_images
    images = [as_batch(image)[0]] + [inv.image[0] for inv in inversions]
    titles = ["photo"] + [f"{inv.layer}\nd={inv.distance:.3f}, rms={inv.pixel_error:.3f}"
                          for inv in inversions]
    return show_images(images, titles, ncols=len(images), size=size, title=title)


__all__ = [
    "Inversion",
    "alpha_norm",
    "evaluate",
    "feature_distance",
    "inversion_figure",
    "invert",
    "invert_layers",
    "pixel_error",
]
