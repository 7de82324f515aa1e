"""Where does the network look? Occlusion, saliency, guided backprop and deconvnet.

- ``occlusion``: slide a patch over the photo and record the drop in the class
  probability (Zeiler & Fergus, "Visualizing and Understanding Convolutional
  Networks", ECCV 2014).
- ``saliency``: the gradient of the class score with respect to the pixels
  (Simonyan et al., "Deep Inside Convolutional Networks", 2014), optionally
  averaged over noisy copies (SmoothGrad, Smilkov et al. 2017).
- ``guided_backprop`` / ``deconvnet``: the same backward pass with every
  ReLU-like activation passing only positive signal (Springenberg et al.,
  "Striving for Simplicity", 2015; Zeiler & Fergus 2014).

The rectifier rules behind guided backprop live in ``helpers.rectifiers``; the
randomization sanity check of Adebayo et al. (2018) in ``helpers.randomization``.
"""
import contextlib
import math

import torch

from .checks import check_count, check_strength
from .hooks import LayerError, get_layer, layers, record
from .models import class_index, inference_copy, model_input
from .rectifiers import RULES, Rectifiers

FILLS = ("zero", "mean", "blur")


# --------------------------------------------------------------------------- inputs
def one_image(model, image):
    """(3, H, W) or (1, 3, H, W) -> (1, 3, H, W) float32 on the model's device, detached."""
    x = model_input(model, image)  # values, size: one clear error
    if len(x) != 1:
        raise ValueError(f"Expected one image of shape (3, H, W) or (1, 3, H, W), got "
                         f"{tuple(x.shape)}.")
    return x


def target_class(model, target):
    """``class_index``, or None (meaning: the predicted class, see ``pick_class``)."""
    return None if target is None else class_index(model, target)


def pick_class(model, logits, target):
    """The target index for these logits: given one (checked against the output) or the top-1."""
    n = logits.shape[-1]
    if target is None:
        return int(logits[0].argmax())
    if not 0 <= target < n:
        raise ValueError(f"Class index {target} is out of range: valid are 0..{n - 1}.")
    return target


def _pair(value, what, image_hw):
    try:
        pair = (int(value), int(value)) if not isinstance(value, (tuple, list)) else tuple(map(int, value))
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an int or an (h, w) pair, got {value!r}.") from None
    if len(pair) != 2:
        raise ValueError(f"{what} must be an int or an (h, w) pair, got {value!r}.")
    h, w = image_hw
    if what == "window" and not (1 <= pair[0] <= h and 1 <= pair[1] <= w):
        raise ValueError(f"Window {value} does not fit the {h}x{w} image: choose 1..{min(h, w)} "
                         f"pixels (or an (h, w) pair up to ({h}, {w})).")
    if what == "stride" and min(pair) < 1:
        raise ValueError(f"Stride must be at least 1 pixel (1..{min(h, w)}), got {value}.")
    return pair


# --------------------------------------------------------------------------- saliency
def saliency(model, image, target=None, noise=0.0, samples=1, seed=0, batch_size=None):
    """Saliency map: max over colour channels of |d score / d pixel| (Simonyan et al. 2014).

    With ``noise > 0`` this is SmoothGrad (Smilkov et al. 2017): the mean of the
    saliency maps of ``samples`` noisy copies ``image + noise * (max - min) * N(0, 1)``,
    the noise drawn at once as a (samples, 3, H, W) tensor from
    ``torch.Generator().manual_seed(seed)`` on the CPU.

    Args:
        image: (3, H, W) in [0, 1].
        target: class index or name; None = the predicted class.
        noise: SmoothGrad noise level as a fraction of the image's value range (0.1-0.2 typical).
        samples: noisy copies averaged (ignored when ``noise == 0``).
    Returns:
        (H, W) tensor >= 0 on the image's device.
    """
    x = one_image(model, image)
    t = target_class(model, target)
    noise, samples = check_strength(noise, "noise"), check_count(samples, "samples")
    if noise == 0:
        batch = x
    else:
        sigma = float(noise) * float(x.max() - x.min())
        eps = torch.randn((int(samples),) + tuple(x.shape[1:]),
                          generator=torch.Generator().manual_seed(seed))
        batch = x + sigma * eps.to(device=x.device, dtype=x.dtype)
    if t is None and noise:  # the class predicted for the clean photo, not for a noisy copy
        with torch.inference_mode():
            t = int(model(x).argmax(-1)[0])
    bs = batch_size or (4 if x.device.type == "cpu" else 64)
    total = torch.zeros(x.shape[-2:], device=x.device, dtype=x.dtype)
    for chunk in batch.split(bs):
        chunk = chunk.clone().requires_grad_(True)
        out = model(chunk)
        t = pick_class(model, out, t)
        # Gradient to the input only (parameters stay frozen): no weight gradients computed.
        grad, = torch.autograd.grad(out[:, t].sum(), chunk)
        total += grad.abs().amax(1).sum(0)
    return total / len(batch)


