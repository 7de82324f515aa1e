"""Figures of notebooks 05-07: occlusion, saliency, SmoothGrad and integrated gradients, guided
backprop and Grad-CAM, sanity check.

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
from .gradcam import cam_layer, cam_layers, grad_cam, guided_grad_cam
from .hooks import activations
from .images import as_batch, load_image, to_numpy
from .integrated_gradients import (ig_baseline, integrated_gradients, path_points, path_scores,
                                   score_difference)
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


# --------------------------------------------------------------------------- integrated gradients (06)
def integrated_gradients_map(model, photo, target, steps=32, baseline="black", size=None):
    """``integrated_gradients.integrated_gradients`` of a photo by name: (3, H, W) on the CPU."""
    return _ig_map(model, photo, target, int(steps), baseline, size)  # one cache key per setting


@functools.lru_cache(maxsize=64)
def _ig_map(model, photo, target, steps, baseline, size):
    return integrated_gradients(model, load_image(photo, _size(model, size)), target, baseline, steps)


@functools.lru_cache(maxsize=64)
def score_gap(model, photo, target, baseline="black", size=None):
    """``S_y(photo) - S_y(baseline)`` for a photo by name: what the attributions add up to."""
    return score_difference(model, load_image(photo, _size(model, size)), target, baseline)


def integrated_gradients_figure(model, photo="chelsea", target=None, steps=32, baseline="black",
                                size=None):
    """Photo, baseline, |IG| summed over colours, and the signed sum with the completeness check."""
    target = _top_class(model, photo, size) if target is None else class_index(model, target)
    image = load_image(photo, _size(model, size))
    attr = integrated_gradients_map(model, photo, target, steps, baseline, size)
    fig, axes = plt.subplots(1, 4, figsize=(13.5, 3.8))
    axes[0].imshow(to_numpy(image))
    axes[0].set_title(f"{photo}: {model.classes[target]}", fontsize=10)
    axes[1].imshow(to_numpy(ig_baseline(image, baseline).clamp(0, 1)))
    axes[1].set_title(f"baseline: {baseline}", fontsize=10)
    axes[2].imshow(clip_map(attr.abs().sum(0)), cmap="gray")
    axes[2].set_title(f"|integrated gradients|, {steps} steps", fontsize=10)
    signed = attr.sum(0)
    signed_map(axes[3], signed, float(torch.quantile(signed.abs().flatten(), 0.99)))
    axes[3].set_title(f"signed: sum {float(attr.sum()):.2f}, S(x) - S(x') = "
                      f"{score_gap(model, photo, target, baseline, size):.2f}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    return finish(fig)


@functools.lru_cache(maxsize=32)
def score_path(model, photo, target, baseline="black", points=41, size=None):
    """``integrated_gradients.path_scores`` of a photo by name: (a, scores) on the CPU."""
    return path_scores(model, load_image(photo, _size(model, size)), target, baseline, points)


def ig_path_figure(model, photo="chelsea", target=None, baselines=("black", "blur"), steps=32,
                   points=41, size=None):
    """The class score on the path from each baseline to the photo; ticks: the ``steps`` nodes."""
    target = _top_class(model, photo, size) if target is None else class_index(model, target)
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for baseline in baselines:
        a, scores = score_path(model, photo, target, baseline, points, size)
        ax.plot(a.numpy(), scores.numpy(), marker=".", markersize=3, label=f"from {baseline}")
    nodes, _ = path_points(steps)
    ax.plot(nodes, [0] * len(nodes), "|", color="black", markersize=10,
            label=f"the {steps} points of the sum")
    ax.set_xlabel("a   (0 = baseline, 1 = photo)")
    ax.set_ylabel(f"score S of {model.classes[target]}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return finish(fig)


def saliency_methods_figure(model, photo="chelsea", target=None, noise=0.25, samples=12,
                            steps=32, baseline="black", size=None):
    """The photo and three maps of one class: gradient, SmoothGrad, integrated gradients."""
    target = _top_class(model, photo, size) if target is None else class_index(model, target)
    maps = [(saliency_map(model, photo, target, size=size), "gradient"),
            (saliency_map(model, photo, target, noise, samples, size), f"SmoothGrad {noise:.2f}"),
            (integrated_gradients_map(model, photo, target, steps, baseline, size).abs().sum(0),
             f"integrated gradients ({baseline})")]
    fig, axes = plt.subplots(1, 4, figsize=(13.5, 3.7))
    axes[0].imshow(to_numpy(load_image(photo, _size(model, size))))
    axes[0].set_title(f"{photo}: {model.classes[target]}", fontsize=10)
    for ax, (m, title) in zip(axes[1:], maps):
        ax.imshow(clip_map(m), cmap="gray")
        ax.set_title(title, fontsize=10)
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


# --------------------------------------------------------------------------- Grad-CAM (07)
@functools.lru_cache(maxsize=128)
def grad_cam_map(model, photo, target=None, layer=None, upsample=True, size=None):
    """``gradcam.grad_cam`` of a photo by name: (H, W), or the layer's (h, w), on the CPU."""
    return grad_cam(model, load_image(photo, _size(model, size)), target, layer, upsample)


