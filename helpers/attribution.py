"""Where does the network look? Occlusion, saliency, guided backprop, and a sanity check.

- ``occlusion``: slide a patch over the photo and record the drop in the class
  probability (Zeiler & Fergus, "Visualizing and Understanding Convolutional
  Networks", ECCV 2014).
- ``saliency``: the gradient of the class score with respect to the pixels
  (Simonyan et al., "Deep Inside Convolutional Networks", 2014), optionally
  averaged over noisy copies (SmoothGrad, Smilkov et al. 2017).
- ``guided_backprop`` / ``deconvnet``: the same backward pass with every
  ReLU-like activation passing only positive signal (Springenberg et al.,
  "Striving for Simplicity", 2015; Zeiler & Fergus 2014).
- ``cascading_randomization``: the model-randomization sanity check of Adebayo
  et al., "Sanity Checks for Saliency Maps", NeurIPS 2018.

How guided backprop changes the gradients: while the forward pass runs, a
``torch.overrides.TorchFunctionMode`` intercepts every rectifier *call*
(``F.relu``, ``torch.relu``, ``Tensor.relu``, their in-place forms, ``F.relu6``,
``F.hardtanh`` with a lower bound of 0, ``F.leaky_relu``) and computes it with
a custom autograd function whose backward applies the guided or deconvnet
rule. ``nn.ReLU``/``nn.ReLU6``/``nn.LeakyReLU`` modules call these functions,
so modules and functional calls inside ``forward`` are treated alike; a module
reused several times (ResNet's one in-place ReLU per block) gets the rule at
every call, and the model itself is never touched: no hooks, no swapped
modules, no changed ``inplace`` flags. The mode is popped on exit, also after
an exception. Limit: rectifiers that do not go through these Python functions
are not seen: ``torch.clamp(x, min=0)`` or ``torch.maximum(x, 0)`` written as
a ReLU, and code compiled by TorchScript/``torch.compile``.
"""
import contextlib
import copy
import math
import weakref

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .hooks import LayerError, get_layer, layers, record
from .models import class_index, inference_copy

FILLS = ("zero", "mean", "blur")
RULES = ("guided", "deconvnet", "gradient")


# --------------------------------------------------------------------------- inputs
def _device(model):
    p = next(model.parameters(), None)
    return (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.float32)


