"""Checks for notebook 12 (style transfer): the content loss and the whole feature loss.

References: ``inversion.feature_distance`` (the content term of ``style_transfer`` and of the
perceptual loss) and ``style.style_loss`` (``sum_l w_l E_l``), combined as ``style_transfer``
combines them: ``content_weight * d + style_weight * sum_l w_l E_l`` (TV is notebook 11's).
"""
from .. import style as _style
from ..hooks import activations
from ..inversion import feature_distance
from .verdict import Case, Mistake, close_number, course_model, noise, photos, run

__all__ = ["content_loss", "style_transfer_loss"]


# ---- content loss ----------------------------------------------------------------------------

def _content_reference(features, target):
    """``helpers.feature_distance`` evaluated on these activations."""
    return feature_distance("layer", target)({"layer": features}, None)


def _squared(features, target):
    return (features - target).pow(2).flatten(1).sum(1)


def _not_relative(features, target):
    return _squared(features, target).mean()


def _mse(features, target):
    return (features - target).pow(2).mean()


def _norm_not_squared(features, target):
    return _squared(features, target).mean() / target.pow(2).sum().sqrt()


def _batch_sum(features, target):
    return _squared(features, target).sum() / target.pow(2).sum()


def _own_norm(features, target):
    return (_squared(features, target) / features.pow(2).flatten(1).sum(1)).mean()


def _distance_not_squared(features, target):
    return (_squared(features, target).sqrt() / target.pow(2).sum().sqrt()).mean()


CONTENT_MISTAKES = [
    Mistake(_not_relative, "divide by the photo's ||phi(c)||^2 = (target ** 2).sum(): the "
            "distance is relative, 1 for an all-zero description."),
    Mistake(_mse, "that is the mean squared error: sum the squared differences per image and "
            "divide by (target ** 2).sum()."),
    Mistake(_norm_not_squared, "divide by the SQUARED norm of the target, (target ** 2).sum()."),
    Mistake(_batch_sum, "average the distance over the images of the batch, do not sum."),
    Mistake(_own_norm, "divide by the photo's (the target's) squared norm, a constant, not by "
            "the image's own."),
    Mistake(_distance_not_squared, "square the distance: ||phi(x) - phi(c)||^2 / "
            "||phi(c)||^2, no square roots."),
]


def content_loss(student, model=None):
    """Check ``my_content_loss(features, target)`` -> ``feature_distance``:
    ``||phi(x) - phi(c)||^2 / ||phi(c)||^2`` per image, averaged over the batch."""
    model = course_model(model)
    layer = _style.preset(model)["content"]
    cat = activations(model, photos(model, ["chelsea"], 64), [layer])[layer]
    others = activations(model, photos(model, ["coffee", "astronaut"], 64), [layer])[layer]
    noisy = (photos(model, ["chelsea"], 64) + 0.1 * noise((1, 3, 64, 64), 13).to(cat.device))
    noisy = activations(model, noisy.clamp(0, 1), [layer])[layer]
    return run("content loss", student, _content_reference, [
        Case("random features of 1 image, 8 channels at 5x6",
             (noise((1, 8, 5, 6), 14), noise((1, 8, 5, 6), 15))),
        Case("random features of a batch of 3 against one target",
             (noise((3, 5, 7, 4), 16), noise((1, 5, 7, 4), 17))),
        Case(f"the noisy cat against the cat at 64 px ({layer})", (noisy, cat)),
        Case(f"coffee and astronaut against the cat at 64 px ({layer})", (others, cat)),
    ], compare=close_number, mistakes=CONTENT_MISTAKES,
        hint="d = ((features - target) ** 2) summed over (C, H, W), divided by "
             "(target ** 2).sum(), then the mean over the batch.")


# ---- the whole loss --------------------------------------------------------------------------

def _total_reference(acts, content_target, style_grams, content_layer, weights, style_weight,
                     content_weight=1.0):
    """``style_transfer``'s objective without TV, from ``feature_distance`` and ``style_loss``."""
    objective = (content_weight * feature_distance(content_layer, content_target)
                 + style_weight * _style.style_loss(style_grams, weights))
    return objective(acts, None)