# --------------------------------------------------------------------------- guided backprop
def rectified_layers(model, size=224):
    """Names of layers whose output comes straight out of a ReLU-like activation, in forward order.

    These are the layers whose neurons ``guided_backprop`` can start from, e.g.
    ``act0, blocks.0.act1, blocks.1.act0, ...`` for the offline model (its block
    outputs are linear bottlenecks, not rectified) or ``relu, layer1.0, ...`` for ResNet.
    """
    return [info.name for info in layers(model, size) if info.rectified]


def _neuron(model, x, target):
    if len(target) not in (2, 3):
        raise ValueError("A neuron target is (layer, channel) or (layer, channel, (y, x)), got "
                         f"{target!r}.")
    layer, channel = target[0], int(target[1])
    position = target[2] if len(target) == 3 else None
    get_layer(model, layer)  # LayerError with suggestions for unknown names
    survey = layers(model, tuple(x.shape[-2:]))
    info = {i.name: i for i in survey}
    valid = [i.name for i in survey if i.rectified]
    if layer not in info:
        raise LayerError(f"Layer {layer!r} produced no tensor output in a forward pass.")
    shape = info[layer].shape
    if not info[layer].rectified:
        names = [i.name for i in survey]
        after = next((n for n in names[names.index(layer) + 1:] if info[n].rectified), None)
        hint = f" The next rectified layer is {after!r}." if after else ""
        raise ValueError(f"Layer {layer!r} has no ReLU-like activation at its output, so guided "
                         f"backprop of one of its neurons is not defined.{hint} Rectified layers: "
                         f"{', '.join(valid)}.")
    if not 0 <= channel < shape[0]:
        raise ValueError(f"Channel {channel} is out of range for layer {layer!r}: valid are "
                         f"0..{shape[0] - 1}.")
    if position is not None:
        position = tuple(int(p) for p in position)
        spatial = shape[1:]
        if len(position) != len(spatial) or any(not 0 <= p < s for p, s in zip(position, spatial)):
            raise ValueError(f"Position {position} is outside layer {layer!r}'s "
                             f"{'x'.join(map(str, spatial)) or 'non-spatial'} output: valid are "
                             f"{tuple(s - 1 for s in spatial)} at most.")
    return layer, channel, position