def _as_batch(model, image):
    """(3, H, W) or (1, 3, H, W) tensor -> (1, 3, H, W) on the model's device, detached."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"Expected an image tensor of shape (3, H, W) in [0, 1], got a "
                        f"{type(image).__name__} (use helpers.load_image).")
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"Expected one image of shape (3, H, W) or (1, 3, H, W), got "
                         f"{tuple(image.shape)}.")
    device, dtype = _device(model)
    return image.detach().to(device=device, dtype=dtype)


def _class(model, target):
    """A validated class index, or None (meaning: the predicted class)."""
    if target is None:
        return None
    if hasattr(model, "classes"):
        return class_index(model, target)
    if isinstance(target, str):
        raise TypeError(f"Class name {target!r} given, but the model has no .classes; use an index.")
    return int(target)


def _pick(model, logits, target):
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


# --------------------------------------------------------------------------- rectifier rules
class _RectifierGrad(torch.autograd.Function):
    """A ReLU-like activation whose backward follows the guided or deconvnet rule."""

    @staticmethod
    def forward(ctx, x, fn, lo, hi, slope, rule):
        ctx.rule, ctx.slope = rule, slope
        if rule == "guided":
            # Save the mask, not x: x may be overwritten when the call was in-place.
            ctx.save_for_backward((x > lo) & (x < hi))
        return fn(x)

    @staticmethod
    def backward(ctx, grad):
        if ctx.rule == "deconvnet":  # rectify the signal, ignore the forward pass
            return grad.clamp(min=0), None, None, None, None, None
        mask, = ctx.saved_tensors
        local = torch.where(mask, grad, grad * ctx.slope) if ctx.slope else grad.masked_fill(~mask, 0)
        # Guided: the ordinary gradient at the activation's input, negatives dropped.
        return local.clamp(min=0), None, None, None, None, None


def _arg(args, kwargs, i, name, default):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _relu(a, k, inplace):
    return a[0], torch.relu, 0.0, math.inf, 0.0, inplace


def _relu_f(a, k):
    return _relu(a, k, bool(_arg(a, k, 1, "inplace", False)))


def _relu6_f(a, k):
    return a[0], lambda x: F.hardtanh(x, 0.0, 6.0), 0.0, 6.0, 0.0, bool(_arg(a, k, 1, "inplace", False))


def _hardtanh(a, k, inplace=None):
    lo, hi = float(_arg(a, k, 1, "min_val", -1.0)), float(_arg(a, k, 2, "max_val", 1.0))
    if lo != 0.0:  # a tanh-like clip, not a rectifier: leave it alone
        return None
    inplace = bool(_arg(a, k, 3, "inplace", False)) if inplace is None else inplace
    return a[0], lambda x: F.hardtanh(x, lo, hi), lo, hi, 0.0, inplace


def _leaky(a, k, inplace=None):
    slope = float(_arg(a, k, 1, "negative_slope", 0.01))
    inplace = bool(_arg(a, k, 2, "inplace", False)) if inplace is None else inplace
    return a[0], lambda x: F.leaky_relu(x, slope), 0.0, math.inf, slope, inplace


_PARSERS = {
    F.relu: _relu_f,
    torch.relu: lambda a, k: _relu(a, k, False),
    torch.Tensor.relu: lambda a, k: _relu(a, k, False),
    torch.relu_: lambda a, k: _relu(a, k, True),
    torch.Tensor.relu_: lambda a, k: _relu(a, k, True),
    F.relu6: _relu6_f,
    F.hardtanh: _hardtanh,
    F.hardtanh_: lambda a, k: _hardtanh(a, k, True),
    F.leaky_relu: _leaky,
    F.leaky_relu_: lambda a, k: _leaky(a, k, True),
}


class _PositiveGrad(torch.autograd.Function):
    """Identity forward; backward passes only the positive part of the gradient.

    Put before a rectifier, it turns the ordinary gradient at the rectifier's input
    into the guided one with a single elementwise op (cheaper than ``_RectifierGrad``).
    """

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


class _Rectifiers(TorchFunctionMode):
    """While active, rectifier calls use ``rule`` in backward.

    With ``track``, ``produced`` maps ``id(output)`` of every rectifier call to
    ``(output, pre-activation)``, so a neuron can be scored before its clip.
    """

    def __init__(self, rule=None, track=False):
        super().__init__()
        self.rule, self.track, self.produced = rule, track, {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        parse = _PARSERS.get(func)
        spec = parse(args, kwargs) if parse is not None else None
        if spec is None:
            return func(*args, **kwargs)
        x, fn, lo, hi, slope, inplace = spec
        pre = x.clone() if self.track and inplace else x
        if self.rule is None or not (torch.is_grad_enabled() and x.requires_grad):
            out = func(*args, **kwargs)
        elif self.rule == "guided" and not inplace:
            out = fn(_PositiveGrad.apply(x))
        else:
            out = _RectifierGrad.apply(x, fn, lo, hi, slope, self.rule)
            if inplace:  # keep in-place semantics: callers may ignore the return value
                x.copy_(out)
                out = x
        if self.track:
            self.produced[id(out)] = (out, pre)
        return out


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
    x = _as_batch(model, image)
    t = _class(model, target)
    if noise < 0 or int(samples) < 1:
        raise ValueError(f"noise must be >= 0 and samples >= 1, got noise={noise}, samples={samples}.")
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
        t = _pick(model, out, t)
        # Gradient to the input only (parameters stay frozen): no weight gradients computed.
        grad, = torch.autograd.grad(out[:, t].sum(), chunk)
        total += grad.abs().amax(1).sum(0)
    return total / len(batch)


# --------------------------------------------------------------------------- guided backprop
_RECTIFIED = weakref.WeakKeyDictionary()


def _layer_survey(model, hw):
    """Execution-ordered (name, output shape, rectified?) of every module, for one input size."""
    cache = _RECTIFIED.setdefault(model, {})
    if hw in cache:
        return cache[hw]
    device, dtype = _device(model)
    found, handles, mode = [], [], _Rectifiers(track=True)
    try:
        for name, module in model.named_modules():
            if not name:
                continue

            def hook(m, i, out, name=name):
                if isinstance(out, torch.Tensor) and name not in {f[0] for f in found}:
                    found.append((name, tuple(out.shape[1:]), id(out) in mode.produced))
            handles.append(module.register_forward_hook(hook))
        with torch.no_grad(), mode:
            model(torch.zeros((1, 3) + hw, device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
    cache[hw] = found
    return found


def rectified_layers(model, size=224):
    """Names of layers whose output comes straight out of a ReLU-like activation, in forward order.

    These are the layers whose neurons ``guided_backprop`` can start from, e.g.
    ``act0, blocks.0.act1, blocks.1.act0, ...`` for the offline model (its block
    outputs are linear bottlenecks, not rectified) or ``relu, layer1.0, ...`` for ResNet.
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    return [name for name, _, rectified in _layer_survey(model, hw) if rectified]