def _variant(unweighted=False, no_style_weight=False, no_content_weight=False, swapped=False,
             wrong_layer=False, mean_layers=False):
    """A plausible wrong total (for the hints)."""
    def total(acts, content_target, style_grams, content_layer, weights, style_weight,
              content_weight=1.0):
        beta, alpha = style_weight, content_weight
        if swapped:
            beta, alpha = alpha, beta
        beta = 1.0 if no_style_weight else beta
        alpha = 1.0 if no_content_weight else alpha
        w = dict.fromkeys(style_grams, 1.0) if unweighted else weights
        style = _style.style_loss(style_grams, w)(acts, None)
        if mean_layers:
            style = style / len(style_grams)
        layer = list(style_grams)[-1] if wrong_layer else content_layer
        content = _content_reference(acts[layer], content_target)
        return alpha * content + beta * style
    return total


TOTAL_MISTAKES = [
    Mistake(_variant(unweighted=True), "weight each style layer: sum_l weights[l] * E_l, not "
            "the plain sum."),
    Mistake(_variant(no_style_weight=True), "multiply the style term by style_weight (beta)."),
    Mistake(_variant(no_content_weight=True), "multiply the content term by content_weight "
            "(alpha)."),
    Mistake(_variant(swapped=True), "content_weight goes with the content distance, "
            "style_weight with the style sum: they are swapped."),
    Mistake(_variant(wrong_layer=True), "the content term compares acts[content_layer] with "
            "content_target (careful with a loop variable left over from the style loop)."),
    Mistake(_variant(mean_layers=True), "sum the weighted E_l over the layers, do not average."),
]


def _model_case(model):
    p = _style.preset(model)
    layers, content_layer = list(p["style"]), p["content"]
    weights = {name: (1.0, 0.5, 2.0, 0.25, 4.0)[i % 5] for i, name in enumerate(layers)}
    photo = photos(model, ["chelsea"], 64)
    x = photos(model, ["astronaut", "rocket"], 64)
    acts = activations(model, x, [*layers, content_layer])
    target = activations(model, photo, [content_layer])[content_layer]
    grams = _style.style_targets(model, photos(model, ["coffee"], 80), layers)
    return Case(f"astronaut and rocket at 64 px, content: the cat ({content_layer}), style: "
                f"coffee, {len(layers)} layers, weights {tuple(weights.values())}",
                (acts, target, grams, content_layer, weights, 10.0, 1.0))


def _random_case(n, seed, style_weight, content_weight):
    acts = {"a": noise((n, 4, 9, 9), seed), "b": noise((n, 6, 5, 5), seed + 1),
            "c": noise((n, 6, 5, 5), seed + 2)}
    grams = {"a": _style.gram(noise((1, 4, 7, 7), seed + 3)),
             "b": _style.gram(noise((1, 6, 6, 6), seed + 4))}
    target = noise((1, 6, 5, 5), seed + 5)
    return Case(f"random features of {n} image{'s' if n > 1 else ''}, style layers a, b "
                f"(weights 1, 0.25), content layer c, style weight {style_weight:g}, content "
                f"weight {content_weight:g}",
                (acts, target, grams, "c", {"a": 1.0, "b": 0.25}, style_weight, content_weight))


def style_transfer_loss(student, model=None):
    """Check ``my_style_transfer_loss(acts, content_target, style_grams, content_layer, weights,
    style_weight, content_weight)`` -> ``content_weight * d + style_weight * sum_l w_l E_l``."""
    model = course_model(model)
    return run("style transfer loss", student, _total_reference, [
        _random_case(1, 20, 10.0, 1.0),
        _random_case(2, 30, 3.0, 0.5),
        _model_case(model),
    ], compare=close_number, mistakes=TOTAL_MISTAKES,
        hint="content_weight * d(acts[content_layer], content_target) + style_weight * "
             "sum over the style layers of weights[l] * E_l(acts[l], style_grams[l]).")
