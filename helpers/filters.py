"""Convolution kernels as pictures, and Gabor-like filters learned from natural image patches."""
import numpy as np
import torch
from torch import nn

from .hooks import get_layer
from .images import load_image


def conv_layers(model, min_kernel=1):
    """Names of the model's Conv2d layers whose kernels are at least ``min_kernel`` wide."""
    return [n for n, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size[0] >= min_kernel]


def first_conv(model):
    """Name of the first convolution that sees the RGB image (3 input channels)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and m.in_channels == 3:
            return name
    raise ValueError(f"{type(model).__name__} has no Conv2d with 3 input channels.")


def kernel(model, layer, channel):
    """The weights of output ``channel`` of conv ``layer``: (C_in / groups, k, k) tensor."""
    conv = get_layer(model, layer)
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"Layer {layer!r} is a {type(conv).__name__}, not a Conv2d. "
                         f"Conv layers: {', '.join(conv_layers(model)[:6])}, ...")
    if not 0 <= channel < conv.out_channels:
        raise ValueError(f"Channel {channel} is out of range for {layer!r}: valid are "
                         f"0..{conv.out_channels - 1}.")
    return conv.weight[channel].detach().float().cpu()


def random_patches(names=("chelsea", "coffee", "astronaut", "rocket", "china", "flower"),
                   size=11, count=12000, image_size=256, seed=0):
    """(count, 3 * size * size) array of random patches of the shipped photos, each mean-centred."""
    rng = np.random.default_rng(seed)
    images = [load_image(n, image_size).numpy() for n in names]
    out = np.empty((count, 3 * size * size), np.float32)
    for i in range(count):
        img = images[rng.integers(len(images))]
        y, x = rng.integers(0, image_size - size, 2)
        patch = img[:, y:y + size, x:x + size].reshape(-1)
        out[i] = patch - patch.mean()
    return out


def learn_filters(patches, n=64, size=11, seed=0, max_iter=400):
    """Independent components of natural image patches (Olshausen & Field; Bell & Sejnowski).

    FastICA writes each patch as ``x = A s`` with independent, sparse ``s``; the rows of the
    unmixing matrix ``W`` (``s = W x``, scikit-learn's ``components_``) are filters applied to a
    patch by a dot product, like a first-layer kernel, and look like the oriented edge and
    colour-blob detectors of AlexNet's first layer and of V1. The columns of ``A``
    (``mixing_``) would be the patterns the patches are built from; they are not returned.
    Returns (n, 3, size, size) filters (rows of ``W``), sorted by the energy of their responses.
    """
    from sklearn.decomposition import FastICA
    ica = FastICA(n_components=n, whiten="unit-variance", random_state=seed, max_iter=max_iter,
                  tol=1e-3)
    responses = ica.fit_transform(patches)
    order = np.argsort(-np.abs(responses).mean(0))
    return torch.from_numpy(ica.components_[order].reshape(n, 3, size, size).copy())
