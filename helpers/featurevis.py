"""Activation maximization: images that excite a class or a neuron (notebook 08).

Class model visualization (Simonyan et al., 2014): gradient ascent on a
class's pre-softmax score with an L2 penalty. Yosinski et al. (2015) add
regularizers that keep the image natural: L2 decay, Gaussian blur every few
steps, and resetting pixels of small norm or small contribution. Each is an
argument here whose value 0 switches it off, so the notebook's switches and
sliders map one-to-one onto arguments. Multifaceted visualization (Nguyen et
al., 2016) starts the same optimization from different images.
"""
import functools

import matplotlib.pyplot as plt
import torch

from . import objectives as obj
from . import regularizers as reg
from .device import model_device
from .hooks import activations, get_layer
from .images import as_batch, load_image
from .models import class_index, predict
from .optimize import optimize
from .params import pixel_image

OUTPUT = obj.OUTPUT
# The notebook's defaults, chosen on the offline model so that a class image usually reaches
# p >= 0.9 within ``steps`` at a size a laptop CPU optimizes in seconds.
DEFAULTS = dict(size=128, steps=64, lr=0.1, l2=0.0, decay=0.003, blur_sigma=0.7, blur_every=2,
                norm_pct=5.0, contrib_pct=10.0, jitter=4)
REGULARIZERS = ("l2", "decay", "blur", "norm_clip", "contrib_clip", "jitter")


def is_class_layer(model, layer):
    """True for ``"output"`` and for a linear layer with one unit per class (the logits)."""
    if layer in (None, OUTPUT):
        return True
    module = get_layer(model, layer)
    return isinstance(module, torch.nn.Linear) and \
        module.out_features == len(getattr(model, "classes", ()))


def target_objective(model, unit, layer=OUTPUT, kind="neuron"):
    """The objective to maximize: a class score (``layer="output"``), a neuron or a channel.

    Args:
        unit: class index/name for ``layer="output"`` or the logits layer (``"fc"``), else a
            channel index.
        kind: ``"neuron"`` (the channel at the centre of the map) or ``"channel"`` (its mean).
    """
    if is_class_layer(model, layer):
        unit = class_index(model, unit)
        return obj.class_score(unit) if layer in (None, OUTPUT) else obj.neuron(layer, unit)
    if kind == "neuron":
        return obj.neuron(layer, unit)
    if kind == "channel":
        return obj.channel(layer, unit)
    raise ValueError(f"kind must be 'neuron' or 'channel', got {kind!r}.")


def regularization(l2=DEFAULTS["l2"], decay=DEFAULTS["decay"], blur_sigma=DEFAULTS["blur_sigma"],
                   blur_every=DEFAULTS["blur_every"], norm_pct=DEFAULTS["norm_pct"],
                   contrib_pct=DEFAULTS["contrib_pct"], jitter=DEFAULTS["jitter"]):
    """Split the regularizer settings into (penalty objective or None, transforms, post-steps).

    A value of 0 leaves a regularizer out.
    """
    penalty = obj.l2(l2) if l2 else None
    transforms = [reg.Jitter(jitter)] if jitter else []
    post = []
    if decay:
        post.append(reg.Decay(decay))
    if blur_sigma:
        post.append(reg.BlurEvery(blur_every, blur_sigma))
    if norm_pct:
        post.append(reg.ClipSmallNorm(norm_pct))
    if contrib_pct:
        post.append(reg.ClipSmallContribution(contrib_pct))
    return penalty, transforms, post


def visualize(model, unit, layer=OUTPUT, kind="neuron", size=DEFAULTS["size"],
              steps=DEFAULTS["steps"], lr=DEFAULTS["lr"], start=None, sd=0.05, seed=0,
              progress=False, callback=None, retries=3, **regularizers):
    """Gradient ascent on the image for one class or neuron, with Yosinski regularizers.

    Args:
        unit, layer, kind: what to maximize (see ``target_objective``).
        size: side of the square image (a noise start).
        start: optional initial image(s) (3, H, W) or (N, 3, H, W) in [0, 1] instead of noise.
        retries: for a class from a noise start, how many times to start again from new
            noise (seed + 1, + 2, ...) when the model does not give the class p >= 0.9.
            The ascent sometimes drifts to another class; a new start usually does not.
        regularizers: ``l2``, ``decay``, ``blur_sigma``, ``blur_every``, ``norm_pct``,
            ``contrib_pct``, ``jitter`` (see ``regularization``; 0 switches one off).
    Returns:
        ``helpers.optimize.Result``: ``.image`` (N, 3, H, W) in [0, 1], ``.history`` of losses
        (the negative activation, plus the L2 penalty when used), ``.attempts`` (runs made).
    """
    target = target_objective(model, unit, layer, kind)
    penalty, transforms, post = regularization(**{**_reg_defaults(), **regularizers})
    objective = target + penalty if penalty is not None else target
    retry = start is None and is_class_layer(model, layer)
    for attempt in range(1 + (int(retries) if retry else 0)):
        param = pixel_image(size if start is None else start,
                            sd=sd if start is None else None, seed=seed + attempt)
        result = optimize(model, param, objective, transforms, post, steps=steps, lr=lr,
                          callback=callback, progress=progress, seed=seed + attempt)
        result.attempts = attempt + 1
        if not retry or result.interrupted or result.stopped or \
                _class_probability(model, result.image, unit) >= 0.9:
            break
    return result


@torch.no_grad()
def _class_probability(model, image, unit):
    return torch.softmax(model(image[:1]), 1)[0, class_index(model, unit)].item()


def _reg_defaults():
    return {k: DEFAULTS[k] for k in ("l2", "decay", "blur_sigma", "blur_every", "norm_pct",
                                     "contrib_pct", "jitter")}


def activation(model, image, unit, layer=OUTPUT, kind="neuron"):
    """The maximized quantity (class logit, neuron or channel mean) for each image, as floats.

    Args:
        image: (3, H, W) or (N, 3, H, W) in [0, 1].
    Returns:
        list of N floats.
    """
    target = target_objective(model, unit, layer, kind)
    image = as_batch(image, model_device(model))
    acts = activations(model, image, sorted(target.layers))
    return [-target({k: v[i:i + 1] for k, v in acts.items()}, image[i:i + 1]).item()
            for i in range(len(image))]


def multifaceted_starts(size=DEFAULTS["size"], photos=("chelsea", "coffee", "rocket", "flower"),
                        blur=4.0):
    """Different starting images: blurred sample photos (Nguyen et al. start from blurred
    cluster means of training images; the idea is the same: a different start finds a
    different facet).

    Returns:
        (len(photos), 3, size, size) tensor in [0, 1].
    """
    imgs = torch.stack([load_image(p, size) for p in photos])
    return reg.gaussian_blur(imgs, blur).clamp(0, 1)


# ---- figures for the notebook (pure, cached: moving a slider back is instant) -------------

def _title(model, result, unit, layer, kind):
    if is_class_layer(model, layer):
        (i, name, p), = predict(model, result.image[:1], k=1)[0][:1]
        again = f", start {result.attempts}" if getattr(result, "attempts", 1) > 1 else ""
        return f"{model.classes[class_index(model, unit)]}\nmodel says {name} ({p:.2f}{again})"
    return f"{layer} #{unit} ({kind})"


@functools.lru_cache(maxsize=32)
def visualization_figure(model, unit, layer=OUTPUT, kind="neuron", **settings):
    """The optimized image beside its activation curve."""
    result = visualize(model, unit, layer, kind, **settings)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(7, 3.2))
    ax0.imshow(result.image[0].permute(1, 2, 0).cpu().numpy())
    ax0.set_title(_title(model, result, unit, layer, kind), fontsize=9)
    ax0.axis("off")
    ax1.plot([-h for h in result.history])
    ax1.set_xlabel("step")
    ax1.set_ylabel("objective (activation - penalties)")
    fig.tight_layout()
    plt.close(fig)
    return fig


# l2 is a mean over pixels, so it needs a large weight against a class logit (~30).
ABLATION_ARGS = {"l2": ("l2", 1000.0), "decay": ("decay", DEFAULTS["decay"]),
                 "blur": ("blur_sigma", DEFAULTS["blur_sigma"]),
                 "norm_clip": ("norm_pct", DEFAULTS["norm_pct"]),
                 "contrib_clip": ("contrib_pct", DEFAULTS["contrib_pct"]),
                 "jitter": ("jitter", DEFAULTS["jitter"])}


def ablation_settings(switches, strengths=None):
    """Keyword arguments of ``visualize`` for regularizers switched on/off.

    Args:
        switches: dict regularizer name (``REGULARIZERS``) -> bool.
        strengths: optional dict argument name -> value used when switched on.
    """
    strengths = strengths or {}
    kw = {}
    for name, on in switches.items():
        if name not in ABLATION_ARGS:
            raise ValueError(f"Unknown regularizer {name!r}; valid: {', '.join(ABLATION_ARGS)}.")
        arg, default = ABLATION_ARGS[name]
        kw[arg] = strengths.get(arg, default) if on else 0
    return kw


@functools.lru_cache(maxsize=16)
def ablation_figure(model, unit, layer=OUTPUT, kind="neuron", switches=(), size=96, steps=48,
                    lr=DEFAULTS["lr"], seed=0):
    """Same unit, same start: all chosen regularizers, then each regularizer toggled.

    Args:
        switches: tuple of (name, bool) pairs; names from ``REGULARIZERS``.
    """
    base = dict(switches) or {name: True for name in REGULARIZERS}
    variants = [("chosen set", base)]
    for name in base:
        flipped = dict(base, **{name: not base[name]})
        variants.append((f"{'without' if base[name] else 'with'} {name}", flipped))
    variants.append(("none", {name: False for name in base}))
    images, titles = [], []
    for label, sw in variants:
        r = visualize(model, unit, layer, kind, size=size, steps=steps, lr=lr, seed=seed,
                      **ablation_settings(sw))
        images.append(r.image[0])
        act = activation(model, r.image, unit, layer, kind)[0]
        titles.append(f"{label}\nact {act:.1f}")
    name = model.classes[class_index(model, unit)] if is_class_layer(model, layer) else \
        f"{layer} #{unit}"
    return _grid(images, titles, f"{name}: each regularizer toggled")


def _grid(images, titles, title):
    from .plotting import show_images
    return show_images(images, titles=titles, ncols=min(4, len(images)), size=2.3, title=title)


@functools.lru_cache(maxsize=8)
def multifaceted_figure(model, unit, size=DEFAULTS["size"], steps=DEFAULTS["steps"],
                        photos=("chelsea", "coffee", "rocket", "flower"), seed=0):
    """Several visualizations of one class, one per starting image (Nguyen et al., 2016)."""
    starts = multifaceted_starts(size, photos)
    result = visualize(model, unit, start=starts, size=size, steps=steps, seed=seed)
    preds = predict(model, result.image, k=1)
    titles = [f"from {p}\n{pr[0][1][:14]} {pr[0][2]:.2f}" for p, pr in zip(photos, preds)]
    images = list(starts) + list(result.image)
    titles = [f"start: {p}" for p in photos] + titles
    from .plotting import show_images
    return show_images(images, titles=titles, ncols=len(photos), size=2.3,
                       title=f"Facets of '{model.classes[class_index(model, unit)]}'")
