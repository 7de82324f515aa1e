"""Figures of notebooks 05-07: occlusion, saliency and SmoothGrad, guided backprop, sanity check.

Each ``*_figure`` function returns a closed matplotlib Figure, so a notebook cell
shows it and an "Explore" panel calls the same function with the slider values.
The maps behind the figures are cached per setting (photo name, class, window,
rule...): a slider moved back to a value already seen redraws at once.
Photos are given by name (see ``helpers.images.PHOTOS``) at the model's input size.
"""
import functools

import matplotlib.pyplot as plt
import torch

from .attribution import (FILLS, channels_by_activation, clip_map, gradient_image,
                          guided_backprop, occlusion, occlusion_baseline, saliency)
from .device import model_device
from .hooks import activations
from .images import as_batch, load_image, to_numpy
from .models import class_index, predict
from .plotting import finish, overlay, signed_map


def _size(model, size):
    return size or getattr(model, "input_size", 224)


def _class_name(model, target):
    return model.classes[target] if isinstance(target, int) else target


def _top_class(model, photo, size=None):
    return predict(model, load_image(photo, _size(model, size)), k=1)[0][0][0]


# --------------------------------------------------------------------------- occlusion (05)
@functools.lru_cache(maxsize=64)
def probabilities(model, photo, size=None):
    """Class probabilities (num_classes,) of the photo ``photo``, on the CPU."""
    image = load_image(photo, _size(model, size))
    with torch.inference_mode():
        return model(as_batch(image, model_device(model))).softmax(-1)[0].cpu()


@functools.lru_cache(maxsize=64)
def occlusion_map(model, photo, target, window=32, stride=16, fill="zero", size=None):
    """``attribution.occlusion`` of a photo by name, cached per setting: (H, W) on the CPU."""
    image = load_image(photo, _size(model, size))
    return occlusion(model, image, target, window=window, stride=stride, fill=fill).cpu()


def occlusion_figure(model, photo="coffee", target=None, window=32, stride=16, fill="zero",
                     size=None):
    """Photo, map of the probability drop, and the positive part over the photo.

    Args:
        target: class index or name (a name that matches no single class is reported in
            the figure, and the predicted class is shown); None = the predicted class.
    """
    probs, note = probabilities(model, photo, size), ""
    if isinstance(target, str):
        try:
            target = class_index(model, target)
        except ValueError as err:
            target, note = None, str(err)
    target = int(probs.argmax()) if target is None else int(target)
    heat = occlusion_map(model, photo, target, window, stride, fill, size)
    image = load_image(photo, _size(model, size))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
    axes[0].imshow(to_numpy(image))
    axes[0].set_title(f"{model.classes[target]}: p = {probs[target]:.2f}", fontsize=10)
    im = signed_map(axes[1], heat)
    v = im.get_clim()[1]
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    axes[1].set_title(f"drop in p (window {window}, stride {stride}, {fill})", fontsize=10)
    overlay(axes[2], image, heat.clamp(min=0) / v, alpha=0.55)
    axes[2].set_title("where hiding hurts", fontsize=10)
    for ax in axes:
        ax.axis("off")
    if note:
        fig.suptitle(note, fontsize=9, color="firebrick")
    return finish(fig)


def fills_figure(model, photo="coffee", window=32, stride=16, size=None):
    """Top: one window of each fill in ``FILLS``; bottom: the occlusion maps they give."""
    image = load_image(photo, _size(model, size))
    target = int(probabilities(model, photo, size).argmax())
    fig, axes = plt.subplots(2, len(FILLS), figsize=(3.3 * len(FILLS), 6.4))
    y = x = image.shape[-1] // 2 - window // 2
    for col, fill in enumerate(FILLS):
        hole = image.clone()
        patch = occlusion_baseline(image, fill, window)[:, y:y + window, x:x + window]
        hole[:, y:y + window, x:x + window] = patch
        axes[0, col].imshow(to_numpy(hole))
        axes[0, col].set_title(f"fill = {fill}", fontsize=10)
        heat = occlusion_map(model, photo, target, window, stride, fill, size)
        signed_map(axes[1, col], heat)
        axes[1, col].set_title(f"drop: {heat.min():+.2f} .. {heat.max():+.2f}", fontsize=10)
    for ax in axes.flat:
        ax.axis("off")
    return finish(fig)


def class_occlusion_figure(model, photo="chelsea", k=3, window=32, stride=16, fill="mean",
                           size=None):
    """The photo and the occlusion maps of its top ``k`` classes, on one colour scale."""
    image = load_image(photo, _size(model, size))
    top = [i for i, _, _ in predict(model, image, k=k)[0]]
    maps = [occlusion_map(model, photo, t, window, stride, fill, size) for t in top]
    v = max(float(m.abs().max()) for m in maps)
    fig, axes = plt.subplots(1, k + 1, figsize=(13 * (k + 1) / 4, 3.5))
    axes[0].imshow(to_numpy(image))
    probs = probabilities(model, photo, size)
    for ax, t, heat in zip(axes[1:], top, maps):
        signed_map(ax, heat, v)
        ax.set_title(f"{model.classes[t]} (p = {probs[t]:.2f})", fontsize=10)
    for ax in axes:
        ax.axis("off")
    return finish(fig)


# --------------------------------------------------------------------------- saliency (06)
@functools.lru_cache(maxsize=64)
def saliency_map(model, photo, target=None, noise=0.0, samples=1, size=None):
    """``attribution.saliency`` (SmoothGrad when ``noise > 0``) of a photo by name: (H, W), CPU."""
    image = load_image(photo, _size(model, size))
    return saliency(model, image, target, noise=noise, samples=samples).cpu()


def saliency_figure(model, photo="chelsea", targets=(None,), noise=0.0, samples=1, size=None):
    """The photo, then one saliency map per target class (None = the predicted class)."""
    fig, axes = plt.subplots(1, 1 + len(targets), figsize=(3.4 * (1 + len(targets)), 3.6))
    axes[0].imshow(to_numpy(load_image(photo, _size(model, size))))
    axes[0].set_title(photo, fontsize=10)
    kind = f"SmoothGrad {noise:.2f} x {samples}" if noise else "gradient"
    for ax, t in zip(axes[1:], targets):
        t = _top_class(model, photo, size) if t is None else class_index(model, t)
        ax.imshow(clip_map(saliency_map(model, photo, t, noise, samples, size)), cmap="gray")
        ax.set_title(f"{model.classes[t]} ({kind})", fontsize=10)
    for ax in axes:
        ax.axis("off")
    return finish(fig)


def smoothgrad_figure(model, photo="chelsea", target=None, noises=(0.0, 0.1, 0.25, 0.5),
                      samples=12, size=None):
    """SmoothGrad maps of one class for several noise levels (noise 0: the plain gradient)."""
    target = _top_class(model, photo, size) if target is None else class_index(model, target)
    fig, axes = plt.subplots(1, len(noises), figsize=(3.2 * len(noises), 3.4))
    for ax, s in zip(axes, noises):
        n = samples if s else 1
        ax.imshow(clip_map(saliency_map(model, photo, target, s, n, size)), cmap="gray")
        ax.set_title(f"noise {s:.2f}, {n} sample(s)", fontsize=9)
        ax.axis("off")
    return finish(fig)


def gradient_vs_smoothgrad_figure(model, photo="chelsea", target=None, noise=0.25, samples=12,
                                  size=None):
    """The photo, its plain gradient map and its SmoothGrad map, for the same class."""
    target = _top_class(model, photo, size) if target is None else class_index(model, target)
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.7))
    axes[0].imshow(to_numpy(load_image(photo, _size(model, size))))
    axes[0].set_title(f"{photo}: {model.classes[target]}", fontsize=10)
    axes[1].imshow(clip_map(saliency_map(model, photo, target, size=size)), cmap="gray")
    axes[1].set_title("gradient", fontsize=10)
    smooth = saliency_map(model, photo, target, noise, samples if noise else 1, size)
    axes[2].imshow(clip_map(smooth), cmap="gray")
    axes[2].set_title(f"SmoothGrad: noise {noise:.2f}, {samples} samples", fontsize=10)
    for ax in axes:
        ax.axis("off")
    return finish(fig)


