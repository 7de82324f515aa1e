"""Receptive fields: which input pixels a unit of a convolutional layer sees.

A unit of a convolutional layer at output position (i, j) sees the input rows
``offset + i * stride ... offset + i * stride + size - 1`` (the same for
columns), clipped to the image. Araujo, Norris & Sim, "Computing Receptive
Fields of Convolutional Neural Networks", Distill 2019. Two ways to find them:
kernel/stride/padding arithmetic followed through every torch call of a forward
pass, and the gradient of a linearized copy of the network (ground truth).
"""
import contextlib
import functools
import weakref
from collections import namedtuple

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from . import hooks
from .checks import check_size
from .device import cpu_threads
from .rectifiers import call_arg

ReceptiveField = namedtuple("ReceptiveField", "size stride offset")
ReceptiveField.__doc__ = ("Receptive field of a layer's units in input pixels: side ``size``, "
                          "``stride`` between neighbouring units, first row/column ``offset`` of unit 0 "
                          "(negative: it starts in the padding). Tuples (rows, cols) when the axes differ.")
GLOBAL = "global"  # a tensor whose every number depends on the whole image


class _Unsupported(Exception):
    pass


# --------------------------------------------------------------------------- layer arithmetic

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _window(rf, kernel, stride, pad_before, dilation=(1, 1)):
    """Compose one (j, start, r) per axis with a sliding window (conv or pool)."""
    return tuple((j * s, start - p * j, r + d * (k - 1) * j)
                 for (j, start, r), k, s, p, d in zip(rf, kernel, stride, pad_before, dilation))


def _union(rfs):
    if any(rf == GLOBAL for rf in rfs):
        return GLOBAL
    out = []
    for axis in zip(*rfs):
        if len({j for j, _, _ in axis}) != 1:
            raise _Unsupported("inputs with different strides are combined")
        start = min(s for _, s, _ in axis)
        end = max(s + r for _, s, r in axis)
        out.append((axis[0][0], start, end - start))
    return tuple(out)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)