@functools.lru_cache(maxsize=64)
def guided_grad_cam_map(model, photo, target=None, layer=None, size=None):
    """``gradcam.guided_grad_cam`` of a photo by name: (3, H, W) on the CPU."""
    return guided_grad_cam(model, load_image(photo, _size(model, size)), target, layer)


def grad_cam_figure(model, photo="chelsea", target=None, layer=None, size=None):
    """Grad-CAM over the photo, on the layer's own grid, then guided backprop and Guided Grad-CAM."""
    target = _top_class(model, photo, size) if target is None else class_index(model, target)
    layer = cam_layer(model, layer, _size(model, size))
    image = load_image(photo, _size(model, size))
    cam = grad_cam_map(model, photo, target, layer, True, size)
    coarse = grad_cam_map(model, photo, target, layer, False, size)
    fig, axes = plt.subplots(1, 4, figsize=(13.5, 3.8))
    overlay(axes[0], image, cam / cam.max().clamp_min(1e-12), alpha=0.5, cmap="inferno")
    axes[0].set_title(f"Grad-CAM: {model.classes[target]}", fontsize=10)
    axes[1].imshow(coarse, cmap="inferno", vmin=0)
    axes[1].set_title(f"{layer}: {coarse.shape[0]} x {coarse.shape[1]} grid", fontsize=10)
    guided = backward_map(model, photo, target, "guided", size)
    axes[2].imshow(gradient_image(guided).permute(1, 2, 0))
    axes[2].set_title("guided backprop", fontsize=10)
    both = guided_grad_cam_map(model, photo, target, layer, size)
    axes[3].imshow(gradient_image(both).permute(1, 2, 0))
    axes[3].set_title("Guided Grad-CAM", fontsize=10)
    for ax in axes:
        ax.axis("off")
    return finish(fig)


def grad_cam_layers_figure(model, photo="chelsea", target=None, layers=None, size=None):
    """Grad-CAM of one class at several layers (default: four from the middle to the end)."""
    target = _top_class(model, photo, size) if target is None else class_index(model, target)
    image = load_image(photo, _size(model, size))
    if layers is None:
        names = cam_layers(model, _size(model, size))
        layers = [names[i * (len(names) - 1) // 6] for i in (3, 4, 5, 6)]
    fig, axes = plt.subplots(1, len(layers), figsize=(3.3 * len(layers), 3.6))
    for ax, layer in zip(axes, layers):
        cam = grad_cam_map(model, photo, target, layer, True, size)
        coarse = grad_cam_map(model, photo, target, layer, False, size)
        overlay(ax, image, cam / cam.max().clamp_min(1e-12), alpha=0.5, cmap="inferno")
        ax.set_title(f"{model.classes[target]} at {layer} ({coarse.shape[0]} x {coarse.shape[1]})",
                     fontsize=10)
    return finish(fig)


def grad_cam_classes_figure(model, photo="astronaut", targets=None, layer=None, size=None):
    """The photo and Grad-CAM of several classes at one layer (default: its top 3 classes)."""
    image = load_image(photo, _size(model, size))
    targets = [i for i, _, _ in predict(model, image, k=3)[0]] if targets is None else \
        [class_index(model, t) for t in targets]
    layer = cam_layer(model, layer, _size(model, size))
    probs = probabilities(model, photo, size)
    fig, axes = plt.subplots(1, len(targets) + 1, figsize=(3.3 * (len(targets) + 1), 3.6))
    axes[0].imshow(to_numpy(image))
    axes[0].set_title(f"{photo}; Grad-CAM at {layer}", fontsize=10)
    axes[0].axis("off")
    for ax, t in zip(axes[1:], targets):
        cam = grad_cam_map(model, photo, t, layer, True, size)
        overlay(ax, image, cam / cam.max().clamp_min(1e-12), alpha=0.5, cmap="inferno")
        ax.set_title(f"{model.classes[t]} (p = {probs[t]:.2f})", fontsize=10)
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
    "grad_cam_classes_figure",
    "grad_cam_figure",
    "grad_cam_layers_figure",
    "grad_cam_map",
    "gradient_vs_smoothgrad_figure",
    "guided_grad_cam_map",
    "ig_path_figure",
    "integrated_gradients_figure",
    "integrated_gradients_map",
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
    "saliency_methods_figure",
    "score_gap",
    "score_path",
    "smoothgrad_figure",
]
