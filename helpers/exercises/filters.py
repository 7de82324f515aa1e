"""Checks for 01_filters: a kernel bank as pictures.

``kernel_tiles``: first-layer kernels (C_out, 3, k, k) -> RGB tiles (C_out, k, k, 3), each
rescaled to [0, 1] on its own, as ``plotting.kernel_grid`` draws them. ``channel_tiles``: one
output channel of a deeper kernel (C_out, C_in, k, k) -> C_in grayscale tiles (C_in, k, k), each
rescaled on its own, as the notebook's ``feature_grid`` pictures show them.
"""
import torch

from ..filters import conv_layers, first_conv
from ..hooks import get_layer
from ..plotting import normalize_each
from . import verdict
from .verdict import Case, Mistake

__all__ = ["channel_tiles", "kernel_tiles"]


def _bank(n, c, k, seed):
    """(n, c, k, k) random kernels whose scales and offsets differ from filter to filter, as
    trained ones do (so one scale for the whole bank and one per filter give different tiles)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, c, k, k, generator=g)
    scale = 0.02 + torch.rand(n, 1, 1, 1, generator=g)
    offset = 0.1 * torch.randn(n, 1, 1, 1, generator=g)
    return (w * scale + offset).float()


def _weight(model, name):
    return get_layer(model, name).weight.detach()


def _span(x, dims):
    lo, hi = x.amin(dims, keepdim=True), x.amax(dims, keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(1e-12)


# --------------------------------------------------------------------------- kernel_tiles

def _tiles(weight):
    return normalize_each(weight).permute(0, 2, 3, 1)


def _whole_bank(weight):
    return _span(weight.float(), (0, 1, 2, 3)).permute(0, 2, 3, 1)


def _per_colour(weight):
    return _span(weight.float(), (2, 3)).permute(0, 2, 3, 1)


def _channels_first(weight):
    return normalize_each(weight)


def _reshaped(weight):
    n, c, k, _ = weight.shape
    return normalize_each(weight).reshape(n, k, k, c)


def _unscaled(weight):
    return weight.float().permute(0, 2, 3, 1)


TILES_MISTAKES = [
    Mistake(_whole_bank, "normalize each filter on its own, with its own min and max: one scale "
                         "for the whole bank turns the weak filters into flat grey tiles."),
    Mistake(_per_colour, "use one min and one max per filter, over all its 3*k*k values: "
                         "a separate scale per colour changes the filter's hue."),
    Mistake(_channels_first, "the colour axis must come last, (C_out, k, k, 3), as matplotlib's "
                             "imshow wants it: weight.permute(0, 2, 3, 1)."),
    Mistake(_reshaped, "reshape keeps the memory order, so it mixes colours and pixels; "
                       "move the colour axis with permute(0, 2, 3, 1)."),
    Mistake(_unscaled, "rescale to [0, 1]: subtract each filter's minimum, divide by its range."),
]


def kernel_tiles(student, model=None):
    """Check ``student(weight) -> (C_out, k, k, 3)`` against ``normalize_each`` + permute.

    Cases: random banks (7x7; 3x3, where channels-first and channels-last shapes agree; one
    11x11 filter) and the first-layer kernels of ``model`` (default: ``verdict.tiny_cnn()``).
    """
    model = verdict.tiny_cnn() if model is None else model
    stem = first_conv(model)
    real = _weight(model, stem)
    cases = [
        Case("a random bank of 5 filters 7x7", (_bank(5, 3, 7, seed=2),)),
        Case("a random bank of 6 filters 3x3", (_bank(6, 3, 3, seed=1),)),
        Case("one random 11x11 filter", (_bank(1, 3, 11, seed=3),)),
        Case(f"the model's first layer {stem!r} {tuple(real.shape)}", (real,)),
    ]
    return verdict.run("kernel_tiles", student, _tiles, cases, mistakes=TILES_MISTAKES,
                       hint="each tile is (w - min) / (max - min) with that filter's own min "
                            "and max over its 3*k*k values, colour axis last.")


# --------------------------------------------------------------------------- channel_tiles

def _channel(weight, channel):
    return normalize_each(weight[channel])


def _input_channel(weight, channel):
    return normalize_each(weight[:, channel])


def _whole_kernel(weight, channel):
    return _span(weight[channel].float(), (0, 1, 2))


def _raw(weight, channel):
    return weight[channel].float()


CHANNEL_MISTAKES = [
    Mistake(_input_channel, "weight[channel] is the kernel of output channel `channel`: C_in "
                            "tiles. weight[:, channel] is one input channel seen by every output."),
    Mistake(_whole_kernel, "rescale each tile on its own (its own min and max), like the "
                           "grayscale pictures above; one scale for the whole kernel leaves most "
                           "tiles flat."),
    Mistake(_raw, "rescale every tile to [0, 1]: subtract its minimum, divide by its range."),
]


def _deeper_conv(model):
    """The first conv after the stem with a k x k (k > 1) kernel, preferring a full one
    (C_in > 1) over a depthwise one."""
    stem = first_conv(model)
    deeper = [n for n in conv_layers(model, min_kernel=2) if n != stem]
    full = [n for n in deeper if get_layer(model, n).weight.shape[1] > 1]
    return (full or deeper or [stem])[0]


def channel_tiles(student, model=None):
    """Check ``student(weight, channel) -> (C_in, k, k)`` against ``normalize_each(weight[c])``.

    Cases: random kernels (C_out != C_in, odd sizes) and a deeper conv of ``model`` (default:
    ``verdict.tiny_cnn()``).
    """
    model = verdict.tiny_cnn() if model is None else model
    name = _deeper_conv(model)
    real = _weight(model, name)
    channel = len(real) // 2
    cases = [
        Case("a random (4, 6, 3, 3) kernel, channel 0", (_bank(4, 6, 3, seed=4), 0)),
        Case("a random (16, 8, 5, 5) kernel, channel 11", (_bank(16, 8, 5, seed=5), 11)),
        Case("a random (2, 5, 7, 7) kernel, channel 1", (_bank(2, 5, 7, seed=6), 1)),
        Case(f"the model's {name!r} {tuple(real.shape)}, channel {channel}", (real, channel)),
    ]
    return verdict.run("channel_tiles", student, _channel, cases, mistakes=CHANNEL_MISTAKES,
                       hint="take weight[channel] (C_in, k, k) and rescale each of its C_in "
                            "tiles to [0, 1] with the tile's own min and max.")
