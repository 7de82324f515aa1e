"""The image patches that excite a channel most (top patches).

For every image of a data set, the strongest unit of a channel, cropped to that
unit's receptive field (``helpers.receptive_field``). Zeiler & Fergus,
"Visualizing and Understanding Convolutional Networks", ECCV 2014, and Girshick
et al., "Rich feature hierarchies", CVPR 2014.
"""
from collections import namedtuple

import matplotlib.pyplot as plt
import torch

from . import hooks
from .cache import cached, model_identity, on_disk
from .data import ImageSet, layer_outputs
from .images import as_batch, resize
from .receptive_fields import receptive_field, unit_box

Patch = namedtuple("Patch", "value image row col box patch")
Patch.__doc__ = ("One top patch: activation ``value``, source ``image`` index, unit position (``row``, "
                 "``col``), ``box`` = (top, left, bottom, right) in image pixels (clipped), the "
                 "(3, h, w) ``patch`` itself.")


# --------------------------------------------------------------------------- top patches

def channel_maxima(model, layer, data, batch_size=8, cache=True, cache_dir=None, progress=True):
    """For every image and channel, the largest activation of ``layer`` and where it is.

    One pass over the data set (cached on disk like ``extract_features``) serves every channel;
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
    images = as_batch(data.images if isinstance(data, ImageSet) else data, name="images")
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
                                 and not (cache and on_disk(fields[n], cache_dir, prefix="maxima"))]
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


def top_patches(model, layer, channel, data, k=6, batch_size=8, cache=True, cache_dir=None,
                progress=True):
    """The ``k`` images whose strongest ``channel`` unit in ``layer`` fires most, cropped to that unit.

    One patch per image (the best position in it), so the k patches come from k
    different images.

    Args:
        data: ``ImageSet`` or (N, 3, S, S) tensor in [0, 1] (use ``with_crops`` for more positions).
    Returns:
        list of ``Patch``, strongest first.
    """
    images = as_batch(data.images if isinstance(data, ImageSet) else data, name="images")
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
            crops.append(resize(crop, s)[0])
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
    images = as_batch(data.images if isinstance(data, ImageSet) else data, name="images")
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


__all__ = [
    "Patch",
    "channel_maxima",
    "patch_grid",
    "show_patches",
    "top_patches",
    "with_crops",
]
