"""Regularizers for image optimization, each a small callable with its strength as argument.

Two kinds, as in Yosinski et al. (2015) and Lucid:

* transforms ``t(image) -> image`` applied (differentiably) to the (N, 3, H, W)
  image before the forward pass: ``Jitter``, ``Pad``, ``RandomScale``,
  ``RandomRotate``, ``Upsample`` (transformation robustness, Olah et al., 2017);
* post-step operations ``op(pixels, grad, step)`` that edit the pixel tensor in
  place after each optimizer step, under ``no_grad``: ``Decay`` (L2),
  ``BlurEvery`` (Gaussian blur), ``ClipSmallNorm`` and
  ``ClipSmallContribution``. ``grad`` is the loss gradient w.r.t. the pixels
  from that step. They need a ``pixel_image`` parameterization.

The L2 and total-variation penalties are objectives: ``helpers.objectives.l2`` / ``tv``.
Strength 0 (or sigma 0, percentile 0) switches any of them off, so a notebook's
ablation switch is just a value.
"""
import math

import torch
import torch.nn.functional as F

from .checks import check_strength

GREY = 0.5  # the "zero" of a mean-subtracted image, in [0, 1] pixel units


def _randint(n):
    return int(torch.randint(n, (1,)).item()) if n > 1 else 0


class Transform:
    """Base of the random image transforms (reproducible under ``torch.manual_seed``)."""

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Jitter(Transform):
    """Shift the image by a random offset in [-pixels, pixels] (circularly, so the size stays)."""

    def __init__(self, pixels=8):
        self.pixels = int(pixels)

    def __call__(self, image):
        if self.pixels <= 0:
            return image
        dx = _randint(2 * self.pixels + 1) - self.pixels
        dy = _randint(2 * self.pixels + 1) - self.pixels
        return torch.roll(image, shifts=(dy, dx), dims=(-2, -1))


class Pad(Transform):
    """Pad every side by ``pixels`` with a constant (grey) so jitter reveals no wrapped border."""

    def __init__(self, pixels=12, value=GREY):
        self.pixels, self.value = int(pixels), float(value)

    def __call__(self, image):
        return F.pad(image, [self.pixels] * 4, mode="constant", value=self.value)


class RandomScale(Transform):
    """Resize by a factor drawn from ``scales`` (the image size changes, like Lucid's)."""

    def __init__(self, scales=tuple(1 + (i - 5) / 50 for i in range(11))):
        self.scales = tuple(float(s) for s in scales)

    def __call__(self, image):
        s = self.scales[_randint(len(self.scales))]
        if s == 1:
            return image
        h, w = image.shape[-2:]
        return F.interpolate(image, size=(math.ceil(s * h), math.ceil(s * w)), mode="bilinear",
                             align_corners=True)


class RandomRotate(Transform):
    """Rotate about the centre by an angle (degrees) drawn from ``angles``; corners become 0."""

    def __init__(self, angles=tuple(range(-10, 11)) + 5 * (0,)):
        self.angles = tuple(float(a) for a in angles)

    def __call__(self, image):
        a = math.radians(self.angles[_randint(len(self.angles))])
        if a == 0:
            return image
        n, _, h, w = image.shape
        cos, sin = math.cos(a), math.sin(a)
        # affine_grid works in normalized coordinates; the aspect ratio keeps angles true.
        theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]],
                             dtype=image.dtype, device=image.device).expand(n, 2, 3)
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)


class Upsample(Transform):
    """Resize to ``size`` pixels (the side the network was trained on, typically 224)."""

    def __init__(self, size=224):
        self.size = int(size)

    def __call__(self, image):
        if tuple(image.shape[-2:]) == (self.size, self.size):
            return image
        return F.interpolate(image, size=(self.size, self.size), mode="bilinear",
                             align_corners=True)


def standard_transforms():
    """Lucid's transformation-robustness recipe: pad 12, jitter 8, scale, rotate, jitter 4.

    Lucid's jitter is a translation by 0..d pixels; ours by -d..d (circular) pixels.
    """
    return [Pad(12), Jitter(8), RandomScale(), RandomRotate(), Jitter(4)]


# ---- post-step operations on the pixels ----------------------------------------------------

