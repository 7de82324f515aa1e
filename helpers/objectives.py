"""What an optimized image should do to the network: composable losses to minimize.

An ``Objective`` wraps ``fn(rec, image) -> scalar loss`` together with the set
of layers it reads. Objectives add, subtract and scale like numbers, so a
notebook writes ``channel("blocks.5", 7) + 1e-3 * l2()`` (the objective algebra
of Lucid/Lucent, Olah et al., Distill 2017). Maximizing a unit means
minimizing its negative, so ``channel``, ``neuron``, ``class_score`` and
``layer_norm`` return negative activations; ``l2`` and ``tv`` are positive
penalties on the image.

``rec`` maps layer names to activations, (N, C, H, W) for conv layers and
(N, K) for linear ones; the special name ``"output"`` is the model's logits.
``image`` is the (N, 3, H, W) image in [0, 1] after the transforms, i.e. what
the model saw. Losses average over the batch.
"""
import functools
import numbers

import torch
import torch.nn.functional as F

from .checks import check_strength
from .hooks import OUTPUT, check_channel, get_layer
from .models import class_index


class Objective:
    """A loss ``fn(rec, image) -> scalar tensor`` that reads the layers in ``layers``.

    Args:
        fn: callable(rec, image) returning a 0-dim tensor to minimize.
        layers: names of the layers ``fn`` reads (``"output"`` for the logits).
        name: short text for titles, e.g. ``"channel(blocks.5, 7)"``.
        checks: callables ``check(model, size)`` that validate the arguments against a model
            (unknown layer, channel out of range...) before any optimization starts.
    """

    def __init__(self, fn, layers=(), name="objective", checks=()):
        self.fn = fn
        self.layers = frozenset(layers)
        self.name = name
        self.checks = tuple(checks)

    def __call__(self, rec, image):
        return self.fn(rec, image)

    def check(self, model, size=224):
        """Raise ``ValueError``/``LayerError`` if this objective does not fit ``model``."""
        for name in self.layers - {OUTPUT}:
            get_layer(model, name)
        for check in self.checks:
            check(model, size)

    def _combine(self, other, sign, symbol):
        if isinstance(other, numbers.Number):
            if other == 0:
                return self
            return Objective(lambda rec, img: self(rec, img) + sign * other, self.layers,
                             f"{self.name} {symbol} {other:g}", self.checks)
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(lambda rec, img: self(rec, img) + sign * other(rec, img),
                         self.layers | other.layers, f"{self.name} {symbol} {other.name}",
                         self.checks + other.checks)

    def __add__(self, other):
        return self._combine(other, 1, "+")

    def __radd__(self, other):  # sum([...]) starts from 0
        return self._combine(other, 1, "+")

    def __sub__(self, other):
        return self._combine(other, -1, "-")

    def __rsub__(self, other):
        return (-self)._combine(other, 1, "+")

    def __neg__(self):
        return Objective(lambda rec, img: -self(rec, img), self.layers, f"-({self.name})",
                         self.checks)

    def __mul__(self, k):
        if not isinstance(k, numbers.Number):
            return NotImplemented
        return Objective(lambda rec, img: k * self(rec, img), self.layers, f"{k:g}*{self.name}",
                         self.checks)

    __rmul__ = __mul__

    def __truediv__(self, k):
        if not isinstance(k, numbers.Number):
            return NotImplemented
        return self * (1.0 / k)

    def __repr__(self):
        return f"Objective({self.name})"


def weighted_sum(objectives, weights=None):
    """``sum(w * o)`` of several objectives (all weights 1 by default)."""
    objectives = list(objectives)
    weights = [1.0] * len(objectives) if weights is None else list(weights)
    if len(weights) != len(objectives) or not objectives:
        raise ValueError(f"Need one weight per objective, got {len(weights)} weights for "
                         f"{len(objectives)} objectives.")
    return sum(w * o for w, o in zip(weights, objectives))


def _channel_check(layer, c):
    def check(model, size):
        check_channel(model, layer, c, size)
    return check


