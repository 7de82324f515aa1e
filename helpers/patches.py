"""Receptive fields of layer units and the image patches that excite a channel most.

A unit of a convolutional layer at output position (i, j) sees the input rows
``offset + i * stride ... offset + i * stride + size - 1`` (the same for
columns), clipped to the image. Araujo, Norris & Sim, "Computing Receptive
Fields of Convolutional Neural Networks", Distill 2019; the top-patch view is
from Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
ECCV 2014, and Girshick et al., "Rich feature hierarchies", CVPR 2014.
"""
import contextlib
import functools
from collections import namedtuple

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from . import hooks
from .data import ImageSet, _on_disk, cached, cpu_threads, layer_outputs, model_identity

ReceptiveField = namedtuple("ReceptiveField", "size stride offset")
ReceptiveField.__doc__ = ("Receptive field of a layer's units in input pixels: side ``size``, "
                          "``stride`` between neighbouring units, first row/column ``offset`` of unit 0 "
                          "(negative: it starts in the padding). Tuples (rows, cols) when the axes differ.")
Patch = namedtuple("Patch", "value image row col box patch")
Patch.__doc__ = ("One top patch: activation ``value``, source ``image`` index, unit position (``row``, "
                 "``col``), ``box`` = (top, left, bottom, right) in image pixels (clipped), the "
                 "(3, h, w) ``patch`` itself.")
GLOBAL = "global"  # a tensor whose every number depends on the whole image


class _Unsupported(Exception):
    pass


# --------------------------------------------------------------------------- layer arithmetic

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _arg(args, kwargs, i, name, default):
    return args[i] if len(args) > i else kwargs.get(name, default)


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
                w = _arg(args, kwargs, 1, "weight", None)
                kernel = tuple(w.shape[-2:])
                stride = _pair(_arg(args, kwargs, 3, "stride", 1))
                padding = _arg(args, kwargs, 4, "padding", 0)
                dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
                if padding == "valid":
                    padding = (0, 0)
                elif padding == "same":  # PyTorch puts the odd pixel at the end
                    padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
            else:
                kernel = _pair(_arg(args, kwargs, 1, "kernel_size", None))
                stride = _arg(args, kwargs, 2, "stride", None)
                stride = kernel if stride in (None, [], ()) else _pair(stride)
                padding = _arg(args, kwargs, 3, "padding", 0)
                dilation = _pair(_arg(args, kwargs, 4, "dilation", 1)) if "max" in name else (1, 1)
            first._rf = _window(rf, kernel, stride, _pair(padding), dilation)
        elif name == "pad" and rf not in (None, GLOBAL):
            pad = list(_arg(args, kwargs, 1, "pad", ())) + [0, 0, 0, 0]
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


