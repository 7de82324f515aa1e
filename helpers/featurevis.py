"""Activation maximization: images that excite a class or a neuron (notebook 08).

Class model visualization (Simonyan et al., 2014): gradient ascent on a
class's pre-softmax score with an L2 penalty. Yosinski et al. (2015) add
regularizers that keep the image natural: L2 decay, Gaussian blur every few
steps, and resetting pixels of small norm or small contribution. Each is an
argument here whose value 0 switches it off, so the notebook's switches and
sliders map one-to-one onto arguments. ``param="fourier"`` swaps all of them for Olah
et al.'s (Distill 2017) preconditioning: a 1/f-scaled Fourier spectrum in decorrelated
colours, seen through random pad/jitter/scale/rotate. Multifaceted visualization
(Nguyen et al., 2016) clusters the images of a data set that most excite the unit and
starts one optimization from each cluster's mean image; the diversity penalty (Olah et
al., 2017) gets several different images without data.
"""
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from . import objectives as obj
from . import regularizers as reg
from .checks import check_count
from .data import extract_features, load_dataset
from .device import model_device
from .hooks import activations, get_layer
from .images import as_batch
from .models import class_index, predict
from .optimize import frames_cache, optimize
from .params import fourier_image, pixel_image

OUTPUT = obj.OUTPUT
# The notebook's defaults, chosen on the offline model so that a class image usually reaches
# p >= 0.9 within ``steps`` at a size a laptop CPU optimizes in seconds.
DEFAULTS = dict(size=128, steps=64, lr=0.1, l2=0.0, decay=0.003, blur_sigma=0.7, blur_every=2,
                norm_pct=5.0, contrib_pct=10.0, jitter=4, param="pixel", diversity=60.0,
                diversity_layer="blocks.4")