# --------------------------------------------------------------------------- guided backprop (07)
@functools.lru_cache(maxsize=128)
def backward_map(model, photo, target=None, rule="guided", size=None):
    """``attribution.guided_backprop`` with ``rule`` of a photo by name: (3, H, W) on the CPU.

    ``target``: a class (index or name) or a neuron ``(layer, channel)``.
    """
    image = load_image(photo, _size(model, size))
    return guided_backprop(model, image, target, rule=rule).cpu()


@functools.lru_cache(maxsize=32)
def ranked_channels(model, photo, layer, size=None):
    """``attribution.channels_by_activation`` of a photo by name: [(channel, max response)]."""
    return channels_by_activation(model, load_image(photo, _size(model, size)), layer)


@functools.lru_cache(maxsize=32)
def layer_activation(model, photo, layer, size=None):
    """The activation (C, h, w) of ``layer`` for a photo by name, on the CPU."""
    with torch.inference_mode():
        return activations(model, load_image(photo, _size(model, size)), [layer])[layer][0].cpu()


def rules_figure(model, photo="chelsea", target=None, size=None):
    """The photo, then its gradient, deconvnet and guided backprop maps for one class or neuron."""
    target = _top_class(model, photo, size) if target is None else target
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    axes[0].imshow(to_numpy(load_image(photo, _size(model, size))))
    axes[0].set_title(f"{photo}: {_class_name(model, target)}", fontsize=10)
    for ax, rule in zip(axes[1:], ["gradient", "deconvnet", "guided"]):
        ax.imshow(gradient_image(backward_map(model, photo, target, rule, size)).permute(1, 2, 0))
        ax.set_title(rule, fontsize=10)
    for ax in axes:
        ax.axis("off")
    return finish(fig)


def neurons_figure(model, photo="chelsea", layer="blocks.10.act1", k=4, size=None):
    """Guided backprop of the ``k`` channels of ``layer`` that respond most to the photo."""
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 3.5))
    for ax, (ch, value) in zip(axes, ranked_channels(model, photo, layer, size)[:k]):
        grad = backward_map(model, photo, (layer, ch), "guided", size)
        ax.imshow(gradient_image(grad).permute(1, 2, 0))
        ax.set_title(f"{layer} ch {ch} (max {value:.1f})", fontsize=9)
        ax.axis("off")
    return finish(fig)


def neuron_figure(model, photo="chelsea", layer="blocks.10.act1", rank=0, size=None):
    """One channel (by response rank): its activation over the photo, guided and deconvnet maps."""
    ch, value = ranked_channels(model, photo, layer, size)[rank]
    image = load_image(photo, _size(model, size))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    overlay(axes[0], image, layer_activation(model, photo, layer, size)[ch], alpha=0.55)
    axes[0].set_title(f"{layer} channel {ch}: rank {rank}, max {value:.2f}", fontsize=9)
    for ax, rule in zip(axes[1:], ["guided", "deconvnet"]):
        grad = backward_map(model, photo, (layer, ch), rule, size)
        ax.imshow(gradient_image(grad).permute(1, 2, 0))
        ax.set_title(rule, fontsize=10)
        ax.axis("off")
    return finish(fig)


def randomization_figure(check):
    """Maps of ``cascading_randomization`` (methods x steps), with each map's rank correlation."""
    methods, steps = list(check["maps"]), check["steps"]
    fig, axes = plt.subplots(len(methods), len(steps), squeeze=False,
                             figsize=(1.9 * len(steps), 2.5 * len(methods)))
    for r, method in enumerate(methods):
        for c, step in enumerate(steps):
            ax = axes[r, c]
            ax.imshow(clip_map(check["maps"][method][c]), cmap="gray")
            if r == 0:
                ax.set_title(f"{'up to ' if c else ''}{step}", fontsize=8)
            ax.set_xlabel(f"rho = {check['similarity'][method][c]:.2f}", fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
        axes[r, 0].set_ylabel(method, fontsize=9)
    return finish(fig, "layers re-initialised from the top down (left to right)", fontsize=10)


__all__ = [
    "backward_map",
    "class_occlusion_figure",
    "fills_figure",
    "gradient_vs_smoothgrad_figure",
    "layer_activation",
    "neuron_figure",
    "neurons_figure",
    "occlusion_figure",
    "occlusion_map",
    "probabilities",
    "randomization_figure",
    "ranked_channels",
    "rules_figure",
    "saliency_figure",
    "saliency_map",
    "smoothgrad_figure",
]