class _Stop(Exception):
    pass


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
    module = hooks.get_layer(model, layer)
    box = {}

    def hook(m, i, o):
        box["out"] = hooks._first_tensor(o)
        raise _Stop
    handle = module.register_forward_hook(hook)
    try:
        torch.func.functional_call(model, params, (x,), strict=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    return box["out"]


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
    import weakref
    if method not in ("arithmetic", "gradient"):
        raise ValueError(f"method must be 'arithmetic' or 'gradient', got {method!r}.")
    hooks.get_layer(model, layer)
    key = (type(model).__name__, getattr(model, "name", ""), id(model))
    return _rf_cached(key, method, layer, int(size), weakref.ref(model))


def unit_box(rf, row, col, size):
    """(top, left, bottom, right) pixel box seen by unit (row, col), clipped to a ``size`` image.

    ``bottom`` and ``right`` are exclusive, so ``image[:, top:bottom, left:right]`` is the patch.
    """
    r, s, o = (v if isinstance(v, tuple) else (v, v) for v in rf)
    top, left = o[0] + row * s[0], o[1] + col * s[1]
    return (max(top, 0), max(left, 0), min(top + r[0], size), min(left + r[1], size))


# --------------------------------------------------------------------------- top patches

def channel_maxima(model, layer, data, batch_size=8, cache=True, cache_dir=None, progress=True):
    """For every image and channel, the largest activation of ``layer`` and where it is.

    One pass over the data set (cached on disk like ``features``) serves every channel;
    a list of layers shares the same forward passes.

    Args:
        layer: a module name or a list of them.
        data: ``ImageSet`` or (N, 3, S, S) tensor in [0, 1].
    Returns:
        dict: ``values`` (N, C) float, ``index`` (N, C) flat position in the (H', W')
        map, ``shape`` (2,) = (H', W'); for a list of layers, a dict of those by layer.
    """
    names = [layer] if isinstance(layer, str) else list(layer)
    for name in names:
        hooks.get_layer(model, name)
    images = data.images if isinstance(data, ImageSet) else data
    content = (data if isinstance(data, ImageSet) else
               ImageSet(images, torch.zeros(0, dtype=torch.long), [], "tensor")).fingerprint()
    identity = model_identity(model)
    fields = {name: dict(kind="channel_maxima", model=identity, layer=name, data=content)
              for name in names}
    computed = {}

    def fn(out):
        if out.dim() != 4:
            raise ValueError(f"{names} must all have spatial outputs; pick convolutional layers.")
        v, i = out.flatten(2).max(dim=-1)
        return v, i, torch.tensor(list(out.shape[-2:]))[None]

    def compute_missing(requester):
        # Called by the first layer not on disk: one pass computes every layer still missing.
        missing = [requester] + [n for n in names if n != requester and n not in computed
                                 and not (cache and _on_disk(fields[n], cache_dir))]
        outs = layer_outputs(model, missing, images, batch_size, fn=fn, progress=progress,
                             desc=f"{', '.join(missing)} maxima")
        for n, (v, i, shape) in outs.items():
            computed[n] = {"values": v, "index": i, "shape": shape[0]}

    result = {}
    for name in names:
        def compute(name=name):
            if name not in computed:
                compute_missing(name)
            return computed[name]
        result[name] = cached(fields[name] if cache else None, compute, cache_dir, prefix="maxima")
    return result[layer] if isinstance(layer, str) else result


def top_patches(model, layer, channel, data, k=9, batch_size=8, cache=True, cache_dir=None,
                progress=True):
    """The ``k`` images whose strongest ``channel`` unit in ``layer`` fires most, cropped to that unit.

    One patch per image (the best position in it), so the k patches come from k
    different images.

    Args:
        data: ``ImageSet`` or (N, 3, S, S) tensor in [0, 1] (use ``with_crops`` for more positions).
    Returns:
        list of ``Patch``, strongest first.
    """
    images = data.images if isinstance(data, ImageSet) else data
    size = images.shape[-1]
    channel = hooks.check_channel(model, layer, channel, size)
    if not 1 <= k <= len(images):
        raise ValueError(f"k must be in 1..{len(images)}, got {k}.")
    found = channel_maxima(model, layer, data, batch_size, cache, cache_dir, progress)
    values, index = found["values"][:, channel], found["index"][:, channel]
    width = int(found["shape"][1])
    rf = receptive_field(model, layer, size)
    top = values.topk(k)
    patches = []
    for v, n in zip(top.values.tolist(), top.indices.tolist()):
        row, col = divmod(int(index[n]), width)
        box = unit_box(rf, row, col, size)
        patches.append(Patch(v, n, row, col, box, images[n, :, box[0]:box[2], box[1]:box[3]]))
    return patches


def with_crops(data, crops_per_image=1, scale=(0.35, 0.7), seed=0):
    """The data set plus random square crops of each image, resized back to the same size.

    Zoomed-in crops put small objects at the scale a deeper unit prefers.
    """
    gen = torch.Generator().manual_seed(seed)
    s = data.images.shape[-1]
    crops = []
    for _ in range(crops_per_image):
        for img in data.images:
            side = max(2, int(s * (scale[0] + (scale[1] - scale[0]) * float(torch.rand((), generator=gen)))))
            top, left = (int(torch.randint(0, s - side + 1, (), generator=gen)) for _ in range(2))
            crop = img[:, top:top + side, left:left + side][None]
            crops.append(F.interpolate(crop, size=(s, s), mode="bilinear", align_corners=False)[0])
    images = torch.cat([data.images, torch.stack(crops).clamp(0, 1)]) if crops else data.images
    labels = data.labels.repeat(crops_per_image + 1)
    return ImageSet(images, labels, data.classes, data.name, data.description +
                    f" Plus {crops_per_image} random crop(s) per image.",
                    dict(data.params, crops=crops_per_image, crop_seed=seed))


# --------------------------------------------------------------------------- figures

def show_patches(patches, images=None, title=None, size=1.6):
    """A row of patches (titled with their activation); with ``images``, their sources below with boxes."""
    rows = 2 if images is not None else 1
    fig, axes = plt.subplots(rows, len(patches), figsize=(size * len(patches), size * rows + 0.4),
                             squeeze=False)
    for c, p in enumerate(patches):
        ax = axes[0, c]
        ax.imshow(p.patch.permute(1, 2, 0).clamp(0, 1).cpu().numpy())
        ax.set_title(f"{p.value:.2f}", fontsize=8)
        ax.axis("off")
        if images is not None:
            ax = axes[1, c]
            ax.imshow(images[p.image].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            t, l, b, r = p.box
            ax.add_patch(plt.Rectangle((l - 0.5, t - 0.5), r - l, b - t, fill=False, color="red", lw=1.5))
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


def patch_grid(model, layer, channels, data, k=6, size=1.2, progress=True):
    """Top-``k`` patches (columns) for several ``channels`` (rows) of one layer."""
    images = data.images if isinstance(data, ImageSet) else data
    rf = receptive_field(model, layer, images.shape[-1])
    fig, axes = plt.subplots(len(channels), k, figsize=(size * k, size * len(channels) + 0.5),
                             squeeze=False)
    for r, ch in enumerate(channels):
        for c, p in enumerate(top_patches(model, layer, ch, data, k, progress=progress)):
            ax = axes[r, c]
            ax.imshow(p.patch.permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"ch {ch}", fontsize=8)
    rf_size = rf.size if not isinstance(rf.size, tuple) else rf.size[0]
    fig.suptitle(f"{layer}: receptive field {rf_size} px (image {images.shape[-1]} px), "
                 f"stride {rf.stride}", fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


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


__all__ = [
    "Patch",
    "ReceptiveField",
    "channel_maxima",
    "patch_grid",
    "receptive_field",
    "receptive_field_plot",
    "show_patches",
    "top_patches",
    "unit_box",
    "with_crops",
]
