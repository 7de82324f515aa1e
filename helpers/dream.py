"""Deep dream: amplify whatever a layer already sees in a photo (Mordvintsev et al., 2015).

Gradient ascent on the mean squared activation of a layer (``layer_norm``),
with three tricks from the original: steps normalized by the mean absolute
gradient (so one step size fits every layer), random jitter (rolling the
image a few pixels each step, against grid artifacts), and octaves: the image
is processed from small to full size, and the detail added at one scale is
carried to the next, so patterns appear at several scales.
"""

import matplotlib.pyplot as plt
import torch

from .checks import check_count, check_strength
from .images import load_image, resize, to_numpy
from .models import min_input_size, model_input
from .objectives import layer_norm
from .optimize import frames_cache, optimize
from .params import pixel_image
from .regularizers import Jitter

DEFAULTS = dict(layer="blocks.8", steps=10, octaves=3, octave_scale=1.4, step_size=0.01,
                jitter=16, size=224)
MIN_OCTAVE = 16  # the smallest octave's side in pixels


def octave_sizes(height, width, octaves, scale, smallest=MIN_OCTAVE):
    """Image sizes from the smallest octave to the full size, ``scale`` apart (>= ``smallest``)."""
    check_count(octaves, "octaves", 1)
    check_strength(scale, "octave_scale", 1.0)
    return [(max(smallest, round(height / scale ** i)), max(smallest, round(width / scale ** i)))
            for i in reversed(range(int(octaves)))]


def deep_dream(model, image, layer=DEFAULTS["layer"], steps=DEFAULTS["steps"],
               octaves=DEFAULTS["octaves"], octave_scale=DEFAULTS["octave_scale"],
               step_size=DEFAULTS["step_size"], jitter=DEFAULTS["jitter"], seed=0,
               progress=False):
    """Dream a photo: amplify ``layer``'s activations, octave by octave.

    Args:
        image: (3, H, W) or (1, 3, H, W) in [0, 1].
        layer: name of the layer whose activations grow (early: strokes; late: eyes, dogs).
        steps: normalized gradient steps per octave.
        octaves: number of scales; ``octave_scale``: size ratio between scales.
        step_size: mean absolute change of a pixel per step (pixel units).
        jitter: largest random shift in pixels.
    Returns:
        (3, H, W) dreamed image in [0, 1].
    """
    base = model_input(model, image)
    check_count(steps, "steps", 1)
    check_strength(step_size, "step_size", 0.0)
    check_count(jitter, "jitter", 0)
    need = max(MIN_OCTAVE, min_input_size(model) or 1)
    if min(base.shape[-2:]) < need:
        raise ValueError(f"The image is {base.shape[-2]}x{base.shape[-1]} pixels: deep dream "
                         f"needs images of at least {need}x{need} pixels (its smallest octave).")
    objective = layer_norm(layer)
    objective.check(model)  # unknown layer: clear error before any work
    detail = None
    for size in octave_sizes(*base.shape[-2:], octaves, octave_scale, need):
        b = resize(base, size)
        detail = torch.zeros_like(b) if detail is None else resize(detail, size)
        result = optimize(model, pixel_image((b + detail).clamp(0, 1)), objective,
                          transforms=[Jitter(jitter)], steps=steps,
                          optimizer="normalized", lr=step_size, progress=progress, seed=seed)
        detail = result.image - b  # what the dream added at this scale
    return (base + detail).clamp(0, 1)[0]


@frames_cache(maxsize=32)
def dream_figure(model, photo="chelsea", layer=DEFAULTS["layer"], steps=DEFAULTS["steps"],
                 octaves=DEFAULTS["octaves"], octave_scale=DEFAULTS["octave_scale"],
                 step_size=DEFAULTS["step_size"], jitter=DEFAULTS["jitter"],
                 size=DEFAULTS["size"]):
    """The photo beside its dream (arguments as in ``deep_dream``; ``size``: photo side)."""
    image = load_image(photo, size)
    dream = deep_dream(model, image, layer, steps, octaves, octave_scale, step_size, jitter)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2))
    label = f"dream of {layer}\n{octaves} octaves x {steps} steps, jitter {jitter} px"
    for ax, img, title in zip(axes, (image, dream), (photo, label)):
        ax.imshow(to_numpy(img))
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig
