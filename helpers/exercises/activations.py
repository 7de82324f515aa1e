"""Checks for 03_activations: a forward hook as a context manager, and the strongest channels.

``record``: ``with student(model, layer) as rec: model(x)`` must leave ``rec[layer]`` = the
layer's output of the last pass (as ``hooks.record``), and no hook behind, neither after a
normal exit nor after an exception inside the block (which must reach the caller), and the
model's output as it is without the recorder.
``strongest_channels``: ``student(maps, k)`` -> the ``k`` channels of a (C, H, W) map with the
largest mean activation, strongest first (as ``activations.strongest_channels``).
"""
import contextlib
import operator
from collections import namedtuple

import numpy as np
import torch

from .. import hooks
from ..activations import feature_maps
from ..activations import strongest_channels as _strongest
from ..device import model_device
from ..filters import first_conv
from ..images import load_image
from . import verdict
from .verdict import Case, Mismatch, Mistake

__all__ = ["record", "strongest_channels"]


class _Raised(Exception):
    """The exception the check raises inside the student's ``with`` block."""


Use = namedtuple("Use", "recorded problem left_after left_after_error swallowed changed")
Use.__doc__ = ("What using a recorder showed: the recorded tensor (or None and a ``problem``), "
               "whether hooks were left after a normal exit / after an exception, whether "
               "the exception was swallowed, and whether the model's output changed.")


def _same(got, plain):
    """Whether the model's output with the recorder equals its output without it (up to the
    float32 noise of another kernel)."""
    got, plain = hooks.first_tensor(got), hooks.first_tensor(plain)
    if plain is None:
        return True
    if got is None or got.shape != plain.shape:
        return False
    scale = float(plain.abs().max()) if plain.numel() else 0.0
    return torch.allclose(got.float(), plain.float(), rtol=1e-4, atol=1e-5 * scale + 1e-7)


def _use(recorder, model, layer, batches):
    """Use ``recorder`` as a student would, twice: a normal block, then one that raises."""
    before = verdict.hook_ids(model)
    recorded, problem = None, None
    with torch.no_grad():
        plain = [model(x) for x in batches]
    try:
        with torch.no_grad():
            with recorder(model, layer) as rec:
                outputs = [model(x) for x in batches]
            changed = not all(_same(o, p) for o, p in zip(outputs, plain))
            try:
                recorded = rec[layer]
            except Exception as err:  # noqa: BLE001 - the student's object, read as the exercise says
                problem = (f"after the with block, rec[{layer!r}] raised "
                           f"{type(err).__name__}: {verdict._short(err)}")
            if problem is None and not isinstance(recorded, torch.Tensor):
                problem = (f"after the with block, rec[{layer!r}] is a "
                           f"{type(recorded).__name__}, not the layer's output tensor")
            elif problem is None:
                recorded = recorded.detach().clone()
        left_after = bool(verdict.remove_new_hooks(model, before))
        swallowed = True
        try:
            with torch.no_grad(), recorder(model, layer):
                model(batches[0])
                raise _Raised("raised inside the with block by the check")
        except _Raised:
            swallowed = False
        left_after_error = bool(verdict.remove_new_hooks(model, before))
    finally:
        verdict.remove_new_hooks(model, before)
    return Use(recorded, problem, left_after, left_after_error, swallowed, changed)


def _compare_use(got, expected):
    if got.problem:
        raise Mismatch(got.problem)
    verdict.close(got.recorded, expected.recorded, what="the recorded output")
    if got.changed != expected.changed:
        raise Mismatch("the hook changed the model's output: a forward hook that records must "
                       "return None" if got.changed else "the model's output did not change")
    if got.swallowed != expected.swallowed:
        raise Mismatch("an exception raised inside the with block did not reach the caller"
                       if got.swallowed else "the exception was not swallowed")
    if got.left_after != expected.left_after:
        raise Mismatch("a hook was still registered after the with block ended"
                       if got.left_after else "no hook was left")
    if got.left_after_error != expected.left_after_error:
        raise Mismatch("a hook was still registered after an exception inside the with block"
                       if got.left_after_error else "no hook was left")


@contextlib.contextmanager
def _recording(model, layer, pick, whole=False):
    """A correct recorder of ``pick(inputs, output)`` of ``layer`` (or of the whole model)."""
    rec = {}
    module = model if whole else hooks.get_layer(model, layer)
    handle = module.register_forward_hook(lambda m, i, o: rec.__setitem__(layer, pick(i, o)))
    try:
        yield rec
    finally:
        handle.remove()


def _reference(model, layer, batches):
    return _use(hooks.record, model, layer, batches)


def _changed(**flags):
    def output(model, layer, batches):
        return _reference(model, layer, batches)._replace(**flags)
    return output


RECORD_MISTAKES = [
    Mistake(lambda model, layer, batches: _use(
        lambda m, n: _recording(m, n, lambda i, o: i[0]), model, layer, batches),
        "this is the layer's input: a forward hook is called as hook(module, inputs, output); "
        "record the third argument."),
    Mistake(lambda model, layer, batches: _use(
        lambda m, n: _recording(m, n, lambda i, o: o, whole=True), model, layer, batches),
        "this is the model's output: register the hook on the layer itself, "
        "dict(model.named_modules())[layer] (or model.get_submodule(layer))."),
    Mistake(_changed(changed=True),
            "a forward hook that returns a value replaces the layer's output: store the output "
            "(rec[layer] = output) and return nothing."),
    Mistake(_changed(left_after=True, left_after_error=True),
            "keep the handle that register_forward_hook returns and call handle.remove() "
            "when the block ends (in a finally clause, so that it also runs after an error)."),
    Mistake(_changed(left_after_error=True),
            "an exception inside the with block is raised at your yield, so the code after it "
            "never runs: put the yield in try: ... finally: handle.remove()."),
    Mistake(_changed(swallowed=True),
            "remove the hook in a finally clause, without an except that swallows the error: "
            "the caller must still see the exception."),
]


def _layers(model, size):
    """The first conv (its input is the image) and the first rectifier (input and output have
    the same shape) of ``model``."""
    rectified = [info.name for info in hooks.layers(model, size) if info.rectified]
    return [first_conv(model)] + rectified[:1]


def record(student, model=None):
    """Check a context manager ``student(model, layer)`` against ``hooks.record``.

    Cases: random batches (1 to 3 images, odd sizes, two passes in one block) on
    ``verdict.tiny_cnn()`` and the cat photo on ``model`` (default: the tiny network).
    """
    tiny = verdict.tiny_cnn()
    model = tiny if model is None else model
    dev = model_device(model)
    cat = load_image("chelsea", 64)[None].to(dev)
    conv, relu = _layers(model, 64)
    cases = [
        Case("a random batch of 2 at 37x53, layer '0' (a conv)",
             (tiny, "0", [verdict.random_images(2, 37, 53, seed=1)])),
        Case("one random image at 20x20, layer '1' (a ReLU)",
             (tiny, "1", [verdict.random_images(1, 20, 20, seed=2)])),
        Case("two passes (1 image at 16x24, then 3 at 19x19), layer '2'",
             (tiny, "2", [verdict.random_images(1, 16, 24, seed=3),
                          verdict.random_images(3, 19, 19, seed=4)])),
        Case(f"the cat photo at 64 px, layer {conv!r}", (model, conv, [cat])),
        Case(f"the cat photo at 64 px, layer {relu!r}", (model, relu, [cat])),
    ]
    used = (lambda m, n, batches: _use(student, m, n, batches)) if callable(student) else student
    return verdict.run("record", used, _reference, cases,
                       compare=_compare_use, mistakes=RECORD_MISTAKES,
                       hint="hook dict(model.named_modules())[layer]; in the hook store the "
                            "output in the dict you yield (rec[layer] = output, without "
                            "assigning a new dict to rec); remove the hook in a finally clause.")


# --------------------------------------------------------------------------- strongest channels

Ranked = namedtuple("Ranked", "channels means")


def _ranked(fn):
    """``fn(maps, k)`` plus the mean of every channel, so that ties compare equal."""
    def output(maps, k):
        return Ranked(fn(maps, k), maps.float().mean((1, 2)))
    return output


def _index(value):
    """``value`` as a Python int if it is an integer (an int, a NumPy int, an integer 0-dim
    tensor or array), else None: floats and bools are not channel indices."""
    if isinstance(value, (bool, np.bool_)) or getattr(value, "ndim", 0) != 0:
        return None
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool:
        return None
    if isinstance(value, np.ndarray) and value.dtype.kind == "b":
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _indices(channels):
    """The student's channels as a list of ints, or None when they are not indices;
    ``Mismatch`` for a tensor or array of floating-point values."""
    if isinstance(channels, (torch.Tensor, np.ndarray)):
        floating = channels.is_floating_point() if isinstance(channels, torch.Tensor) \
            else channels.dtype.kind == "f"
        if floating:
            first = [round(float(v), 3) for v in channels.flatten()[:3].tolist()]
            raise Mismatch(f"the result holds floating-point values ({first}...), not channel "
                           "indices")
        channels = channels.reshape(-1).tolist()
    found = [_index(c) for c in channels] if isinstance(channels, (list, tuple, range)) else None
    if found is None or None in found:
        return None
    return found


def _compare_ranked(got, expected):
    channels = _indices(got.channels)
    if channels is None:
        raise Mismatch(f"the result should be a list of channel indices (ints), got "
                       f"{type(got.channels).__name__} {verdict._short(got.channels, 60)}")
    want = list(expected.channels)
    if len(channels) != len(want):
        raise Mismatch(f"the result has {len(channels)} channels, expected {len(want)}")
    means = expected.means
    for rank, (c, e) in enumerate(zip(channels, want)):
        if not 0 <= c < len(means):
            raise Mismatch(f"channel {c} at rank {rank} does not exist (0..{len(means) - 1})")
        if not torch.isclose(means[c], means[e], rtol=1e-5, atol=1e-7):
            raise Mismatch(f"at rank {rank}: expected channel {e} (mean {means[e]:.4g}), got "
                           f"channel {c} (mean {means[c]:.4g})")


STRONGEST_MISTAKES = [
    Mistake(_ranked(lambda maps, k: maps.amax((1, 2)).topk(min(k, len(maps))).indices.tolist()),
            "a channel's strength is its mean activation over all positions, not its peak."),
    Mistake(_ranked(lambda maps, k: maps.mean((1, 2)).argsort()[:k].tolist()),
            "these are the weakest channels: sort in descending order (or use topk)."),
    Mistake(_ranked(lambda maps, k: maps.mean((1, 2)).argsort()[-k:].tolist()),
            "strongest first: argsort sorts ascending, so reverse the order (or use topk)."),
    Mistake(_ranked(lambda maps, k: maps.abs().mean((1, 2)).topk(min(k, len(maps))).indices
                    .tolist()),
            "a channel's strength is its signed mean: negative activations weaken it, so do not "
            "take abs()."),
]


def strongest_channels(student, model=None):
    """Check ``student(maps, k) -> list of k ints`` against ``activations.strongest_channels``."""
    model = verdict.tiny_cnn() if model is None else model
    g = torch.Generator().manual_seed(12)
    cat = load_image("chelsea", 64)
    rectified = [info.name for info in hooks.layers(model, 64) if info.rectified]
    layer = rectified[len(rectified) // 2]
    real = feature_maps(model, cat, layer)
    cases = [
        Case("random maps (6, 5, 7), k=3", (torch.rand(6, 5, 7, generator=g), 3)),
        Case("random maps (32, 9, 11), k=8", (torch.rand(32, 9, 11, generator=g) ** 4, 8)),
        Case("random maps (3, 4, 4), k=5 (more than there are channels)",
             (torch.rand(3, 4, 4, generator=g), 5)),
        Case("signed random maps (10, 7, 9), k=4", (verdict.noise((10, 7, 9), seed=13), 4)),
        Case(f"the cat photo's maps at layer {layer!r} {tuple(real.shape)}, k=6", (real, 6)),
    ]
    ranked = _ranked(student) if callable(student) else student
    return verdict.run("strongest_channels", ranked, _ranked(_strongest), cases,
                       compare=_compare_ranked, mistakes=STRONGEST_MISTAKES,
                       hint="the mean of each channel over its H x W positions, then the indices "
                            "of the k largest means, strongest first, as a list of ints.")
