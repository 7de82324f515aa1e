"""Textures and style from feature correlations: Gram matrices, texture synthesis, style transfer.

A texture is summarised by the Gram matrices (uncentred second moments of pairs of
channels: products of activations averaged over positions) of a few layers; an image with the same Gram matrices looks like the
same texture (Gatys, Ecker & Bethge, "Texture synthesis using convolutional
neural networks", NeurIPS 2015). Style transfer adds a content term: keep one
layer's activations close to a photo's while matching a painting's Gram
matrices (Gatys, Ecker & Bethge, "Image style transfer using convolutional
neural networks", CVPR 2016).

Non-VGG networks (residual, inverted-residual) give poor textures unless their
activations are smoothed by a softmax before the Gram matrix (Wang, Li &
Vasconcelos, "Rethinking and improving the robustness of image style transfer",
CVPR 2021); ``smooth`` switches that on.

Every optimization runs through ``helpers.optimize.optimize``.
"""
from dataclasses import dataclass, field

import torch

from .checks import check_strength
from .device import model_device, small_image_threads
from .hooks import activations, get_layer
from .images import as_batch, center_crop_resize, resize
from .inversion import evaluate, feature_distance
from .objectives import Objective, smoother, softmax_smooth, tv
from .optimize import channels_last, check_optimizer, optimize
from .params import image_param

# Layer choices per loss network: style layers with weights, the content layer, whether to
# smooth, the total-variation strength. For EfficientNet-Lite0 the ReLU6 outputs of the
# expansion convs (``blocks.k.act0``) play the role of VGG's relu_k_1, with equal weights as
# in Gatys et al. (2015); its block outputs (``RESIDUAL_LAYERS``) are linear projections
# whose peaky values need softmax smoothing (notebook 11 shows both), and a little total
# variation removes the stride-2 checkerboard.
PRESETS = {
    "efficientnet_lite0": {
        "style": {"act0": 1.0, "blocks.1.act0": 1.0, "blocks.3.act0": 1.0,
                  "blocks.5.act0": 1.0, "blocks.8.act0": 1.0},
        "content": "blocks.5",
        "smooth": False,
        "tv": 1.0,
    },
    # Gatys et al. (2016): relu1_1 .. relu5_1 for style, relu4_2 for content.
    "vgg19": {
        "style": {"features.1": 1.0, "features.6": 1.0, "features.11": 1.0,
                  "features.20": 1.0, "features.29": 1.0},
        "content": "features.22",
        "smooth": False,
        "tv": 0.0,
    },
    "vgg16": {
        "style": {"features.1": 1.0, "features.6": 1.0, "features.11": 1.0,
                  "features.18": 1.0, "features.25": 1.0},
        "content": "features.20",
        "smooth": False,
        "tv": 0.0,
    },
    # Wang et al. (2021) use the stem and the residual stages of ResNets, smoothed.
    "resnet18": {
        "style": {"relu": 1.0, "layer1": 1.0, "layer2": 1.0, "layer3": 1.0, "layer4": 1.0},
        "content": "layer3",
        "smooth": True,
        "tv": 0.0,
    },
    "resnet50": {
        "style": {"relu": 1.0, "layer1": 1.0, "layer2": 1.0, "layer3": 1.0, "layer4": 1.0},
        "content": "layer3",
        "smooth": True,
        "tv": 0.0,
    },
}


RESIDUAL_LAYERS = ["blocks.0", "blocks.2", "blocks.4", "blocks.7", "blocks.10"]
RESIDUAL_TEMPERATURE = 16.0


def preset(model):
    """The layer choice for ``model`` (a copy): ``{"style": {layer: weight}, "content": layer,
    "smooth": bool, "tv": float}``.

    Models without a preset get five evenly spaced layers of ``hooks.main_layers``, smoothed.
    """
    name = getattr(model, "name", None)
    if name in PRESETS:
        p = PRESETS[name]
        return {**p, "style": dict(p["style"])}
    from .hooks import main_layers
    names = main_layers(model)
    picks = [names[round(i * (len(names) - 1) / 4)] for i in range(5)]
    return {"style": dict.fromkeys(dict.fromkeys(picks), 1.0), "content": picks[3],
            "smooth": True, "tv": 0.0}


# ---- Gram matrices and the texture loss -----------------------------------------------------

