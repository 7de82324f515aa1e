"""Record activations and gradients of named layers, with hooks that never leak."""
import contextlib
import difflib
import weakref
from collections import namedtuple

import torch

LayerInfo = namedtuple("LayerInfo", "name type shape")


class LayerError(KeyError):
    """An unknown layer name; the message suggests valid ones."""

    def __str__(self):
        return self.args[0]


def get_layer(model, name):
    """The submodule called ``name`` (as in ``named_modules()``)."""
    modules = dict(model.named_modules())
    if name in modules and name != "":
        return modules[name]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise LayerError(f"Unknown layer {name!r} in {type(model).__name__}.{hint} "
                     f"Valid names include: {', '.join(names[:8])}, ... (see helpers.layers(model)).")


def _first_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


class Recording:
    """What ``record`` captured: ``activations[name]`` and ``gradients[name]`` tensors."""

    def __init__(self):
        self.activations, self.gradients = {}, {}

    def __getitem__(self, name):
        return self.activations[name]


@contextlib.contextmanager
def record(model, names, gradients=False, detach=False):
    """Record the outputs (and, with ``gradients=True``, their gradients) of named layers.

    Usage: ``with record(model, ["blocks.5"]) as rec: model(x)``; then
    ``rec["blocks.5"]`` is the (N, C, H, W) activation. Hooks are removed on
    exit, also on exceptions and KeyboardInterrupt.
    """
    names = [names] if isinstance(names, str) else list(names)
    modules = {n: get_layer(model, n) for n in names}  # validate before hooking anything
    rec, handles = Recording(), []

    def hook_for(name):
        def hook(module, inputs, output):
            out = _first_tensor(output)
            if out is None:
                return
            rec.activations[name] = out.detach() if detach else out
            if gradients and out.requires_grad:
                # A tensor hook sees the gradient of this very output, even when the
                # module is reused (pytorch-grad-cam's reason for doing it this way).
                out.register_hook(lambda g: rec.gradients.__setitem__(name, g))
        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(hook_for(name)))
        yield rec
    finally:
        for h in handles:
            h.remove()


_LAYERS_CACHE = weakref.WeakKeyDictionary()


def layers(model, size=224, leaves=False):
    """Hookable layers with their output shapes for one (1, 3, size, size) input.

    Cached per model and size (shapes depend only on the architecture), so
    widgets can call it on every slider move.

    Args:
        leaves: only modules without children (conv, bn, relu...); default lists all.
    Returns:
        list of ``LayerInfo(name, type, shape)`` in execution order.
    """
    key = (size, leaves, tuple(id(m) for m in model.modules()))
    cache = _LAYERS_CACHE.setdefault(model, {})
    if key not in cache:
        cache[key] = _trace_layers(model, size, leaves)
    return list(cache[key])


def _trace_layers(model, size, leaves):
    found, handles = [], []
    param = next(model.parameters())
    try:
        for name, module in model.named_modules():
            if not name or (leaves and any(True for _ in module.children())):
                continue

            def hook(m, i, o, name=name):
                out = _first_tensor(o)
                if out is not None and name not in {f.name for f in found}:
                    found.append(LayerInfo(name, type(m).__name__, tuple(out.shape[1:])))
            handles.append(module.register_forward_hook(hook))
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=param.device, dtype=param.dtype))
    finally:
        for h in handles:
            h.remove()
    return found


def num_channels(model, layer, size=224):
    """Channels (or units) of a layer's output."""
    for info in layers(model, size):
        if info.name == layer:
            return info.shape[0]
    get_layer(model, layer)  # raises with suggestions when the name is unknown
    raise LayerError(f"Layer {layer!r} produced no tensor output in a forward pass.")


def check_channel(model, layer, channel, size=224):
    """Raise a clear error when ``channel`` is not a valid output channel of ``layer``."""
    n = num_channels(model, layer, size)
    if not 0 <= int(channel) < n:
        raise ValueError(f"Channel {channel} is out of range for layer {layer!r}: valid are 0..{n - 1}.")
    return int(channel)


def leftover_hooks(model):
    """Names of modules that still carry forward, pre-forward or backward hooks (should be [])."""
    return [name for name, m in model.named_modules()
            if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
            or getattr(m, "_backward_pre_hooks", None)]


def main_layers(model, size=224):
    """A short, ordered list of the layers a student picks from (block outputs, not every BN).

    The children of the model's ``nn.Sequential`` containers (``features.3``,
    ``blocks.5``, ``layer4.1``) plus top-level activations, keeping only those
    with spatial (C, H, W) outputs.
    """
    wanted = set()
    for name, module in model.named_children():
        if isinstance(module, torch.nn.Sequential):
            wanted.update(f"{name}.{child}" for child, _ in module.named_children())
        elif "ReLU" in type(module).__name__ or name.startswith("act"):
            wanted.add(name)
    return [info.name for info in layers(model, size) if info.name in wanted and len(info.shape) == 3]