def _neuron(model, x, target):
    if len(target) not in (2, 3):
        raise ValueError("A neuron target is (layer, channel) or (layer, channel, (y, x)), got "
                         f"{target!r}.")
    layer, channel = target[0], int(target[1])
    position = target[2] if len(target) == 3 else None
    get_layer(model, layer)  # LayerError with suggestions for unknown names
    survey = _layer_survey(model, tuple(x.shape[-2:]))
    info = {name: (shape, rect) for name, shape, rect in survey}
    valid = [name for name, _, rect in survey if rect]
    if layer not in info:
        raise LayerError(f"Layer {layer!r} produced no tensor output in a forward pass.")
    shape, rect = info[layer]
    if not rect:
        names = [n for n, _, _ in survey]
        after = next((n for n in names[names.index(layer) + 1:] if info[n][1]), None)
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
    the forward pass. See the module docstring for which activations are treated.

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
    x = _as_batch(model, image)
    if isinstance(target, (tuple, list)):
        layer, channel, position = _neuron(model, x, target)
        t = None
    else:
        layer, t = None, _class(model, target)
    x = x.clone().requires_grad_(True)
    watch = record(model, [layer]) if layer else contextlib.nullcontext()
    mode = _Rectifiers(None if rule == "gradient" else rule, track=layer is not None)
    with watch as rec, mode:
        out = model(x)
    if layer is None:
        t = _pick(model, out, t)
        score = out[0, t]
    else:
        # Score the neuron's pre-activation: the same gradient where the unit is on and below
        # its clip, but not zero for the (many) ReLU6 units saturated at 6.
        drive = _drive(mode, rec[layer])[0, channel]
        if drive.dim() and position is None:
            position = tuple(int(i) for i in torch.unravel_index(drive.argmax(), drive.shape))
        score = drive[position] if drive.dim() else drive
    grad, = torch.autograd.grad(score, x)
    return grad[0]


def _drive(mode, activation):
    """The pre-activation behind a rectified layer's output (the output itself if unknown)."""
    return mode.produced.get(id(activation), (None, activation))[1]


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
    x = _as_batch(model, image)
    mode = _Rectifiers(track=True)
    with torch.inference_mode(), record(model, [layer]) as rec, mode:
        model(x)
    act = _drive(mode, rec[layer])[0]
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