def class_score(c):
    """Maximize the pre-softmax score (logit) of class ``c`` (Simonyan et al., 2014).

    Args:
        c: class index or name; or one per image, a sequence of N indices/names.
    """
    targets = list(c) if isinstance(c, (list, tuple, torch.Tensor)) else [c]
    targets = [int(t) if isinstance(t, torch.Tensor) else t for t in targets]
    resolved = {}

    def check(model, size):
        resolved["index"] = [class_index(model, t) for t in targets]

    def fn(rec, image):
        logits = rec[OUTPUT]
        if "index" not in resolved:  # objective used without optimize(): ints only
            if not all(isinstance(t, numbers.Integral) for t in targets):
                raise ValueError("Class names need a model: call objective.check(model) first.")
            resolved["index"] = [int(t) for t in targets]
        index = resolved["index"]
        if max(index) >= logits.shape[1]:
            raise ValueError(f"Class {max(index)} is out of range: valid are "
                             f"0..{logits.shape[1] - 1}.")
        if len(index) == 1:
            return -logits[:, index[0]].mean()
        if len(index) != len(logits):
            raise ValueError(f"{len(index)} target classes for a batch of {len(logits)} images.")
        idx = torch.as_tensor(index, device=logits.device)
        return -logits.gather(1, idx[:, None]).mean()

    label = targets[0] if len(targets) == 1 else f"{len(targets)} classes"
    return Objective(fn, {OUTPUT}, f"class_score({label})", [check])


def channel(layer, c):
    """Maximize the mean activation of channel ``c`` of ``layer`` (over space and batch)."""
    c = int(c)

    def fn(rec, image):
        return -rec[layer][:, c].mean()
    return Objective(fn, {layer}, f"channel({layer}, {c})", [_channel_check(layer, c)])


def neuron(layer, c, x=None, y=None):
    """Maximize one unit: channel ``c`` of ``layer`` at column ``x``, row ``y`` (centre by default).

    For linear layers ((N, K) outputs) ``x`` and ``y`` are ignored.
    """
    c = int(c)

    def fn(rec, image):
        act = rec[layer]
        if act.dim() == 2:
            return -act[:, c].mean()
        h, w = act.shape[-2:]
        col = w // 2 if x is None else int(x)
        row = h // 2 if y is None else int(y)
        if not (0 <= col < w and 0 <= row < h):
            raise ValueError(f"Position x={col}, y={row} is outside layer {layer!r}'s "
                             f"{w}x{h} map: valid are x in 0..{w - 1}, y in 0..{h - 1}.")
        return -act[:, c, row, col].mean()
    where = "centre" if x is None and y is None else f"x={x}, y={y}"
    return Objective(fn, {layer}, f"neuron({layer}, {c}, {where})", [_channel_check(layer, c)])


def layer_norm(layer):
    """Maximize the mean squared activation of ``layer`` (deep dream, Mordvintsev et al., 2015)."""
    def fn(rec, image):
        return -rec[layer].pow(2).mean()
    return Objective(fn, {layer}, f"layer_norm({layer})")


def l2(strength=1.0, center=0.5):
    """Penalty ``strength * mean((x - center)^2)``: pulls the image towards grey.

    Simonyan et al. (2014) penalize ``||I||^2`` of the mean-subtracted image; ``center=0.5``
    plays the role of the mean here since images live in [0, 1].
    """
    strength = check_strength(strength, "strength")

    def fn(rec, image):
        return strength * (image - center).pow(2).mean()
    return Objective(fn, (), f"{strength:g}*l2")


def tv(strength=1.0, beta=2.0):
    """Total variation ``strength * mean((dx^2 + dy^2)^(beta/2))`` (Mahendran & Vedaldi, 2015).

    ``beta`` < 2 tolerates sharp edges more; ``beta = 2`` is the smooth quadratic penalty.
    """
    strength = check_strength(strength, "strength")
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}.")

    def fn(rec, image):
        return strength * total_variation(image, beta)
    return Objective(fn, (), f"{strength:g}*tv(beta={beta:g})")


