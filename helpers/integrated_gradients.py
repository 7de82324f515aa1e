"""Integrated gradients: the gradient summed along a straight path from a baseline to the photo.

Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017:

    IG_i(x) = (x_i - x'_i) * integral_0^1 dS_y(x' + a (x - x')) / dx_i  da,

approximated with ``steps`` points of a quadrature rule (Captum's rules and default,
Gauss-Legendre, so the two agree). By the fundamental theorem of calculus along the path the
attributions add up to the score difference, ``sum_i IG_i = S_y(x) - S_y(x')``
(*completeness*); ``score_difference`` gives the right-hand side to check it.
"""
import numpy as np
import torch

from .attribution import occlusion_baseline, one_image, pick_class, target_class

BASELINES = ("black", "white", "mean", "blur")
METHODS = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_middle",
           "riemann_right")


def path_points(steps, method="gausslegendre"):
    """Positions ``a`` in [0, 1] on the path and their quadrature weights, as two lists.

    The same numbers as Captum's ``approximation_parameters(method)``: Gauss-Legendre nodes
    and weights rescaled to [0, 1], or a Riemann sum (the trapezoid halves the end weights).
    """
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}: choose one of {', '.join(METHODS)}.")
    least = 1 if method == "gausslegendre" else 2
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < least:
        raise ValueError(f"steps must be an integer >= {least} for {method}, got {steps!r}.")
    n = int(steps)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return (0.5 * (1 + nodes)).tolist(), (0.5 * weights).tolist()
    weights = [1 / n] * n
    if method == "riemann_trapezoid":
        weights[0] /= 2
        weights[-1] /= 2
        alphas = torch.linspace(0, 1, n)
    elif method == "riemann_left":
        alphas = torch.linspace(0, 1 - 1 / n, n)
    elif method == "riemann_middle":
        alphas = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)
    else:
        alphas = torch.linspace(1 / n, 1, n)
    return alphas.tolist(), weights


def ig_baseline(image, baseline="black", sigma=None):
    """The baseline image x': (3, H, W) on the image's device.

    Args:
        image: (3, H, W) in [0, 1].
        baseline: ``"black"`` (zeros, the paper's choice), ``"white"``, ``"mean"`` (the
            photo's mean colour), ``"blur"`` (the photo blurred with ``sigma``, default a
            sixteenth of its shorter side: no object, same colours), or a (3, H, W) tensor.
    """
    x = image[0] if image.dim() == 4 else image
    if isinstance(baseline, torch.Tensor):
        base = baseline[0] if baseline.dim() == 4 else baseline
        if base.shape != x.shape:
            raise ValueError(f"A baseline image must have the photo's shape {tuple(x.shape)}, "
                             f"got {tuple(base.shape)}.")
        return base.to(device=x.device, dtype=x.dtype)
    if baseline not in BASELINES:
        raise ValueError(f"Unknown baseline {baseline!r}: choose one of "
                         f"{', '.join(BASELINES)}, or pass a (3, H, W) tensor.")
    if baseline == "white":
        return torch.ones_like(x)
    fill = {"black": "zero", "mean": "mean", "blur": "blur"}[baseline]
    sigma = sigma or min(x.shape[-2:]) / 16
    return occlusion_baseline(x, fill, window=max(1, round(2 * sigma)))


def _scores(model, images, target):
    with torch.inference_mode():
        out = model(images)
    t = pick_class(model, out, target)
    return out[:, t].float(), t


def integrated_gradients(model, image, target=None, baseline="black", steps=32,
                         method="gausslegendre", batch_size=None):
    """Integrated gradients (Sundararajan et al. 2017) of a class score (the logit).

    The ``steps`` path images ``x' + a (x - x')`` run through the model a few at a time
    (``batch_size``), each chunk with one ``torch.autograd.grad`` to its input only (the
    parameters stay frozen).

    Args:
        image: (3, H, W) in [0, 1].
        target: class index or name; None = the class predicted for the photo.
        baseline: see ``ig_baseline`` (default black).
        steps: points on the path (Captum's ``n_steps``); more steps, smaller completeness gap.
        method: quadrature rule, one of ``METHODS`` (Captum's default, Gauss-Legendre).
        batch_size: path images per forward pass (default: all steps, at most 16 images of
            224 x 224 on a CPU, 64 on a GPU).
    Returns:
        (3, H, W) signed tensor on the CPU; its sum approximates ``score_difference``.
    """
    alphas, weights = path_points(steps, method)
    x = one_image(model, image)
    base = ig_baseline(x[0], baseline)[None]
    t = target_class(model, target)
    if t is None:
        t = _scores(model, x, None)[1]
    # Like Captum (one batch of all steps), but at most 16 images of 224 x 224 at a time on a
    # CPU (64 on a GPU), which bounds the memory the backward pass keeps.
    cap = (16 if x.device.type == "cpu" else 64) * 224 * 224 // x[0, 0].numel()
    bs = int(batch_size or max(1, min(len(alphas), cap)))
    if bs < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    total = torch.zeros_like(x)
    for i in range(0, len(alphas), bs):
        chunk = torch.cat([base + a * (x - base) for a in alphas[i:i + bs]]).requires_grad_(True)
        out = model(chunk)
        t = pick_class(model, out, t)
        grad, = torch.autograd.grad(out[:, t].sum(), chunk)
        w = torch.tensor(weights[i:i + bs], dtype=torch.float32, device=x.device)
        total += (grad * w.view(-1, 1, 1, 1)).sum(0, keepdim=True)
    return (total * (x - base))[0].detach().float().cpu()


def score_difference(model, image, target=None, baseline="black"):
    """``S_y(x) - S_y(x')``: what integrated gradients' attributions add up to (completeness).

    Args:
        image: (3, H, W) in [0, 1]; target, baseline: as for ``integrated_gradients``.
    Returns:
        float.
    """
    x = one_image(model, image)
    base = ig_baseline(x[0], baseline)[None]
    scores, _ = _scores(model, torch.cat([x, base]), target_class(model, target))
    return float(scores[0] - scores[1])


def path_scores(model, image, target=None, baseline="black", points=41, batch_size=None):
    """The class score along the straight path from the baseline to the photo.

    Where the score climbs steeply, the integrand of integrated gradients is large and the
    quadrature needs its points close together; a flat stretch contributes nothing.

    Args:
        image: (3, H, W) in [0, 1]; target, baseline: as for ``integrated_gradients``.
        points: evenly spaced positions ``a`` from 0 (baseline) to 1 (photo), at least 2.
    Returns:
        ``(a, scores)``: two (points,) tensors on the CPU.
    """
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got {points!r}.")
    x = one_image(model, image)
    base = ig_baseline(x[0], baseline)[None]
    t = target_class(model, target)
    if t is None:
        t = _scores(model, x, None)[1]
    alphas = torch.linspace(0, 1, int(points))
    bs = batch_size or (8 if x.device.type == "cpu" else 64)
    scores = [_scores(model, torch.cat([base + float(a) * (x - base) for a in chunk]), t)[0]
              for chunk in alphas.split(int(bs))]
    return alphas, torch.cat(scores).cpu()


__all__ = ["BASELINES", "METHODS", "ig_baseline", "integrated_gradients", "path_points",
           "path_scores", "score_difference"]
