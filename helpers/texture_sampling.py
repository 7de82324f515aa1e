"""Non-parametric texture synthesis by neighbourhood sampling (Efros & Leung, ICCV 1999).

The texture grows outwards from a small seed copied from the sample, one pixel at a time.
For each new pixel, the already synthesized pixels around it (a ``window`` x ``window``
neighbourhood, with holes where nothing has been synthesized yet) are compared with every
window of the sample by a Gaussian-weighted sum of squared differences (SSD). The best
distance ``d_min`` is found, every sample window within ``d_min * (1 + epsilon)`` is a
candidate, and the centre pixel of one candidate, chosen at random, is copied. The model of
the texture is the sample itself: nothing is learned, every output pixel exists in the sample.

A. Efros & T. Leung, "Texture synthesis by non-parametric sampling", ICCV 1999.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .images import as_batch
from .plotting import show_images


@dataclass
class SampledTexture:
    """What ``efros_leung`` returns.

    Attributes:
        image: (3, size, size) synthesized texture in [0, 1].
        source: (size, size, 2) long tensor: the (row, column) of the sample pixel each output
            pixel was copied from.
        seed_at: (row, column) of the seed's top-left pixel in the output.
        window, epsilon: the settings used.
    """
    image: torch.Tensor
    source: torch.Tensor
    seed_at: tuple
    window: int
    epsilon: float

    def coherence(self):
        """Share of horizontally or vertically neighbouring output pixels that were copied from
        neighbouring sample pixels at the same offset: 1 for a verbatim copy of the sample,
        near 0 for pixels drawn independently."""
        s = self.source
        right = (s[:, 1:] - s[:, :-1] == torch.tensor([0, 1])).all(-1)
        down = (s[1:] - s[:-1] == torch.tensor([1, 0])).all(-1)
        return float((right.sum() + down.sum()) / (right.numel() + down.numel()))


def _gaussian(window):
    """(window * window,) Gaussian weights, sigma = window / 6.4 as in Efros & Leung."""
    r = torch.arange(window, dtype=torch.float32) - window // 2
    g = torch.exp(-r ** 2 / (2 * (window / 6.4) ** 2))
    return (g[:, None] * g[None, :]).reshape(-1)


def _check(sample, size, window, seed_size, epsilon):
    if not isinstance(window, int) or window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3 (3, 5, 7, 9, 11, ...), got {window!r}.")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer (the output side), got {size!r}.")
    h, w = sample.shape[-2:]
    if min(h, w) < window + 2:
        raise ValueError(f"The sample ({h}x{w} px) is too small for a {window}x{window} window: "
                         f"it needs at least {window + 2} px per side; use a smaller window "
                         f"or a larger sample.")
    if not isinstance(seed_size, int) or not 1 <= seed_size <= min(h, w, size):
        raise ValueError(f"seed_size must be an integer between 1 and {min(h, w, size)} "
                         f"(the sample's and the output's side), got {seed_size!r}.")
    if not epsilon >= 0:
        raise ValueError(f"epsilon must be >= 0 (0: always the best match), got {epsilon!r}.")


def efros_leung(sample, size=48, window=9, epsilon=0.1, seed_size=3, seed=0):
    """Grow a texture pixel by pixel from a sample (Efros & Leung, 1999).

    Args:
        sample: (3, h, w) texture in [0, 1]; both sides at least ``window + 2``.
        size: side of the square output.
        window: odd side of the neighbourhood compared with the sample (the paper: 5-21; it
            should cover the largest regular structure of the texture).
        epsilon: tolerance; every sample window within ``d_min * (1 + epsilon)`` may be copied.
        seed_size: side of the seed copied from a random place of the sample to the centre.
        seed: random seed (seed position, visiting order, choice among candidates).
    Returns:
        ``SampledTexture`` with the image and, per output pixel, where in the sample it came from.
    """
    sample = as_batch(sample)[0].detach().cpu().float()
    _check(sample, size, window, seed_size, epsilon)
    gen = torch.Generator().manual_seed(seed)
    c, h, w = sample.shape
    half = window // 2
    # Every complete window of the sample, flattened; its centre is (row, col).
    windows = F.unfold(sample[None], window)[0].T.contiguous()          # (P, c * window^2)
    energy = windows ** 2
    centres = torch.stack(torch.meshgrid(torch.arange(half, h - half), torch.arange(half, w - half),
                                         indexing="ij"), -1).reshape(-1, 2)
    gauss = _gaussian(window)

    # The canvas has a border of ``half`` empty pixels so every neighbourhood is a full window.
    side = size + 2 * half
    canvas = torch.zeros(c, side, side)
    filled = torch.zeros(side, side, dtype=torch.bool)
    source = torch.full((size, size, 2), -1, dtype=torch.long)
    sy = int(torch.randint(0, h - seed_size + 1, (1,), generator=gen))
    sx = int(torch.randint(0, w - seed_size + 1, (1,), generator=gen))
    oy = ox = (size - seed_size) // 2
    canvas[:, half + oy:half + oy + seed_size, half + ox:half + ox + seed_size] = \
        sample[:, sy:sy + seed_size, sx:sx + seed_size]
    filled[half + oy:half + oy + seed_size, half + ox:half + ox + seed_size] = True
    rows, cols = torch.meshgrid(torch.arange(seed_size), torch.arange(seed_size), indexing="ij")
    source[oy + rows, ox + cols] = torch.stack([sy + rows, sx + cols], -1)
    inside = torch.zeros(side, side, dtype=torch.bool)
    inside[half:half + size, half:half + size] = True

    ones = torch.ones(1, 1, window, window)
    while not filled[inside].all():
        # Next layer: empty pixels touching the texture, most known neighbours first.
        grown = F.max_pool2d(filled[None, None].float(), 3, 1, 1)[0, 0].bool()
        frontier = (grown & ~filled & inside).nonzero()
        known = F.conv2d(filled[None, None].float(), ones, padding=half)[0, 0]
        frontier = frontier[torch.randperm(len(frontier), generator=gen)]
        order = torch.argsort(-known[frontier[:, 0], frontier[:, 1]], stable=True)
        for y, x in frontier[order].tolist():
            mask = filled[y - half:y + half + 1, x - half:x + half + 1].reshape(-1)
            weight = gauss * mask
            weight = (weight / weight.sum()).repeat(c)                    # unfold's order: c first
            patch = canvas[:, y - half:y + half + 1, x - half:x + half + 1].reshape(-1)
            # sum_k g_k (W_k - T_k)^2 for every sample window W at once: two matrix-vector products.
            ssd = (energy @ weight - 2 * (windows @ (weight * patch))
                   + (weight * patch * patch).sum()).clamp_min(0)
            best = ssd.min()
            candidates = (ssd <= best * (1 + epsilon)).nonzero()[:, 0]
            pick = candidates[torch.randint(len(candidates), (1,), generator=gen)][0]
            r, q = centres[pick].tolist()
            canvas[:, y, x] = sample[:, r, q]
            filled[y, x] = True
            source[y - half, x - half] = centres[pick]
    return SampledTexture(canvas[:, half:half + size, half:half + size].clone(), source,
                          (oy, ox), window, float(epsilon))


def source_map(result, sample_shape):
    """(3, size, size) picture of where each output pixel came from: red = sample row,
    green = sample column. Patches copied whole show up as smooth ramps."""
    h, w = sample_shape[-2:]
    s = result.source.float()
    rgb = torch.stack([s[..., 0] / max(h - 1, 1), s[..., 1] / max(w - 1, 1),
                       torch.full(s.shape[:2], 0.5)])
    return rgb.clamp(0, 1)


def sampling_figure(sample, results, size=2.4, title=None):
    """The sample, then each result beside its source map (red: sample row, green: column)."""
    images, titles = [sample], [f"sample, {sample.shape[-1]} px"]
    for r in results:
        images += [r.image, source_map(r, sample.shape)]
        titles += [f"window {r.window}, {r.image.shape[-1]} px",
                   f"copied from (coherence {r.coherence():.0%})"]
    return show_images(images, titles, ncols=len(images), size=size, title=title)


__all__ = ["SampledTexture", "efros_leung", "sampling_figure", "source_map"]