def gram(features):
    """Uncentred second moments of pairs of channels: products averaged over positions.

    No means are subtracted and nothing is divided by standard deviations, so these are not
    correlations; dividing by the number of positions makes images of different sizes comparable.

    Args:
        features: (N, C, H, W) activations.
    Returns:
        (N, C, C) tensor ``F F^T / (H W)`` with F the (C, H W) matrix of each image.
    """
    if features.dim() != 4:
        raise ValueError(f"gram needs (N, C, H, W) activations, got shape {tuple(features.shape)}.")
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


def layer_style_loss(features, target_gram):
    """Per-layer style loss ``E_l = 1/(4 N_l^2) sum_ij (G_ij - G_hat_ij)^2`` of ``gram`` matrices.

    ``gram`` already divides by the number of positions ``M_l``, so this equals Gatys et al.'s
    ``1/(4 N_l^2 M_l^2) sum (F F^T - F_hat F_hat^T)^2`` when both images have the same size,
    and still compares a sample and an output of different sizes.

    Args:
        features: (N, C, H, W) activations of the image being optimized.
        target_gram: (1, C, C) or (N, C, C) Gram matrix of the sample.
    Returns:
        0-dim tensor, averaged over the batch.
    """
    g = gram(features)
    c = g.shape[-1]
    return (g - target_gram).pow(2).sum(dim=(1, 2)).mean() / (4 * c * c)


def style_targets(model, image, layers, smooth=None):
    """Gram matrices ``{layer: (1, C, C)}`` of a (3, H, W) or (1, 3, H, W) image, detached."""
    acts = activations(model, image, list(layers))
    f = smoother(smooth)
    return {name: gram(f(a)) for name, a in acts.items()}


def style_loss(targets, weights=None, smooth=None):
    """Objective ``sum_l w_l E_l`` matching the Gram matrices in ``targets``.

    Args:
        targets: ``{layer: (1, C, C) Gram matrix}`` (from ``style_targets``).
        weights: ``{layer: w_l}``; 1 for layers not given.
        smooth: softmax smoothing of the activations (Wang et al., 2021): False, True or a
            temperature; must match the one the targets were made with.
    """
    weights = weights or {}
    f = smoother(smooth)
    targets = dict(targets)

    def fn(rec, image):
        return sum(weights.get(name, 1.0) * layer_style_loss(f(rec[name]), g)
                   for name, g in targets.items())
    return Objective(fn, set(targets), f"style({', '.join(targets)})")


def _weights(model, layers, weights):
    """Style layers as an ordered ``{layer: weight}`` from a list, a dict or the preset."""
    if layers is None:
        chosen = preset(model)["style"]
    elif isinstance(layers, str):
        chosen = {layers: 1.0}
    elif isinstance(layers, dict):
        chosen = dict(layers)
    else:
        chosen = dict.fromkeys(layers, 1.0)
        base = preset(model)["style"]
        chosen.update({k: base[k] for k in chosen if k in base})
    if weights is not None:
        chosen.update(weights)
    if not chosen:
        raise ValueError("Choose at least one style layer.")
    for name in chosen:
        get_layer(model, name)  # LayerError with suggestions, before any work
    return chosen


def layers_up_to(model, deepest):
    """The preset style layers of ``model`` up to and including ``deepest``.

    ``deepest`` must be one of them; raises ``ValueError`` naming the valid choices.
    """
    names = list(preset(model)["style"])
    if deepest not in names:
        model_name = getattr(model, "name", "the model")
        raise ValueError(f"{deepest!r} is not a style layer of {model_name}: "
                         f"choose one of {', '.join(names)}.")
    return names[:names.index(deepest) + 1]


# ---- texture synthesis ---------------------------------------------------------------------

@dataclass
class StyleResult:
    """What ``synthesize_texture`` and ``style_transfer`` return (both match Gram matrices).

    Attributes:
        image: (1, 3, H, W) in [0, 1], detached.
        history: total loss per step.
        style_start, style_end: the (weighted) Gram loss at the start and at the end.
        content_start, content_end: the content feature distance (style transfer only).
        steps: optimizer steps run (all resolutions together).
        interrupted: stopped by KeyboardInterrupt.
    """
    image: torch.Tensor
    history: list = field(default_factory=list)
    style_start: float = float("nan")
    style_end: float = float("nan")
    content_start: float = float("nan")
    content_end: float = float("nan")
    steps: int = 0
    interrupted: bool = False

    @property
    def style_ratio(self):
        """How many times the style (Gram) loss fell: start / end."""
        return self.style_start / max(self.style_end, 1e-30)