def guided_backprop(model, image, target=None, rule="guided"):
    """Guided backpropagation (Springenberg et al. 2015) or the deconvnet rule (Zeiler & Fergus 2014).

    The gradient of a class score (pre-softmax) or of one neuron with respect to
    the pixels, where every ReLU-like activation passes back only positive
    signal: ``guided`` keeps the ordinary gradient at the activation's input
    where it is positive, ``deconvnet`` rectifies the incoming signal and ignores
    the forward pass. ``helpers.rectifiers`` says which activations are treated.

    Args:
        image: (3, H, W) in [0, 1].
        target: class index or name (None = predicted class), or a neuron
            ``(layer, channel)`` / ``(layer, channel, (y, x))``; without a position the
            channel's most active location is used. ``layer`` must be one of
            ``rectified_layers(model)``; the neuron is scored before its rectifier
            (identical where it is on and below 6, and not zero where ReLU6 saturates).
        rule: ``"guided"``, ``"deconvnet"``, or ``"gradient"`` (the ordinary gradient, to compare).
    Returns:
        (3, H, W) signed tensor (show it with ``gradient_image``).
    """
    if rule not in RULES:
        raise ValueError(f"Unknown rule {rule!r}: choose one of {', '.join(RULES)}.")
    x = one_image(model, image)
    if isinstance(target, (tuple, list)):
        layer, channel, position = _neuron(model, x, target)
        t = None
    else:
        layer, t = None, target_class(model, target)
    x = x.clone().requires_grad_(True)
    watch = record(model, [layer]) if layer else contextlib.nullcontext()
    mode = Rectifiers(rule, track=layer is not None)
    with watch as rec, mode:
        out = model(x)
    if layer is None:
        t = pick_class(model, out, t)
        score = out[0, t]
    else:
        # Score the neuron's pre-activation: the same gradient where the unit is on and below
        # its clip, but not zero for the (many) ReLU6 units saturated at 6.
        drive = mode.pre_activation(rec[layer])[0, channel]
        if drive.dim() and position is None:
            position = tuple(int(i) for i in torch.unravel_index(drive.argmax(), drive.shape))
        score = drive[position] if drive.dim() else drive
    grad, = torch.autograd.grad(score, x)
    return grad[0]


def deconvnet(model, image, target=None):
    """``guided_backprop`` with the deconvnet rule (Zeiler & Fergus 2014): (3, H, W)."""
    return guided_backprop(model, image, target, rule="deconvnet")


def channels_by_activation(model, image, layer):
    """Channels of ``layer`` sorted by their strongest response to ``image``, largest first.

    For a rectified layer the response is the pre-activation (the rectifier's input):
    it orders channels like the activation, but does not tie the many ReLU6 units
    clipped at 6. ``guided_backprop`` of ``(layer, channel)`` starts at the same maximum.

    Returns:
        list of ``(channel, max response)``.
    """
    x = one_image(model, image)
    mode = Rectifiers(track=True)
    with torch.inference_mode(), record(model, [layer], stop=True) as rec, mode:
        model(x)
    act = mode.pre_activation(rec[layer])[0]
    peak = act.flatten(1).amax(1) if act.dim() > 1 else act
    order = peak.argsort(descending=True)
    return [(int(c), float(peak[c])) for c in order]