class PostStep:
    """Base of the in-place pixel edits run after each optimizer step."""

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Decay(PostStep):
    """L2 decay (Yosinski et al., 2015): ``x <- grey + (1 - strength) * (x - grey)`` each step."""

    def __init__(self, strength=0.01, center=GREY):
        if not 0 <= strength < 1:
            raise ValueError(f"decay strength must be in [0, 1), got {strength}.")
        self.strength, self.center = float(strength), center

    def __call__(self, pixels, grad=None, step=0):
        if self.strength:
            pixels.sub_(self.center).mul_(1 - self.strength).add_(self.center)


def gaussian_kernel(sigma):
    """1-D Gaussian kernel (radius ceil(3 sigma)), summing to 1."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(image, sigma):
    """Separable Gaussian blur of (N, C, H, W) images with reflected borders (``sigma`` 0: none)."""
    if check_strength(sigma, "sigma") == 0:
        return image
    k = gaussian_kernel(sigma).to(image)
    r, c = len(k) // 2, image.shape[1]
    h, w = image.shape[-2:]
    mode = "reflect" if r < min(h, w) else "replicate"
    x = F.pad(image, [r, r, 0, 0], mode=mode)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, [0, 0, r, r], mode=mode)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class BlurEvery(PostStep):
    """Gaussian blur with ``sigma`` pixels every ``k`` steps (Yosinski et al., 2015)."""

    def __init__(self, k=4, sigma=0.5):
        if int(k) < 1:
            raise ValueError(f"BlurEvery needs k >= 1, got {k}.")
        self.k, self.sigma = int(k), float(sigma)

    def __call__(self, pixels, grad=None, step=0):
        if self.sigma > 0 and (step + 1) % self.k == 0:
            pixels.copy_(gaussian_blur(pixels, self.sigma))


def _set_smallest(pixels, score, percentile, center):
    """Set the ``percentile`` % of pixels with the smallest ``score`` (N, H, W) to ``center``.

    As in Yosinski et al.'s code, the percentile is over all pixels, including those already
    grey (score 0): once ``percentile`` % of the image is grey nothing more is reset. So a
    contribution clipping after a norm clipping only acts beyond the norm's percentile, and
    pixels outside a neuron's receptive field (zero contribution) are spent first.
    """
    n, h, w = score.shape
    k = int(round(percentile / 100 * h * w))
    if k <= 0:
        return
    idx = score.reshape(n, -1).topk(k, dim=1, largest=False).indices
    mask = torch.zeros(n, h * w, dtype=torch.bool, device=pixels.device)
    mask.scatter_(1, idx, True)
    pixels.masked_fill_(mask.view(n, 1, h, w), center)


def _check_percentile(p):
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be in 0..100, got {p}.")
    return float(p)


class ClipSmallNorm(PostStep):
    """Reset the ``percentile`` % of pixels with the smallest norm to grey (Yosinski et al., 2015).

    The norm is that of the pixel's RGB deviation from grey, i.e. of the mean-subtracted
    image, so "set to zero" there means "set to grey" here.
    """

    def __init__(self, percentile=10, center=GREY):
        self.percentile, self.center = _check_percentile(percentile), float(center)

    def __call__(self, pixels, grad=None, step=0):
        if self.percentile:
            # squared norm: same order, and far cheaper than Tensor.norm over 3 channels
            norm2 = (pixels - self.center).pow(2).sum(dim=1)
            _set_smallest(pixels, norm2, self.percentile, self.center)


class ClipSmallContribution(PostStep):
    """Reset the pixels that contribute least to the objective to grey (Yosinski et al., 2015).

    A pixel's contribution is the first-order estimate of how much the loss changes when it
    is set to grey: ``|sum_c (x - grey) * dLoss/dx|``.
    """

    def __init__(self, percentile=10, center=GREY):
        self.percentile, self.center = _check_percentile(percentile), float(center)

    def __call__(self, pixels, grad=None, step=0):
        if self.percentile and grad is not None:
            score = ((pixels - self.center) * grad).sum(dim=1).abs()
            _set_smallest(pixels, score, self.percentile, self.center)


def high_frequency_energy(image, sigma=1.0):
    """Mean squared difference between (N, C, H, W) images and their Gaussian blur."""
    return (image - gaussian_blur(image, sigma)).pow(2).mean().item()