def _size(size):
    if isinstance(size, int):
        return size, size
    h, w = (int(s) for s in size)
    return h, w


def _adam_lr(optimizer, lr, param):
    """Adam on pixels needs a smaller step (0.02) than on Fourier coefficients; the other
    optimizers take ``optimize.DEFAULT_LR`` (L-BFGS: 1)."""
    check_optimizer(optimizer)
    if lr is None and optimizer == "adam" and param == "pixel":
        return 0.02
    return lr


def synthesize_texture(model, sample, layers=None, weights=None, size=None, steps=80,
                       optimizer="lbfgs", lr=None, smooth=None, tv_strength=None, param="fourier",
                       sd=0.1, seed=0, progress=False, callback=None, every=10):
    """Texture synthesis from noise by matching Gram matrices (Gatys et al., 2015).

    Args:
        model: any model from ``helpers.models`` (its ``name`` picks the preset layers).
        sample: (3, h, w) texture in [0, 1].
        layers: style layers (list, or ``{layer: weight}``); the preset by default.
        weights: ``{layer: weight}`` overriding single weights.
        size: output side or (H, W); may be larger than the sample (default: the sample's).
        steps: optimizer steps (L-BFGS: one function evaluation each).
        optimizer: ``"lbfgs"``, ``"adam"`` (or any name of ``optimize.OPTIMIZERS``).
        smooth: softmax smoothing (Wang et al., 2021); the preset's choice by default.
        tv_strength: total-variation penalty (``objectives.tv``); the preset's by default.
        param: ``"fourier"`` (decorrelated colours, 1/f-scaled spectrum, Olah et al. 2017: the
            default -- with EfficientNet-Lite0, pixels end as fine noise with the right Gram
            matrices) or ``"pixel"`` (Gatys et al.'s original).
        sd: noise around grey at the start (pixel parameterization).
    Returns:
        ``StyleResult``; ``style_start``/``style_end`` is the Gram loss from noise to the end.
    """
    sample = as_batch(sample)
    chosen = _weights(model, layers, weights)
    p = preset(model)
    smooth = p["smooth"] if smooth is None else smooth
    smoother(smooth)  # validate before any work
    lr = _adam_lr(optimizer, lr, param)
    tv_strength = p["tv"] if tv_strength is None else tv_strength
    h, w = _size(size) if size is not None else tuple(sample.shape[-2:])
    dev = model_device(model)
    targets = style_targets(model, sample.to(dev), chosen, smooth)
    gram_obj = style_loss(targets, chosen, smooth)
    objective = gram_obj + tv(tv_strength) if tv_strength else gram_obj
    start_param = image_param(param, (h, w), sd=sd if param == "pixel" else None, seed=seed)
    start = evaluate(model, gram_obj, start_param().detach().to(dev))
    with small_image_threads(h, w):
        res = optimize(model, start_param, objective, transforms=[channels_last], steps=steps,
                       optimizer=optimizer, lr=lr, progress=progress,
                       callback=callback, every=every, seed=seed)
    return StyleResult(res.image, res.history, start, evaluate(model, gram_obj, res.image),
                       steps=res.steps, interrupted=res.interrupted)


# ---- style transfer ------------------------------------------------------------------------

def scale_style(style, side):
    """The style image as a square of ``side`` pixels (centre crop, antialiased resize).

    A style image shown larger than the content (``side`` > content size) gives larger
    brush strokes: the network's receptive fields cover a smaller part of it.
    """
    return center_crop_resize(as_batch(style)[0], max(16, round(side)))[None]