class _ReceptiveFieldMode(TorchFunctionMode):
    """Follows every tensor through the forward pass and tags it with its receptive field.

    Works at the level of torch functions, so padding done by hand (TensorFlow
    "same" convolutions), residual additions and concatenations are all seen.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        ins = [t for t in _tensors(list(args) + list(kwargs.values())) if hasattr(t, "_rf")]
        first = next(_tensors(out), None)
        if not ins or first is None:
            return out
        name = getattr(func, "__name__", "")
        x = args[0] if args else kwargs.get("input")
        rf = getattr(x, "_rf", None)
        if name in ("conv2d", "max_pool2d", "avg_pool2d", "max_pool2d_with_indices") and rf not in (
                None, GLOBAL):
            if name == "conv2d":
                w = call_arg(args, kwargs, 1, "weight", None)
                kernel = tuple(w.shape[-2:])
                stride = _pair(call_arg(args, kwargs, 3, "stride", 1))
                padding = call_arg(args, kwargs, 4, "padding", 0)
                dilation = _pair(call_arg(args, kwargs, 5, "dilation", 1))
                if padding == "valid":
                    padding = (0, 0)
                elif padding == "same":  # PyTorch puts the odd pixel at the end
                    padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
            else:
                kernel = _pair(call_arg(args, kwargs, 1, "kernel_size", None))
                stride = call_arg(args, kwargs, 2, "stride", None)
                stride = kernel if stride in (None, [], ()) else _pair(stride)
                padding = call_arg(args, kwargs, 3, "padding", 0)
                dilation = _pair(call_arg(args, kwargs, 4, "dilation", 1)) if "max" in name else (1, 1)
            first._rf = _window(rf, kernel, stride, _pair(padding), dilation)
        elif name == "pad" and rf not in (None, GLOBAL):
            pad = list(call_arg(args, kwargs, 1, "pad", ())) + [0, 0, 0, 0]
            first._rf = _window(rf, (1, 1), (1, 1), (pad[2], pad[0]))
        elif name.startswith("adaptive_") and rf not in (None, GLOBAL):
            in_size, out_size = x.shape[-2:], first.shape[-2:]
            if all(o == 1 for o in out_size):
                first._rf = GLOBAL
            elif all(i % o == 0 for i, o in zip(in_size, out_size)):
                kernel = tuple(i // o for i, o in zip(in_size, out_size))
                first._rf = _window(rf, kernel, kernel, (0, 0))
            else:
                raise _Unsupported(f"adaptive pooling from {tuple(in_size)} to {tuple(out_size)}")
        elif first.dim() == 4 and all(t.dim() == 4 and t.shape[-2:] == first.shape[-2:] for t in ins):
            first._rf = _union([t._rf for t in ins])  # elementwise: BN, ReLU, +, cat, ...
        elif first.dim() < 4 or first.shape[-2:] == (1, 1) or any(t._rf == GLOBAL for t in ins) or \
                any(t.dim() == 4 and t.shape[-2:] == (1, 1) for t in ins):
            first._rf = GLOBAL  # flatten, linear, squeeze-excite gates
        else:
            raise _Unsupported(f"{name} changes the spatial size in a way this helper does not know")
        return out


def _as_result(axes):
    (jh, sh, rh), (jw, sw, rw) = axes
    if (jh, sh, rh) == (jw, sw, rw):
        return ReceptiveField(rh, jh, sh)
    return ReceptiveField((rh, rw), (jh, jw), (sh, sw))


def _by_arithmetic(model, layer, size):
    # Shapes are all the arithmetic needs: run on the meta device, no numbers computed.
    meta = {n: t.to("meta") for n, t in list(model.named_parameters()) + list(model.named_buffers())}
    x = torch.zeros(1, 3, size, size, device="meta", dtype=next(model.parameters()).dtype)
    x._rf = ((1, 0, 1), (1, 0, 1))
    try:
        with torch.no_grad(), _ReceptiveFieldMode():
            out = _functional_run_to(model, meta, layer, x)
    except _Unsupported as err:
        raise ValueError(f"Layer arithmetic cannot follow {layer!r}: {err}. "
                         f"Use method='gradient'.") from None
    rf = getattr(out, "_rf", None)
    if rf is None or rf == GLOBAL or out.dim() != 4:
        raise ValueError(f"Units of {layer!r} have no spatial position: each one sees the whole "
                         f"image. Pick a convolutional layer such as {hooks.main_layers(model)[-1]!r}.")
    return _as_result(rf)


# --------------------------------------------------------------------------- gradient (ground truth)

def _linearized_params(model):
    """Convolution weights set to 1/fan-in and biases to 0, for ``torch.func.functional_call``."""
    params = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            w = module.weight
            params[f"{name}.weight"] = torch.full_like(w, 1.0 / w[0].numel())
            if module.bias is not None:
                params[f"{name}.bias"] = torch.zeros_like(module.bias)
    return params


_ACTIVATIONS = (nn.ReLU, nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
                nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.PReLU)


def _linearizing_hooks(model):
    """Hooks that make BN and activations the identity and max pooling an average (same window).

    An in-place activation gets a copy of its input (pre-hook) and its output is
    replaced by the untouched original (forward hook).
    """
    originals = {}

    def keep(m, inputs):
        originals[id(m)] = inputs[0]
        return (inputs[0].clone(),) + tuple(inputs[1:])

    def restore(m, inputs, output):
        return originals.pop(id(m))

    def average(m, inputs, output):
        if isinstance(m, nn.AdaptiveMaxPool2d):
            return F.adaptive_avg_pool2d(inputs[0], m.output_size)
        if _pair(m.dilation) != (1, 1):
            raise ValueError("gradient receptive fields do not support dilated max pooling")
        return F.avg_pool2d(inputs[0], m.kernel_size, m.stride, m.padding, m.ceil_mode,
                            count_include_pad=True)
    handles = []
    for module in model.modules():
        if isinstance(module, (nn.modules.batchnorm._BatchNorm,) + _ACTIVATIONS):
            handles.append(module.register_forward_pre_hook(keep))
            handles.append(module.register_forward_hook(restore))
        elif isinstance(module, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
            handles.append(module.register_forward_hook(average))
    return handles


def _extent(mask):
    idx = torch.nonzero(mask).flatten()
    if len(idx) == 0:
        raise ValueError("no input pixel reaches this unit (a functional max pool or activation "
                         "that the gradient method cannot linearize?)")
    return int(idx[0]), int(idx[-1])


def _by_gradient(model, layer, size):
    """Which input pixels reach a unit: the gradient of a linear, all-positive version of the network.

    Convolutions average (weights 1/fan-in, no bias), BN and activations are
    skipped and max pooling becomes average pooling, so the input gradient of a
    unit is positive exactly on the pixels connected to it, whatever the trained
    weights are. Four units along the diagonal (first two, last two), one per
    batch element, give stride, offset and size with a single backward pass.
    """
    param = next(model.parameters())
    params = _linearized_params(model)
    x = torch.ones(4, 3, size, size, device=param.device, dtype=param.dtype, requires_grad=True)
    handles = _linearizing_hooks(model)
    threads = cpu_threads() if param.device.type == "cpu" else contextlib.nullcontext()
    try:
        with threads, torch.enable_grad():
            out = _functional_run_to(model, params, layer, x)
            if out is None or out.dim() != 4:
                raise ValueError(f"Units of {layer!r} have no spatial position: each one sees the "
                                 f"whole image.")
            n = out.shape[-2:]
            if min(n) < 2:
                raise ValueError(f"{layer!r} has a {n[0]}x{n[1]} output at input size {size}; "
                                 f"use a larger size.")
            units = [(0, 0), (1, 1), (n[0] - 2, n[1] - 2), (n[0] - 1, n[1] - 1)]
            total = sum(out[b, :, i, j].sum() for b, (i, j) in enumerate(units))
            grad, = torch.autograd.grad(total, x)
    finally:
        for h in handles:
            h.remove()
    reach = grad.abs().sum(1) > 0  # (4, H, W)
    axes = []
    for axis in (0, 1):
        (_, e0), (_, e1), (sa, _), (sb, _) = (_extent(r.any(dim=1 - axis)) for r in reach)
        if not (e1 < size - 1 and sa > 0):
            raise ValueError(f"Receptive fields of {layer!r} are clipped on both sides at input "
                             f"size {size}; use a larger size.")
        stride = sb - sa
        if e1 - e0 != stride:
            raise ValueError(f"Inconsistent unit spacing in {layer!r} ({e1 - e0} vs {stride}).")
        offset = sb - (n[axis] - 1) * stride
        axes.append((stride, offset, e0 - offset + 1))
    return _as_result(axes)


def _functional_run_to(model, params, layer, x):
    """``layer``'s output when ``model`` runs with ``params`` swapped in; the pass ends there."""
    with hooks.record(model, [layer], stop=True) as rec:
        torch.func.functional_call(model, params, (x,), strict=False)
    return rec.activations.get(layer)