# --------------------------------------------------------------------------- occlusion
def _baseline(x, fill, window):
    if fill == "zero":
        return torch.zeros_like(x)
    if fill == "mean":
        return x.mean((-2, -1), keepdim=True).expand_as(x).contiguous()
    import torchvision.transforms.functional as TF
    sigma = max(window) / 2
    k = min(2 * math.ceil(3 * sigma) + 1, 2 * (min(x.shape[-2:]) // 2) - 1)
    return TF.gaussian_blur(x, [k, k], [sigma, sigma])


def occlusion_baseline(image, fill="zero", window=32):
    """What an occluding patch shows: (3, H, W) zeros, the mean colour, or a blurred photo."""
    if fill not in FILLS:
        raise ValueError(f"Unknown fill {fill!r}: choose one of {', '.join(FILLS)}.")
    x = image if image.dim() == 4 else image[None]
    win = (window, window) if isinstance(window, int) else tuple(window)
    return _baseline(x, fill, win)[0]


def _positions(size, window, stride):
    # Same placement as Captum's Occlusion: the last window may hang over the edge.
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


def occlusion(model, image, target=None, window=32, stride=16, fill="zero", batch_size=None,
              fast=True):
    """Occlusion sensitivity (Zeiler & Fergus 2014): drop in class probability under a sliding patch.

    Each pixel gets the mean drop ``p(target | image) - p(target | occluded)`` over
    the windows covering it (the same map as Captum's ``Occlusion`` on softmax
    outputs). Occluded copies are evaluated a few at a time under
    ``torch.inference_mode`` by ``models.inference_copy`` of the model (batch norms
    folded into the convolutions, activations in place, channels-last); small batches
    on a CPU (cache-friendly) and a cap on the batch bound the memory.

    Args:
        image: (3, H, W) in [0, 1].
        target: class index or name; None = the predicted class.
        window, stride: patch side and step in pixels (int or (h, w)); the defaults (32, 16)
            are notebook 05's: 13 x 13 occluded copies of a 224 px photo.
        fill: ``"zero"`` (black), ``"mean"`` (the photo's mean colour) or ``"blur"``
            (the photo blurred with sigma = window / 2).
        batch_size: occluded copies per forward pass (default 2 on CPU, up to 64 on GPU).
        fast: use ``models.inference_copy`` (faster on a CPU; probabilities differ ~1e-6);
            False runs ``model`` itself as an ordinary forward pass.
    Returns:
        (H, W) tensor; positive where hiding the pixels lowers the probability.
    """
    x = one_image(model, image)
    hw = tuple(x.shape[-2:])
    wh, ww = _pair(window, "window", hw)
    sh, sw = _pair(stride, "stride", hw)
    if fill not in FILLS:
        raise ValueError(f"Unknown fill {fill!r}: choose one of {', '.join(FILLS)}.")
    t = target_class(model, target)
    base = _baseline(x, fill, (wh, ww))
    spots = [(y, z) for y in _positions(hw[0], wh, sh) for z in _positions(hw[1], ww, sw)]
    cap = max(1, 2 ** 24 // x[0].numel())  # at most ~64 MB of float32 inputs per batch
    bs = max(1, min(batch_size or (2 if x.device.type == "cpu" else 64), cap))
    drops = []
    net = inference_copy(model, x.repeat(min(bs, len(spots)), 1, 1, 1)) if fast else model
    with torch.inference_mode():
        logits = model(x)
        t = pick_class(model, logits, t)
        p0 = logits.softmax(-1)[0, t]
        for i in range(0, len(spots), bs):
            chunk = spots[i:i + bs]
            xb = x.repeat(len(chunk), 1, 1, 1)
            for k, (y, z) in enumerate(chunk):
                xb[k, :, y:y + wh, z:z + ww] = base[0, :, y:y + wh, z:z + ww]
            out = net(xb.contiguous(memory_format=torch.channels_last) if fast else xb)
            drops.append(p0 - out.softmax(-1)[:, t])
        drops = torch.cat(drops).float()
        total = torch.zeros(hw, device=x.device)
        count = torch.zeros(hw, device=x.device)
        for (y, z), d in zip(spots, drops):
            total[y:y + wh, z:z + ww] += d
            count[y:y + wh, z:z + ww] += 1
    return total / count


# --------------------------------------------------------------------------- display
def gradient_image(grad, percentile=99.0):
    """(3, H, W) signed gradient -> (3, H, W) image in [0, 1] (grey = 0), clipped at a percentile."""
    g = grad.detach().float().cpu()
    scale = torch.quantile(g.abs().flatten(), percentile / 100).clamp_min(1e-12)
    return (g / scale).clamp(-1, 1) * 0.5 + 0.5


def clip_map(heatmap, percentile=99.0):
    """(H, W) map >= 0 scaled to [0, 1], clipping the top (100 - percentile)% for contrast."""
    m = heatmap.detach().float().cpu()
    scale = torch.quantile(m.flatten(), percentile / 100).clamp_min(1e-12)
    return (m / scale).clamp(0, 1)


__all__ = [
    "FILLS",
    "RULES",
    "channels_by_activation",
    "clip_map",
    "deconvnet",
    "gradient_image",
    "guided_backprop",
    "occlusion",
    "occlusion_baseline",
    "one_image",
    "pick_class",
    "rectified_layers",
    "saliency",
    "target_class",
]