def style_transfer(model, content, style, style_weight=10.0, content_weight=1.0,
                   content_layer=None, style_layers=None, style_scale=1.0, tv_strength=None,
                   init="content", optimizer="lbfgs", lr=None, steps=60, scales=1,
                   smooth=None, param="fourier", seed=0, progress=False, callback=None,
                   every=10):
    """Neural style transfer (Gatys et al., 2016), optionally coarse to fine.

    Minimizes ``content_weight * d(content) + style_weight * sum_l w_l E_l + tv`` where
    ``d`` is the relative feature distance ``||phi(x) - phi(c)||^2 / ||phi(c)||^2`` at
    ``content_layer`` and ``E_l`` the Gram loss of ``layer_style_loss``.

    Args:
        model: any model from ``helpers.models``.
        content: (3, H, W) photo in [0, 1]; the output has its size.
        style: (3, h, w) style image in [0, 1], any size.
        style_weight: weight of the style term (the trade-off of Gatys et al., Fig. 3).
        content_layer, style_layers: layer names (style: list or ``{layer: weight}``);
            the model's preset by default.
        style_scale: the style image is resized to ``style_scale * H`` pixels: > 1 gives
            larger patterns, < 1 smaller ones.
        tv_strength: total-variation penalty; the preset's by default.
        init: ``"content"`` (start from the photo) or ``"noise"``.
        optimizer: ``"lbfgs"``, ``"adam"`` (or any name of ``optimize.OPTIMIZERS``).
        steps: optimizer steps in all, split evenly over the resolutions.
        scales: number of resolutions, each twice the previous, ending at (H, W); the result
            of one initialises the next.
        smooth: softmax smoothing of style and content activations (Wang et al., 2021).
        param: ``"fourier"`` (default: cleaner, flatter colours with EfficientNet-Lite0; the
            start reproduces the photo exactly) or ``"pixel"`` (Gatys et al.'s original).
    Returns:
        ``StyleResult`` with ``style_start/end`` and ``content_start/end`` measured at
        full resolution on the initial image and on the result.
    """
    content = as_batch(content)
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}.")
    if int(scales) < 1 or int(steps) < 0 or style_scale <= 0:
        raise ValueError(f"Need scales >= 1, steps >= 0 and style_scale > 0 (got scales={scales}, "
                         f"steps={steps}, style_scale={style_scale}).")
    check_strength(style_weight, "style_weight")
    check_strength(content_weight, "content_weight")
    p = preset(model)
    image_param(param, (16, 16))  # validate before any work
    chosen = _weights(model, style_layers, None)
    content_layer = content_layer or p["content"]
    get_layer(model, content_layer)
    smooth = p["smooth"] if smooth is None else smooth
    smoother(smooth)
    tv_strength = p["tv"] if tv_strength is None else tv_strength
    lr = _adam_lr(optimizer, lr, param)
    dev = model_device(model)
    content = content.to(dev)
    style = as_batch(style, dev)
    H, W = content.shape[-2:]
    scales = int(scales)
    sizes = [(max(16, H >> k), max(16, W >> k)) for k in reversed(range(scales))]
    per_stage = [steps // scales + (1 if i < steps % scales else 0) for i in range(scales)]

    def objectives(size):
        c = resize(content, size)
        s = scale_style(style, style_scale * size[0])
        target = activations(model, c, [content_layer])[content_layer]
        content_obj = feature_distance(content_layer, target, smooth)
        style_obj = style_loss(style_targets(model, s, chosen, smooth), chosen, smooth)
        return content_obj, style_obj

    image = None
    history, run = [], 0
    interrupted = False
    gen = torch.Generator().manual_seed(seed)
    for size, n in zip(sizes, per_stage):
        content_obj, style_obj = objectives(size)
        objective = content_weight * content_obj + style_weight * style_obj
        if tv_strength:
            objective = objective + tv(tv_strength)
        if image is None:
            start = resize(content, size).cpu() if init == "content" else \
                (0.5 + 0.1 * torch.randn(1, 3, *size, generator=gen)).clamp(0, 1)
        else:
            start = resize(image, size).cpu()
        if image is None:
            first = start.to(dev)
        with small_image_threads(*size):
            res = optimize(model, image_param(param, start, seed=seed), objective,
                           transforms=[channels_last], steps=n, optimizer=optimizer, lr=lr,
                           progress=progress, callback=callback, every=every, seed=seed)
        image, run = res.image, run + res.steps
        history += res.history
        if res.interrupted:
            interrupted = True
            break
    if sizes[-1] != (H, W) or image is None or tuple(image.shape[-2:]) != (H, W):
        content_obj, style_obj = objectives((H, W))  # stopped early: score at full size
    first = resize(first, (H, W))
    image = resize(image, (H, W))
    style_start, content_start = evaluate(model, [style_obj, content_obj], first)
    style_end, content_end = evaluate(model, [style_obj, content_obj], image)
    return StyleResult(image, history, style_start=style_start, style_end=style_end,
                       content_start=content_start, content_end=content_end,
                       steps=run, interrupted=interrupted)


__all__ = [
    "PRESETS",
    "RESIDUAL_LAYERS",
    "RESIDUAL_TEMPERATURE",
    "StyleResult",
    "gram",
    "layer_style_loss",
    "layers_up_to",
    "preset",
    "scale_style",
    "softmax_smooth",
    "style_loss",
    "style_targets",
    "style_transfer",
    "synthesize_texture",
]