REGULARIZERS = ("l2", "decay", "blur", "norm_clip", "contrib_clip", "jitter")
# What ``visualize(param=...)`` optimizes, and the label the notebook's switch shows.
PARAMETERIZATIONS = {"pixel": "pixels + Yosinski regularizers",
                     "fourier": "Fourier + decorrelated + transforms"}


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
              param=DEFAULTS["param"], batch=1, diversity=0.0,
              diversity_layer=DEFAULTS["diversity_layer"], progress=False, callback=None,
              retries=3, **regularizers):
    """Gradient ascent on the image for one class or neuron.

    Args:
        unit, layer, kind: what to maximize (see ``target_objective``).
        size: side of the square image (a noise start).
        start: optional initial image(s) (3, H, W) or (N, 3, H, W) in [0, 1] instead of noise.
        param: ``"pixel"`` (the pixels, with Yosinski's regularizers) or ``"fourier"`` (Olah et
            al.'s preconditioning: 1/f-scaled spectrum, decorrelated colours, seen through
            ``regularizers.standard_transforms``; the Yosinski post-steps do not apply).
        batch: images optimized together from a noise start (seeds differ per image).
        diversity: strength of ``objectives.diversity(diversity_layer)`` (needs ``batch`` >= 2).
        retries: for a class from a noise start, how many times to start again from new
            noise (seed + 1, + 2, ...) when the model does not give the class p >= 0.9.
            The ascent sometimes drifts to another class; a new start usually does not.
        regularizers: ``l2``, ``decay``, ``blur_sigma``, ``blur_every``, ``norm_pct``,
            ``contrib_pct``, ``jitter`` (see ``regularization``; 0 switches one off).
    Returns:
        ``helpers.optimize.Result``: ``.image`` (N, 3, H, W) in [0, 1], ``.history`` of losses
        (the negative activation, plus the penalties used), ``.attempts`` (runs made).
    Raises:
        ValueError: an unknown ``param``, naming the valid ones.
    """
    if param not in PARAMETERIZATIONS:
        raise ValueError(f"Unknown parameterization {param!r}: choose one of "
                         f"{', '.join(map(repr, PARAMETERIZATIONS))}.")
    batch = check_count(batch, "batch")
    target = target_objective(model, unit, layer, kind)
    penalty, transforms, post = regularization(**{**_reg_defaults(), **regularizers})
    if param == "fourier":
        transforms, post = reg.standard_transforms(), []
    objective = target + penalty if penalty is not None else target
    if diversity:
        objective = objective + obj.diversity(diversity_layer, diversity)
    retry = start is None and batch == 1 and is_class_layer(model, layer)
    for attempt in range(1 + (int(retries) if retry else 0)):
        init = size if start is None else start
        if param == "pixel":
            image = pixel_image(init, sd=sd if start is None else None, batch=batch,
                                seed=seed + attempt)
        else:
            image = fourier_image(init, batch=batch, seed=seed + attempt)
        result = optimize(model, image, objective, transforms, post, steps=steps, lr=lr,
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


def unit_scores(model, data, unit, layer=OUTPUT, kind="neuron"):
    """How much each image of ``data`` excites the unit: (N,) float tensor.

    A class: its logit; a channel of a conv layer: its spatial mean (also for ``kind="neuron"``:
    the images that most excite a channel anywhere). Read with ``data.extract_features``, so
    the values are cached on disk with the data set's other features.
    """
    if is_class_layer(model, layer):
        logits = layer if layer not in (None, OUTPUT) else next(
            (n for n, m in reversed(list(model.named_modules()))
             if isinstance(m, torch.nn.Linear) and is_class_layer(model, n)), None)
        if logits is None:
            raise ValueError("This model has no linear layer of class scores to rank images by; "
                             "pass the name of a conv layer and a channel instead.")
        return extract_features(model, data, logits, progress=False)[:, class_index(model, unit)]
    return extract_features(model, data, layer, reduce="avg", progress=False)[:, int(unit)]


@torch.no_grad()
def mutual_similarity(model, images, layer="pool"):
    """Mean cosine similarity of the (spatially averaged) ``layer`` features of every pair.

    A distance between pictures as the network sees them: 1 - this is how far apart a set
    of facets (or of restarts) is.
    Args:
        images: (N, 3, H, W) in [0, 1], N >= 2.
    """
    acts = activations(model, images, [layer])[layer]
    f = F.normalize(acts.flatten(2).mean(-1) if acts.dim() > 2 else acts, dim=1)
    cos, n = f @ f.T, len(f)
    return ((cos.sum() - cos.diagonal().sum()) / (n * (n - 1))).item()


@torch.no_grad()
def thumbnail_distance(images, size=16):
    """Mean RMS distance between every pair of images shrunk to ``size`` px: how different
    their layout and colours look (fine texture averages out). Images (N, 3, H, W), N >= 2."""
    t = F.adaptive_avg_pool2d(images.float(), size).flatten(1)
    d, n = torch.cdist(t, t) / t.shape[1] ** 0.5, len(t)
    return (d.sum() / (n * (n - 1))).item()


@torch.no_grad()
def batch_gram_similarity(model, images, layer=DEFAULTS["diversity_layer"]):
    """``objectives.gram_similarity`` of ``layer`` for a batch: what the diversity term lowers."""
    return obj.gram_similarity(activations(model, images, [layer])[layer]).item()


@dataclass
class Facets:
    """What ``multifaceted`` returns.

    Attributes:
        images: (k, 3, H, W) facets in [0, 1], one per cluster, largest cluster first.
        starts: (k, 3, H, W) the cluster mean images the ascent started from.
        clusters: k index tensors into ``data``, each sorted by decreasing score.
        scores: (N,) the unit's activation for every image of ``data``.
        data: the ``ImageSet`` the top images came from.
    """
    images: torch.Tensor
    starts: torch.Tensor
    clusters: list
    scores: torch.Tensor
    data: object


def facet_clusters(model, data, unit, layer=OUTPUT, kind="neuron", top=24, k=3,
                   feature_layer="pool", seed=0):
    """Nguyen et al.'s first step: the ``top`` images that most excite the unit, in k clusters.

    The images are clustered by k-means on their (L2-normalized) ``feature_layer`` features
    from ``data.extract_features`` (the notebook-02 extractor, cached on disk).
    Returns:
        (list of k index tensors into ``data``, largest cluster first and each sorted by
        decreasing score; the (N,) scores).
    """
    from sklearn.cluster import KMeans
    if not 1 <= k <= top <= len(data):
        raise ValueError(f"Need 1 <= k <= top <= {len(data)} images, got k={k}, top={top}.")
    scores = unit_scores(model, data, unit, layer, kind)
    best = scores.argsort(descending=True)[:top]
    feats = F.normalize(extract_features(model, data, feature_layer, progress=False)[best], dim=1)
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(feats.numpy())
    clusters = [best[torch.as_tensor(labels == c)] for c in range(k)]  # best is score-sorted
    return sorted(clusters, key=len, reverse=True), scores


# The facets' ascent: preconditioned, half the usual step and 48 steps, so the start's layout
# and colours survive; restarts from noise compared with facets use the same settings.
FACET_SETTINGS = dict(param="fourier", lr=0.05, steps=48)


def multifaceted(model, unit, layer=OUTPUT, kind="neuron", data=None, top=24, k=3,
                 size=DEFAULTS["size"], seed=0, **settings):
    """Multifaceted feature visualization (Nguyen, Yosinski & Clune, 2016).

    Cluster the images of ``data`` that most excite the unit (``facet_clusters``), then run
    ``visualize`` from each cluster's mean image: each start lies in a different basin, so
    each ascent ends on a different facet of the same unit.
    Args:
        data: an ``ImageSet`` (default: ``load_dataset("photos")``, notebook 02's set).
        settings: arguments of ``visualize`` (default ``FACET_SETTINGS``).
    Returns:
        ``Facets``.
    """
    data = load_dataset("photos") if data is None else data
    clusters, scores = facet_clusters(model, data, unit, layer, kind, top, k, seed=seed)
    starts = F.interpolate(torch.stack([data.images[c].mean(0) for c in clusters]),
                           size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    result = visualize(model, unit, layer, kind, start=starts, seed=seed,
                       **{**FACET_SETTINGS, **settings})
    return Facets(result.image, starts, clusters, scores, data)


# ---- figures for the notebook (pure, cached: moving a slider back is instant) -------------

def _visualized(model, unit, layer=OUTPUT, kind="neuron", **settings):
    """``visualize`` for the figures, cached: two figures of the same setting share one run."""
    return _cached_run(model, unit, layer, kind,
                       tuple(sorted({"param": DEFAULTS["param"], **settings}.items())))


@frames_cache(maxsize=64)
def _cached_run(model, unit, layer, kind, settings):
    return visualize(model, unit, layer, kind, **dict(settings))

def _title(model, result, unit, layer, kind):
    if is_class_layer(model, layer):
        (i, name, p), = predict(model, result.image[:1], k=1)[0][:1]
        again = f", start {result.attempts}" if getattr(result, "attempts", 1) > 1 else ""
        return f"{model.classes[class_index(model, unit)]}\nmodel says {name} ({p:.2f}{again})"
    return f"{layer} #{unit} ({kind})"


@frames_cache(maxsize=32)
def visualization_figure(model, unit, layer=OUTPUT, kind="neuron", **settings):
    """The optimized image beside its activation curve."""
    result = _visualized(model, unit, layer, kind, **settings)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(7, 3.2))
    ax0.imshow(result.image[0].permute(1, 2, 0).cpu().numpy())
    param = settings.get("param", DEFAULTS["param"])
    ax0.set_title(_title(model, result, unit, layer, kind) +
                  ("" if param == "pixel" else f"\n{PARAMETERIZATIONS[param]}"), fontsize=9)
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


@frames_cache(maxsize=16)
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
        # Cached per setting: toggling a switch reuses the runs the last figure shares with it.
        r = _visualized(model, unit, layer, kind, size=size, steps=steps, lr=lr, seed=seed,
                        **ablation_settings(sw))
        images.append(r.image[0])
        act = activation(model, r.image, unit, layer, kind)[0]
        titles.append(f"{label}\nact {act:.1f}")
    return _grid(images, titles, f"{_unit_name(model, unit, layer)}: each regularizer toggled")


def _grid(images, titles, title):
    from .plotting import show_images
    return show_images(images, titles=titles, ncols=min(4, len(images)), size=2.3, title=title)


def _unit_name(model, unit, layer):
    return model.classes[class_index(model, unit)] if is_class_layer(model, layer) else \
        f"{layer} #{unit}"


def multifaceted_figure(model, facets, unit, layer=OUTPUT, examples=3):
    """One row per facet: the cluster's mean image (the start), the facet, real images of it.

    Args:
        facets: what ``multifaceted`` returned for this ``unit`` and ``layer``.
    """
    k, cols = len(facets.clusters), 2 + examples
    fig, axes = plt.subplots(k, cols, figsize=(1.9 * cols, 2.1 * k), squeeze=False)
    labels = predict(model, facets.images, k=1) if is_class_layer(model, layer) else None
    for r, cluster in enumerate(facets.clusters):
        said = f"\n{labels[r][0][1][:14]} {labels[r][0][2]:.2f}" if labels else ""
        row = [(facets.starts[r], f"start: mean of {len(cluster)}"),
               (facets.images[r], f"facet {r + 1}{said}")]
        for i in cluster[:examples]:
            source = facets.data.classes[facets.data.labels[i]]
            row.append((facets.data.images[i], f"{source} crop\nact {facets.scores[i]:.1f}"))
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(row):
                ax.imshow(row[c][0].permute(1, 2, 0).cpu().numpy())
                ax.set_title(row[c][1], fontsize=8)
    top = sum(len(c) for c in facets.clusters)
    fig.suptitle(f"Facets of '{_unit_name(model, unit, layer)}': {k} clusters of its top {top} "
                 f"images")
    fig.tight_layout()
    plt.close(fig)
    return fig


def batches_figure(model, runs, unit, layer=OUTPUT, kind="neuron"):
    """One row per batch of images (e.g. without and with the diversity penalty).

    Args:
        runs: dict row label -> (N, 3, H, W) images in [0, 1].
    """
    images, titles = [], []
    for label, batch in runs.items():
        for a, im in zip(activation(model, batch, unit, layer, kind), batch):
            images.append(im)
            titles.append(f"{label}\nact {a:.1f}")
    from .plotting import show_images
    return show_images(images, titles=titles, ncols=max(len(b) for b in runs.values()),
                       size=2.1, title=_unit_name(model, unit, layer))


@frames_cache(maxsize=8)
def preconditioning_figure(model, units=("flamingo",), layer=OUTPUT, kind="neuron", **settings):
    """Each unit twice: pixels with Yosinski's regularizers, then Olah et al.'s preconditioning."""
    images, titles = [], []
    for unit in units:
        for param, label in PARAMETERIZATIONS.items():
            r = _visualized(model, unit, layer, kind, param=param, **settings)
            images.append(r.image[0])
            titles.append(f"{label}\n{_title(model, r, unit, layer, kind)}")
    from .plotting import show_images
    return show_images(images, titles=titles, ncols=2, size=3.0)