def total_variation(image, beta=2.0):
    """Mean over pixels of ``(dx^2 + dy^2)^(beta/2)`` for (N, 3, H, W) images."""
    dx = image[..., :-1, 1:] - image[..., :-1, :-1]
    dy = image[..., 1:, :-1] - image[..., :-1, :-1]
    d2 = dx.pow(2) + dy.pow(2)
    if beta == 2:
        return d2.mean()
    return (d2 + 1e-8).pow(beta / 2).mean()  # eps: finite gradient at flat regions


def gram_similarity(features):
    """Mean cosine similarity between the Gram matrices of every pair of images in a batch.

    Args:
        features: (N, C, H, W) activations, N >= 2.
    Returns:
        0-dim tensor in [-1, 1]: 1 when all N images have the same Gram matrix (the same
        mix of features, wherever they are).
    """
    n = len(features)
    if n < 2:
        raise ValueError(f"Similarity within a batch needs at least 2 images, got {n}.")
    flat = features.flatten(2)                                    # (N, C, HW)
    grams = torch.matmul(flat, flat.transpose(1, 2)).flatten(1)   # (N, C*C)
    grams = F.normalize(grams, dim=1, eps=1e-10)
    cos = grams @ grams.T
    return (cos.sum() - cos.diagonal().sum()) / (n * (n - 1))


def diversity(layer, strength=1.0):
    """Penalty ``strength * gram_similarity(layer)``: pushes a batch's images apart.

    Olah, Mordvintsev & Schubert (Distill 2017) optimize a batch together and penalize the
    cosine similarity of the images' Gram matrices at ``layer``, a style-like summary that
    ignores where features are, so the images must differ in *what* they contain. Added
    to a class or channel objective it gives several different images of one unit.
    """
    def fn(rec, image):
        return strength * gram_similarity(rec[layer])
    return Objective(fn, {layer}, f"{strength:g}*diversity({layer})")


def cross_entropy(c):
    """Minimize the cross-entropy towards class ``c`` (one index, or one per image).

    The usual loss of a targeted adversarial attack: unlike ``class_score`` it also
    pushes the other classes down.
    """
    targets = [int(t) for t in c] if isinstance(c, (list, tuple, torch.Tensor)) else [int(c)]

    def fn(rec, image):
        logits = rec[OUTPUT]
        idx = torch.as_tensor(targets, device=logits.device)
        if len(targets) == 1:
            idx = idx.expand(len(logits))
        return torch.nn.functional.cross_entropy(logits, idx)

    def check(model, size):
        for t in targets:
            class_index(model, t)
    label = targets[0] if len(targets) == 1 else f"{len(targets)} classes"
    return Objective(fn, {OUTPUT}, f"cross_entropy({label})", [check])


# ---- feature smoothing, shared by the style losses and feature_distance ----------------------

def softmax_smooth(features, temperature=1.0):
    """Softmax over all C*H*W activations of each image, rescaled to mean 1 (Wang et al., 2021).

    The softmax turns peaky, low-entropy activations (a few huge values, as residual
    networks produce) into a flatter distribution; multiplying by C*H*W only keeps the
    numbers near 1 (the loss changes by a constant factor per layer).

    Args:
        features: (N, C, H, W) activations.
        temperature: divides the activations first; larger is flatter.
    Returns:
        (N, C, H, W), positive, each image's entries averaging 1.
    """
    n = features[0].numel()
    flat = features.reshape(len(features), -1) / temperature
    return (F.softmax(flat, dim=1) * n).reshape(features.shape)


def smoother(smooth):
    """The activation transform for a ``smooth`` argument: None/False/0 -> identity,
    True -> ``softmax_smooth`` at temperature 1, a positive number -> at that temperature.

    Raises:
        ValueError: a negative temperature.
    """
    if smooth is None or smooth is False or smooth == 0:
        return lambda a: a
    temperature = 1.0 if smooth is True else float(smooth)
    if temperature <= 0:
        raise ValueError(f"smooth must be False, True or a positive temperature, got {smooth}.")
    return functools.partial(softmax_smooth, temperature=temperature)