def occlusion_baseline(image, fill="zero", window=16):
    """What an occluding patch shows: (3, H, W) zeros, the mean colour, or a blurred photo."""
    if fill not in FILLS:
        raise ValueError(f"Unknown fill {fill!r}: choose one of {', '.join(FILLS)}.")
    x = image if image.dim() == 4 else image[None]
    win = (window, window) if isinstance(window, int) else tuple(window)
    return _baseline(x, fill, win)[0]


def _positions(size, window, stride):
    # Same placement as Captum's Occlusion: the last window may hang over the edge.
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


def occlusion(model, image, target=None, window=16, stride=8, fill="zero", batch_size=None,
              fast=True):
    """Occlusion sensitivity (Zeiler & Fergus 2014): drop in class probability under a sliding patch.

    Each pixel gets the mean drop ``p(target | image) - p(target | occluded)`` over
    the windows covering it (the same map as Captum's ``Occlusion`` on softmax
    outputs). Occluded copies are evaluated a few at a time under
    ``torch.inference_mode`` by ``models.inference_copy`` of the model (batch norms
    folded into the convolutions, activations in place, channels-last); on a CPU,
    batches of 2 are faster per image than large ones, and the batch bounds memory.

    Args:
        image: (3, H, W) in [0, 1].
        target: class index or name; None = the predicted class.
        window, stride: patch side and step in pixels (int or (h, w)).
        fill: ``"zero"`` (black), ``"mean"`` (the photo's mean colour) or ``"blur"``
            (the photo blurred with sigma = window / 2).
        batch_size: occluded copies per forward pass (default 2 on CPU, up to 64 on GPU).
        fast: use ``models.inference_copy`` (about twice as fast on a CPU; probabilities
            differ ~1e-6); False runs ``model`` itself as an ordinary forward pass.
    Returns:
        (H, W) tensor; positive where hiding the pixels lowers the probability.
    """
    x = _as_batch(model, image)
    hw = tuple(x.shape[-2:])
    wh, ww = _pair(window, "window", hw)
    sh, sw = _pair(stride, "stride", hw)
    if fill not in FILLS:
        raise ValueError(f"Unknown fill {fill!r}: choose one of {', '.join(FILLS)}.")
    t = _class(model, target)
    base = _baseline(x, fill, (wh, ww))
    spots = [(y, z) for y in _positions(hw[0], wh, sh) for z in _positions(hw[1], ww, sw)]
    cap = max(1, 2 ** 24 // x[0].numel())  # at most ~64 MB of float32 inputs per batch
    bs = max(1, min(batch_size or (2 if x.device.type == "cpu" else 64), cap))
    drops = []
    net = inference_copy(model, x.repeat(min(bs, len(spots)), 1, 1, 1)) if fast else model
    with torch.inference_mode():
        logits = model(x)
        t = _pick(model, logits, t)
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


# --------------------------------------------------------------------------- sanity check
METHODS = {
    "saliency": lambda m, x, t: saliency(m, x, t),
    "guided_backprop": lambda m, x, t: guided_backprop(m, x, t).abs().amax(0),
    "deconvnet": lambda m, x, t: deconvnet(m, x, t).abs().amax(0),
    "smoothgrad": lambda m, x, t: saliency(m, x, t, noise=0.15, samples=8),
}
_NORMS = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)


def randomization_layers(model, size=224):
    """The units ``cascading_randomization`` re-initialises, from the top (output) down.

    Top-level children and the children of top-level ``nn.Sequential`` containers
    that hold parameters, in reverse forward order; a normalization layer is
    randomised together with the unit just before it (``conv_head`` includes ``bn1``).
    """
    return [names[0] for names in _units(model, size)]


