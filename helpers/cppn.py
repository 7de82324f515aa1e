"""CPPN images: a small network from pixel coordinates to colours (notebook 09).

A compositional pattern-producing network (CPPN, Stanley 2007) computes the colour of
every pixel from its coordinates ``(x, y, r)`` alone, ``r`` being the distance to the
centre. Its first layer is periodic (sine and cosine of linear maps of the coordinates:
stripes and rings), the next ones are smooth per-pixel maps of those, so the image it draws
is made of regular, repeated shapes. Nguyen, Yosinski & Clune (2015) *evolved* CPPNs to
fool an ImageNet network and got exactly such patterns. Here the same kind of network is
optimized by gradient, as Mordvintsev et al. (Distill 2018) do: ``cppn_image`` is an image
parameterization like ``pixel_image`` and runs in ``optimize.optimize``.
"""
import math
import numbers

import torch
from torch import nn

from .params import ImageParam


def composite_activation(x):
    """``atan(x)`` next to ``atan(x)**2``, scaled to unit variance (Mordvintsev et al., 2018).

    The odd and the even part together let a few layers draw both edges and ridges.
    Doubles the channels: (..., C) -> (..., 2C).
    """
    x = torch.atan(x)
    return torch.cat([x / 0.67, x * x / 0.6], dim=-1)


def periodic_activation(x, frequency=15.0):
    """``sin`` and ``cos`` of ``frequency * x``, scaled to unit variance (Stanley's CPPNs use
    periodic functions for repeated motifs). Doubles the channels: (..., C) -> (..., 2C)."""
    x = frequency * x
    return torch.cat([torch.sin(x), torch.cos(x)], dim=-1) * math.sqrt(2.0)


def coordinates(height, width):
    """(H * W, 3) inputs of a CPPN: ``x``, ``y`` with unit standard deviation, and ``r``.

    The longer side spans [-sqrt(3), sqrt(3)] (a uniform variable of variance 1); the other
    keeps the aspect ratio, so a circle stays round.
    """
    side = math.sqrt(3.0) / max(height - 1, width - 1, 1)
    ys = (torch.arange(height, dtype=torch.float32) - (height - 1) / 2) * 2 * side
    xs = (torch.arange(width, dtype=torch.float32) - (width - 1) / 2) * 2 * side
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    r = (x * x + y * y).sqrt()
    return torch.stack([x, y, r], dim=-1).reshape(-1, 3)


class CPPNImage(ImageParam):
    """``batch`` CPPNs drawing (batch, 3, H, W) images in [0, 1]; their weights are optimized.

    Layer 1 is ``periodic_activation`` (its ``frequency`` sets how many stripes cross the
    image), layers 2.. are ``composite_activation``. Weights are normal with variance
    1/fan-in (activations neither vanish nor explode with depth); the output layer starts
    at zero, i.e. every image starts grey, and a sigmoid keeps colours in [0, 1].
    """

    def __init__(self, size, batch=1, hidden=16, layers=4, frequency=15.0, seed=None):
        super().__init__()
        self.h, self.w = size
        self.frequency = float(frequency)
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(int(seed))
        self.register_buffer("coords", coordinates(self.h, self.w), persistent=False)
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        fan_in = 3
        for _ in range(layers):
            w = torch.randn(batch, hidden, fan_in, generator=g) / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(batch, 1, hidden)))
            fan_in = 2 * hidden  # both activations double the channels
        self.out_weight = nn.Parameter(torch.zeros(batch, 3, fan_in))
        self.out_bias = nn.Parameter(torch.zeros(batch, 1, 3))

    def render(self, coords, height, width):
        """The images at the given (H * W, 3) coordinates, as (batch, 3, H, W)."""
        x = coords.expand(len(self.out_weight), -1, -1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = torch.baddbmm(b, x, w.transpose(1, 2))
            x = periodic_activation(z, self.frequency) if i == 0 else composite_activation(z)
        rgb = torch.sigmoid(torch.baddbmm(self.out_bias, x, self.out_weight.transpose(1, 2)))
        return rgb.transpose(1, 2).reshape(-1, 3, height, width)

    def forward(self):
        return self.render(self.coords, self.h, self.w)

    @torch.no_grad()
    def at_size(self, size):
        """The same images drawn at another resolution, (batch, 3, H, W): a CPPN has no pixels."""
        h, w = _size(size)
        return self.render(coordinates(h, w).to(self.coords.device), h, w)

    def extra_repr(self):
        return (f"size={(self.h, self.w)}, batch={len(self.out_weight)}, "
                f"layers={len(self.weights)}, hidden={self.weights[0].shape[1]}, "
                f"frequency={self.frequency:g}")


def _size(size):
    if isinstance(size, numbers.Integral):
        size = (size, size)
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"An image size must be positive, got {size}.")
    return h, w


def cppn_image(size=128, batch=1, hidden=16, layers=4, frequency=15.0, seed=None):
    """A CPPN parameterization: images drawn by small coordinate networks (Stanley, 2007).

    Args:
        size: side (int) or (H, W) of the images it draws.
        batch: number of images (one independent network each).
        hidden: channels of each hidden layer (twice as many after the activation).
        layers: hidden layers (the first periodic); more layers draw more intricate patterns.
        frequency: of the first layer's sines; higher gives finer stripes.
        seed: makes the random initial weights reproducible.
    Returns:
        ``CPPNImage``; ``forward()`` gives the (batch, 3, H, W) image in [0, 1] (grey at
        the start), ``at_size(s)`` the same images at another resolution.
    Raises:
        ValueError: a non-positive size, batch, width, depth or frequency.
    """
    h, w = _size(size)
    for name, value in (("batch", batch), ("hidden", hidden), ("layers", layers)):
        if not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"cppn_image needs an integer {name} >= 1, got {value!r}.")
    if not frequency > 0:
        raise ValueError(f"cppn_image needs a frequency > 0, got {frequency!r}.")
    return CPPNImage((h, w), int(batch), int(hidden), int(layers), frequency, seed)
