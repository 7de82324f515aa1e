"""Figures the notebooks share: image grids, kernel grids, feature maps, heatmap overlays.

Every function returns a closed matplotlib Figure: the notebook displays it,
a widget callback returns it, and tests can inspect it.
"""
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from .images import to_numpy


def _grid(n, ncols, size):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.flat


def finish(fig, title=None, **title_kw):
    """Title (optional), tight layout, close: the figure is shown only where it is returned."""
    if title:
        fig.suptitle(title, **title_kw)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _as_array(image):
    if isinstance(image, torch.Tensor):
        return to_numpy(image) if image.dim() >= 3 and image.shape[-3] == 3 else image.detach().cpu().numpy()
    return np.asarray(image)


def show_images(images, titles=None, ncols=6, size=2.2, cmap=None, title=None):
    """A grid of (3, H, W) tensors in [0, 1] (or 2-D arrays, drawn with ``cmap``)."""
    images = list(images)
    fig, axes = _grid(len(images), ncols, size)
    for i, (ax, img) in enumerate(zip(axes, images)):
        ax.imshow(_as_array(img), cmap=cmap)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    return finish(fig, title)


def normalize_each(tensor):
    """Scale every item of a (N, ...) tensor to [0, 1] on its own (kernels, feature maps)."""
    t = tensor.detach().float().cpu()
    flat = t.reshape(len(t), -1)
    lo, hi = flat.min(1).values, flat.max(1).values
    shape = (-1,) + (1,) * (t.dim() - 1)
    return (t - lo.view(shape)) / (hi - lo).clamp_min(1e-12).view(shape)


def kernel_grid(weight, ncols=8, size=1.0, title=None):
    """First-layer kernels (C_out, 3, k, k) as RGB tiles, each normalized on its own."""
    tiles = normalize_each(weight)
    fig, axes = _grid(len(tiles), ncols, size)
    for ax, tile in zip(axes, tiles):
        ax.imshow(tile.permute(1, 2, 0).numpy(), interpolation="nearest")
    return finish(fig, title)


def feature_grid(maps, ncols=8, size=1.2, titles=None, highlight=(), cmap="viridis", title=None):
    """Feature maps (C, H, W) as a grid of heatmaps; channels in ``highlight`` get a red frame."""
    maps = maps.detach().float().cpu()
    fig, axes = _grid(len(maps), ncols, size)
    for i, (ax, fmap) in enumerate(zip(axes, maps)):
        ax.imshow(fmap.numpy(), cmap=cmap, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
        if i in highlight:
            ax.axis("on")
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("red"), spine.set_linewidth(2.5)
    return finish(fig, title)


def upsample(heatmap, size):
    """(h, w) map -> (size, size) by bilinear interpolation, as a numpy array."""
    t = torch.as_tensor(np.asarray(heatmap, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def overlay(ax, image, heatmap, alpha=0.5, cmap="inferno"):
    """Draw a photo and a heatmap (any size, upsampled) over it on ``ax``."""
    img = _as_array(image)
    ax.imshow(img)
    ax.imshow(upsample(heatmap, img.shape[:2]), cmap=cmap, alpha=alpha)
    ax.axis("off")
    return ax


def signed_map(ax, heatmap, limit=None, cmap="RdBu_r"):
    """Draw a signed (H, W) map on ``ax`` with a colour scale symmetric around 0 (white).

    ``limit``: the value drawn darkest (default: the largest magnitude, or 1 for an all-zero
    map). Returns the image, e.g. for ``fig.colorbar``.
    """
    m = _as_array(heatmap)
    limit = float(limit if limit is not None else abs(m).max()) or 1.0
    return ax.imshow(m, cmap=cmap, vmin=-limit, vmax=limit)


def image_and_maps(image, maps, titles, cmap="inferno", size=3.0, title=None):
    """The photo followed by one or more 2-D maps (saliency, occlusion...) in a row."""
    fig, axes = _grid(1 + len(maps), 1 + len(maps), size)
    axes = list(axes)
    axes[0].imshow(_as_array(image))
    axes[0].set_title(titles[0], fontsize=9)
    for ax, m, t in zip(axes[1:], maps, titles[1:]):
        ax.imshow(_as_array(m), cmap=cmap)
        ax.set_title(t, fontsize=9)
    return finish(fig, title)


def save_gif(frames, path, ms_per_frame=120):
    """Write ``frames`` (PIL images, e.g. a panel's ``frames``) as an animated GIF that loops.

    Frames of other sizes (deep dream's octaves) are resized to the last frame's size.
    """
    from pathlib import Path

    if len(frames) < 2:
        raise ValueError(f"An animation needs at least 2 frames, got {len(frames)}; only "
                         "optimizations (feature visualization, deep dream, ...) record frames.")
    size = frames[-1].size
    images = [f.convert("RGB").resize(size) for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=ms_per_frame, loop=0)
    return Path(path)
