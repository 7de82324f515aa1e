"""Rectifier rules for guided backprop and deconvnet, and finding which layers are rectified.

While a ``Rectifiers`` mode is active, a ``torch.overrides.TorchFunctionMode``
intercepts every rectifier *call* (``F.relu``, ``torch.relu``, ``Tensor.relu``,
their in-place forms, ``F.relu6``, ``F.hardtanh`` with a lower bound of 0,
``F.leaky_relu``) and computes it with a custom autograd function whose backward
applies the guided or deconvnet rule. ``nn.ReLU``/``nn.ReLU6``/``nn.LeakyReLU``
modules call these functions, so modules and functional calls inside ``forward``
are treated alike; a module reused several times (ResNet's one in-place ReLU per
block) gets the rule at every call, and the model itself is never touched: no
hooks, no swapped modules, no changed ``inplace`` flags. The mode is popped on
exit, also after an exception. Limit: rectifiers that do not go through these
Python functions are not seen: ``torch.clamp(x, min=0)`` or ``torch.maximum(x, 0)``
written as a ReLU, and code compiled by TorchScript/``torch.compile``.

With ``track=True`` the mode remembers every rectifier output and its input, so
``helpers.hooks.layers`` can say which layers are rectified and attribution can
score a neuron before its clip.
"""
import math

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

RULES = ("guided", "deconvnet", "gradient")


def call_arg(args, kwargs, i, name, default):
    """Argument ``i`` (or keyword ``name``) of an intercepted torch call, else ``default``."""
    return args[i] if len(args) > i else kwargs.get(name, default)


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


def _relu(a, k, inplace):
    return a[0], torch.relu, 0.0, math.inf, 0.0, inplace


def _relu_f(a, k):
    return _relu(a, k, bool(call_arg(a, k, 1, "inplace", False)))


def _relu6_f(a, k):
    inplace = bool(call_arg(a, k, 1, "inplace", False))
    return a[0], lambda x: F.hardtanh(x, 0.0, 6.0), 0.0, 6.0, 0.0, inplace


def _hardtanh(a, k, inplace=None):
    lo, hi = float(call_arg(a, k, 1, "min_val", -1.0)), float(call_arg(a, k, 2, "max_val", 1.0))
    if lo != 0.0:  # a tanh-like clip, not a rectifier: leave it alone
        return None
    inplace = bool(call_arg(a, k, 3, "inplace", False)) if inplace is None else inplace
    return a[0], lambda x: F.hardtanh(x, lo, hi), lo, hi, 0.0, inplace


def _leaky(a, k, inplace=None):
    slope = float(call_arg(a, k, 1, "negative_slope", 0.01))
    inplace = bool(call_arg(a, k, 2, "inplace", False)) if inplace is None else inplace
    return a[0], lambda x: F.leaky_relu(x, slope), 0.0, math.inf, slope, inplace


# Each parser turns a call's arguments into (input, function, lower bound, upper bound,
# negative slope, in place?), or None when the call is not a rectifier.
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


class Rectifiers(TorchFunctionMode):
    """While active, rectifier calls use ``rule`` (``"guided"``, ``"deconvnet"``) in backward.

    ``rule=None`` or ``"gradient"`` leaves the gradients alone. With ``track``,
    ``produced`` maps ``id(output)`` of every rectifier call to ``(output,
    pre-activation)``, so a neuron can be scored before its clip.

    Usage: ``with Rectifiers("guided"): out = model(x)``.
    """

    def __init__(self, rule=None, track=False):
        super().__init__()
        if rule not in (None,) + RULES:
            raise ValueError(f"Unknown rule {rule!r}: choose one of {', '.join(RULES)}.")
        self.rule = None if rule == "gradient" else rule
        self.track, self.produced = track, {}

    def rectified(self, tensor):
        """Whether ``tensor`` came straight out of a rectifier call (needs ``track=True``)."""
        return id(tensor) in self.produced

    def pre_activation(self, tensor):
        """The rectifier input behind ``tensor`` (``tensor`` itself if no rectifier made it)."""
        return self.produced.get(id(tensor), (None, tensor))[1]

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


__all__ = ["RULES", "Rectifiers", "call_arg"]