def _units(model, size):
    candidates = {}
    for name, module in model.named_children():
        kids = list(module.named_children()) if isinstance(module, torch.nn.Sequential) else []
        for child, sub in kids or [("", module)]:
            full = f"{name}.{child}" if child else name
            if any(True for _ in sub.parameters()):
                candidates[full] = sub
    order = [info.name for info in layers(model, size) if info.name in candidates]
    units = []
    for name in order:
        if isinstance(candidates[name], _NORMS) and units:
            units[-1].append(name)
        else:
            units.append([name])
    return units[::-1]


@torch.no_grad()
def _reinit(module, generator):
    """Fresh random weights: He-normal for weights, zero biases, identity normalization."""
    for m in module.modules():
        if isinstance(m, _NORMS):
            if getattr(m, "running_mean", None) is not None:
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
            if getattr(m, "weight", None) is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()
            continue
        for name, p in m.named_parameters(recurse=False):
            if p.dim() > 1:
                fan_in = p[0].numel()
                noise = torch.randn(p.shape, generator=generator) * math.sqrt(2.0 / fan_in)
                p.copy_(noise.to(p.device, p.dtype))
            else:
                p.zero_()


def _ranks(values):
    """Ranks 0..n-1 of a flattened tensor; tied values share their mean rank."""
    v = values.detach().flatten().double().cpu()
    sorted_v, order = v.sort()
    _, inverse, counts = torch.unique_consecutive(sorted_v, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    ranks = torch.empty_like(v)
    ranks[order] = ((ends - counts + ends - 1) / 2)[inverse]
    return ranks


def rank_correlation(a, b):
    """Spearman rank correlation of two maps of the same shape (ties get mean ranks)."""
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp_min(1e-12))


def cascading_randomization(model, image, target=None, methods=("saliency", "guided_backprop"),
                            stops=None, seed=0):
    """Adebayo et al. (2018): re-initialise the layers from the top down; do the maps change?

    Works on a deep copy: ``model`` itself is not modified. The target class is
    fixed to the original prediction (or ``target``) for every step.

    Args:
        image: (3, H, W) in [0, 1].
        methods: names from ``METHODS`` (saliency, guided_backprop, deconvnet, smoothgrad).
        stops: unit names (see ``randomization_layers``) after whose randomisation the maps
            are recorded; None = every unit.
    Returns:
        dict with ``steps`` (``["original", unit, ...]``), ``maps[method]`` (list of (H, W)
        maps, one per step) and ``similarity[method]`` (Spearman rank correlation with
        the original map, one per step).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}: choose from {', '.join(METHODS)}.")
    x = _as_batch(model, image)
    units = _units(model, int(x.shape[-1]))
    names = [u[0] for u in units]
    stops = names if stops is None else list(stops)
    bad = [s for s in stops if s not in names]
    if bad:
        raise ValueError(f"Unknown unit(s) {bad}: choose from {', '.join(names)} (top first).")
    t = _class(model, target)
    if t is None:
        with torch.inference_mode():
            t = int(model(x).argmax(-1)[0])
    work = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    result = {"steps": ["original"], "maps": {m: [] for m in methods},
              "similarity": {m: [] for m in methods}, "target": t}

    def snapshot():
        for m in methods:
            result["maps"][m].append(METHODS[m](work, x, t).detach())

    snapshot()
    for unit in units:
        if not (set(stops) & set(names[names.index(unit[0]):])):
            break  # nothing left to record
        for name in unit:
            _reinit(get_layer(work, name), generator)
        if unit[0] in stops:
            result["steps"].append(unit[0])
            snapshot()
    for m in methods:
        first = result["maps"][m][0]
        result["similarity"][m] = [rank_correlation(first, other) for other in result["maps"][m]]
    return result


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
    "METHODS",
    "RULES",
    "cascading_randomization",
    "channels_by_activation",
    "clip_map",
    "deconvnet",
    "gradient_image",
    "guided_backprop",
    "occlusion",
    "occlusion_baseline",
    "randomization_layers",
    "rank_correlation",
    "rectified_layers",
    "saliency",
]
