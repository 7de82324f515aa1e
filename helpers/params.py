"""Image parameterizations: what the optimizer changes to produce an image.

Each is an ``nn.Module`` whose ``forward()`` (or ``.image()``) returns the
(N, 3, H, W) image in [0, 1] and whose parameters are what the optimizer
updates. ``pixel_image`` optimizes the pixels themselves (Simonyan et al.,
2014; Yosinski et al., 2015) and exposes them as ``.pixels`` so post-step
regularizers can edit them in place. ``fourier_image`` optimizes a scaled
Fourier spectrum in a decorrelated colour space (Olah et al., Distill 2017),
which makes plain gradient steps favour low frequencies and natural colours.
"""
import numbers

import numpy as np
import torch
from torch import nn

from .checks import check_size
from .images import as_batch

# Square root of the colour covariance of ImageNet pixels (Lucid's constants), columns
# scaled so the largest has norm 1.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                            [0.27, 0.00, -0.05],
                            [0.27, -0.09, 0.03]])
_COLOR_SQRT = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


class ImageParam(nn.Module):
    """Base class: ``forward()`` -> (N, 3, H, W) image in [0, 1].

    Subclasses whose parameters are the pixels themselves register them as ``pixels``.
    """

    def image(self):
        return self()

    @torch.no_grad()
    def after_step(self):
        """Keep the parameters valid after an optimizer step (e.g. clamp pixels to [0, 1])."""

    @property
    def size(self):
        with torch.no_grad():
            return tuple(self().shape[-2:])


class PixelImage(ImageParam):
    """The pixels themselves, kept in [0, 1] by clamping after every step."""

    def __init__(self, init):
        super().__init__()
        self.pixels = nn.Parameter(init.detach().clone().float().clamp(0, 1))

    def forward(self):
        return self.pixels

    @torch.no_grad()
    def after_step(self):
        self.pixels.clamp_(0, 1)

    def extra_repr(self):
        return f"shape={tuple(self.pixels.shape)}"


def _generator(seed, device="cpu"):
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def _size(size):
    size = check_size(size)  # 0, negative or fractional sizes: a clear error
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    h, w = (int(s) for s in size)
    return h, w


def pixel_image(size=224, sd=None, batch=1, seed=None):
    """Optimize pixels directly.

    Args:
        size: side (int) or (H, W) for a noise start, or an initial image (3, H, W) or
            (N, 3, H, W) in [0, 1] (a photo to start from).
        sd: standard deviation of Gaussian noise around grey 0.5 for a noise start
            (default 0.01), or noise added to an initial image (default none).
        batch: number of images for a noise start.
        seed: makes the noise reproducible.
    Returns:
        ``PixelImage`` whose ``forward()`` is the (N, 3, H, W) image in [0, 1].
    """
    if isinstance(size, (torch.Tensor, np.ndarray)):
        init = as_batch(size)
        if sd:
            init = init + sd * torch.randn(init.shape, generator=_generator(seed)).to(init.device)
    else:
        h, w = _size(size)
        noise = torch.randn(batch, 3, h, w, generator=_generator(seed))
        init = 0.5 + (0.01 if sd is None else sd) * noise
    return PixelImage(init)


def _freqs(h, w):
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return (fx * fx + fy * fy).sqrt()


class FourierImage(ImageParam):
    """A spectrum scaled by 1/frequency, inverse FFT, colour decorrelation, then a sigmoid.

    Following Olah et al. (Distill 2017) and Lucid: equal steps on every coefficient
    then change low frequencies more than high ones, so images come out smoother.
    """

    def __init__(self, spectrum, size, decorrelate=True, fft=True, decay_power=1.0):
        super().__init__()
        self.h, self.w = size
        self.fft, self.decorrelate = fft, decorrelate
        self.coeffs = nn.Parameter(spectrum)
        if fft:
            freqs = _freqs(self.h, self.w)
            scale = 1.0 / freqs.clamp_min(1.0 / max(self.h, self.w)) ** decay_power
            self.register_buffer("scale", scale[..., None].float(), persistent=False)
        self.register_buffer("color", _COLOR_SQRT.clone(), persistent=False)

    def raw(self):
        if not self.fft:
            return self.coeffs
        spectrum = torch.view_as_complex(self.scale * self.coeffs)
        # Lucid divides by 4: a brighter start saturates the sigmoid.
        return torch.fft.irfft2(spectrum, s=(self.h, self.w), norm="ortho") / 4

    def forward(self):
        x = self.raw()
        if self.decorrelate:
            x = torch.einsum("nchw,dc->ndhw", x, self.color)
        return torch.sigmoid(x)

    def extra_repr(self):
        return f"size={(self.h, self.w)}, fft={self.fft}, decorrelate={self.decorrelate}"


def fourier_image(size=224, decorrelate=True, fft=True, sd=0.01, batch=1, seed=None,
                  decay_power=1.0):
    """Decorrelated-colour, Fourier-parameterized image (Olah et al., Distill 2017).

    Args:
        size: side (int) or (H, W) for a random start, or an initial image (3, H, W) or
            (N, 3, H, W) in [0, 1] that the parameters reproduce exactly (up to 1e-4).
        decorrelate: optimize in a colour space whose axes are uncorrelated on ImageNet.
        fft: optimize the (1/f-scaled) spectrum instead of the pixels.
        sd: standard deviation of the random start.
    Returns:
        ``FourierImage``; ``forward()`` gives the (N, 3, H, W) image in [0, 1].
    """
    if isinstance(size, (torch.Tensor, np.ndarray)):
        init = as_batch(size, "cpu")
        h, w = init.shape[-2:]
        param = FourierImage(torch.zeros(1), (h, w), decorrelate, fft, decay_power)
        x = torch.logit(init.clamp(1e-4, 1 - 1e-4))
        if decorrelate:
            x = torch.einsum("nchw,dc->ndhw", x, torch.linalg.inv(param.color))
        if fft:
            spec = torch.fft.rfft2(x * 4, norm="ortho")
            x = torch.view_as_real(spec) / param.scale
        param.coeffs = nn.Parameter(x.contiguous())
        return param
    h, w = _size(size)
    shape = (batch, 3, h, w // 2 + 1, 2) if fft else (batch, 3, h, w)
    return FourierImage(sd * torch.randn(shape, generator=_generator(seed)), (h, w), decorrelate,
                        fft, decay_power)


PARAMETERIZATIONS = ("pixel", "fourier")


def image_param(kind, init=224, sd=None, batch=1, seed=None):
    """The one switch between the parameterizations: ``pixel_image`` or ``fourier_image``.

    Args:
        kind: ``"pixel"`` or ``"fourier"``.
        init: side, (H, W), or an initial image (3, H, W) / (N, 3, H, W) in [0, 1].
        sd: noise of a random start (None: the parameterization's own default).
        batch: images for a random start.
        seed: makes the noise reproducible.
    Raises:
        ValueError: an unknown ``kind``, naming the valid ones.
    """
    if kind == "pixel":
        return pixel_image(init, sd=sd, batch=batch, seed=seed)
    if kind == "fourier":
        return fourier_image(init, batch=batch, seed=seed,
                             **({} if sd is None else {"sd": sd}))
    raise ValueError(f"Unknown parameterization {kind!r}: choose one of "
                     f"{', '.join(map(repr, PARAMETERIZATIONS))}.")
