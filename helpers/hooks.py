"""The one place that reads layers: record activations and gradients of named layers.

Every helper that needs a layer's output goes through this module: ``record``
(hooks on named layers, optionally ending the forward pass early),
``activations`` (image in, ``{layer: tensor}`` out) and ``layers`` (the survey of
a model's layers, their output shapes and whether a rectifier produced them).
Every hook is removed in a ``finally``, also after an exception or KeyboardInterrupt.
"""
import contextlib
import functools
import difflib
import weakref
from collections import namedtuple

import torch

from .checks import check_size
from .device import model_device
from .images import as_batch
from .rectifiers import Rectifiers

OUTPUT = "output"  # the model's own output, for ``activations`` and objectives
LayerInfo = namedtuple("LayerInfo", "name type shape rectified")
LayerInfo.__doc__ = ("One layer of ``layers(model)``: its ``name`` (as in ``named_modules()``), "
                     "module ``type`` name, output ``shape`` without the batch dimension, and "
                     "whether the output comes straight out of a ReLU-like activation "
                     "(``rectified``).")


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


def first_tensor(output):
    """A module's output as one tensor: the output itself, the first element of a tuple, or None."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


class _StopForward(Exception):
    """Raised by a ``record(stop=True)`` hook once every named layer has run."""

    def __init__(self, recording):
        super().__init__("forward pass stopped after the recorded layers")
        self.recording = recording


class Recording:
    """What ``record`` captured: ``activations[name]`` and ``gradients[name]`` tensors."""

    def __init__(self, model):
        self.model = model
        self.activations, self.gradients = {}, {}

    def __getitem__(self, name):
        return self.activations[name]

    def run(self, *inputs, **kwargs):
        """One forward pass, recorded afresh (earlier values are cleared).

        Returns:
            the model's output, or None when ``stop=True`` ended the pass early.
        """
        self.activations.clear()
        self.gradients.clear()
        try:
            return self.model(*inputs, **kwargs)
        except _StopForward as stop:
            if stop.recording is not self:
                raise  # an enclosing recording's stop: let it end its own pass
            return None


def _keep_gradient(rec_ref, name, grad):
    rec = rec_ref()
    if rec is not None:
        rec.gradients[name] = grad


@contextlib.contextmanager
def record(model, names, gradients=False, detach=False, stop=False):
    """Record the outputs (and, with ``gradients=True``, their gradients) of named layers.

    Usage: ``with record(model, ["blocks.5"]) as rec: model(x)``; then
    ``rec["blocks.5"]`` is the (N, C, H, W) activation. Hooks are removed on
    exit, also on exceptions and KeyboardInterrupt.

    Args:
        names: a layer name or a list of them (see ``layers(model)``).
        gradients: also keep ``rec.gradients[name]``, the gradient of each recorded output.
        detach: keep detached outputs (no graph).
        stop: end the forward pass as soon as every named layer has produced its output,
            so an early layer costs only the layers up to it. Run the pass with
            ``rec.run(x)`` (returns None when stopped), or call ``model(x)`` as the last
            statement of the ``with`` block: the stop ends the block quietly.
    """
    names = [names] if isinstance(names, str) else list(names)
    modules = {n: get_layer(model, n) for n in names}  # validate before hooking anything
    rec, handles, wanted = Recording(model), [], set(names)

    def hook_for(name):
        def hook(module, inputs, output):
            out = first_tensor(output)
            if out is None:
                return
            rec.activations[name] = out.detach() if detach else out
            if gradients and out.requires_grad:
                # A tensor hook sees the gradient of this very output, even when the
                # module is reused (pytorch-grad-cam's reason for doing it this way).
                # The hook holds the recording weakly: a strong reference would make a cycle
                # (recording -> output -> hook -> recording) that keeps the whole graph alive.
                out.register_hook(functools.partial(_keep_gradient, weakref.ref(rec), name))
            if stop and wanted.issubset(rec.activations):
                raise _StopForward(rec)
        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(hook_for(name)))
        yield rec
    except _StopForward as err:
        if err.recording is not rec:
            raise
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def activations(model, images, layers, stop=True):
    """Detached outputs of named layers for an image or a batch, from one forward pass.

    Args:
        images: (3, H, W) or (N, 3, H, W) in [0, 1], on any device (moved to the model's).
        layers: a layer name or a list of them; ``OUTPUT`` (``"output"``) is the model's output.
        stop: end the pass after the last named layer (unless the output is asked for).
    Returns:
        ``{layer: (N, ...) tensor}`` on the model's device.
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    hooked = [n for n in names if n != OUTPUT]
    x = as_batch(images, model_device(model))
    with record(model, hooked, detach=True, stop=stop and OUTPUT not in names) as rec:
        out = rec.run(x)
    missing = [n for n in hooked if n not in rec.activations]
    if missing:
        raise LayerError(f"Layer(s) {', '.join(map(repr, missing))} produced no tensor output "
                         f"in a forward pass.")
    acts = dict(rec.activations)
    if OUTPUT in names:
        acts[OUTPUT] = out
    return {n: acts[n] for n in names}


_LAYERS_CACHE = weakref.WeakKeyDictionary()


def layers(model, size=224, leaves=False):
    """Hookable layers with their output shapes for one (1, 3, size, size) input.

    Cached per model and size (shapes depend only on the architecture), so
    widgets can call it on every slider move.

    Args:
        size: input side, or an (H, W) pair.
        leaves: only modules without children (conv, bn, relu...); default lists all.
    Returns:
        list of ``LayerInfo(name, type, shape, rectified)`` in execution order.
    """
    size = check_size(size)
    hw = (size, size) if isinstance(size, int) else size
    key = (hw, leaves, tuple(id(m) for m in model.modules()))
    cache = _LAYERS_CACHE.setdefault(model, {})
    if key not in cache:
        cache[key] = _survey(model, hw, leaves)
    return list(cache[key])


def _survey(model, hw, leaves):
    """One forward pass of zeros with a hook on every module, under a tracking ``Rectifiers``."""
    found, seen, handles = [], set(), []
    mode = Rectifiers(track=True)  # tells which outputs come straight out of a rectifier
    try:
        for name, module in model.named_modules():
            if not name or (leaves and any(True for _ in module.children())):
                continue

            def hook(m, i, o, name=name):
                out = first_tensor(o)
                if out is not None and name not in seen:
                    seen.add(name)
                    found.append(LayerInfo(name, type(m).__name__, tuple(out.shape[1:]),
                                           mode.rectified(out)))
            handles.append(module.register_forward_hook(hook))
        with torch.no_grad(), mode:
            model(torch.zeros((1, 3) + hw, device=model_device(model)))
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