@functools.lru_cache(maxsize=256)
def _rf_cached(key, method, layer, size, model_ref):
    model = model_ref()
    return _by_gradient(model, layer, size) if method == "gradient" else \
        _by_arithmetic(model, layer, size)


def receptive_field(model, layer, size=224, method="arithmetic"):
    """Receptive field of ``layer``'s units for a ``size`` x ``size`` input.

    Args:
        method: ``"arithmetic"`` follows kernel sizes, strides and paddings (also
            TensorFlow-style padding computed from the input size) through every
            torch function of a forward pass; ``"gradient"`` finds the input pixels
            with a non-zero gradient in a linearized copy of the network (ground
            truth; needs an input large enough that some units are not clipped).
    Returns:
        ``ReceptiveField(size, stride, offset)`` in input pixels.
    """
    if method not in ("arithmetic", "gradient"):
        raise ValueError(f"method must be 'arithmetic' or 'gradient', got {method!r}.")
    hooks.get_layer(model, layer)
    check_size(size)
    key = (type(model).__name__, getattr(model, "name", ""), id(model))
    return _rf_cached(key, method, layer, int(size), weakref.ref(model))


def unit_box(rf, row, col, size):
    """(top, left, bottom, right) pixel box seen by unit (row, col), clipped to a ``size`` image.

    ``bottom`` and ``right`` are exclusive, so ``image[:, top:bottom, left:right]`` is the patch.
    """
    r, s, o = (v if isinstance(v, tuple) else (v, v) for v in rf)
    top, left = o[0] + row * s[0], o[1] + col * s[1]
    return (max(top, 0), max(left, 0), min(top + r[0], size), min(left + r[1], size))


def receptive_field_plot(model, size=224, layers=None, size_inch=(9, 3.2)):
    """Receptive-field size of each layer (bars) against the image side (dashed line)."""
    layers = list(layers or hooks.main_layers(model, size))
    rfs = [receptive_field(model, layer, size) for layer in layers]
    sizes = [rf.size if not isinstance(rf.size, tuple) else max(rf.size) for rf in rfs]
    fig, ax = plt.subplots(figsize=size_inch)
    ax.bar(range(len(layers)), sizes, color="tab:blue")
    ax.axhline(size, color="tab:red", ls="--", label=f"image side ({size} px)")
    ax.set_xticks(range(len(layers)), layers, rotation=60, fontsize=8)
    ax.set_ylabel("receptive field (px)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


__all__ = ["ReceptiveField", "receptive_field", "receptive_field_plot", "unit_box"]
