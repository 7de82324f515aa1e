import numpy as np
import pytest
import torch

import helpers
from helpers.filters import conv_layers, first_conv, kernel, learn_filters, random_patches


def test_first_conv_and_kernel_shapes(model, untrained):
    assert first_conv(model) == "conv_stem"
    assert kernel(model, "conv_stem", 5).shape == (3, 3, 3)
    assert torch.equal(kernel(model, "conv_stem", 5), model.conv_stem.weight[5])
    alex = untrained("alexnet")
    assert first_conv(alex) == "features.0" and kernel(alex, "features.3", 0).shape == (64, 5, 5)
    assert "blocks.4.depthwise_conv" in conv_layers(model, min_kernel=5)


def test_kernel_bad_input(model):
    with pytest.raises(ValueError, match=r"valid are 0\.\.31"):
        kernel(model, "conv_stem", 32)
    with pytest.raises(ValueError, match="not a Conv2d.*conv_stem"):
        kernel(model, "bn0", 0)
    with pytest.raises(helpers.LayerError):
        kernel(model, "conv_stemm", 0)


def _orientedness(filters):
    """Share of a filter's spectral energy in its single strongest frequency direction."""
    gray = filters.mean(1).numpy()
    power = np.abs(np.fft.fftshift(np.fft.fft2(gray), axes=(-2, -1))) ** 2
    flat = power.reshape(len(power), -1)
    return (flat.max(1) / flat.sum(1)).mean()


def test_ica_on_natural_patches_gives_oriented_filters():
    """Sparse coding of photos gives edge-like (peaked spectrum) filters; of noise it does not."""
    photos = learn_filters(random_patches(count=6000, size=9), n=24, size=9)
    rng = np.random.default_rng(0)
    noise = learn_filters(rng.standard_normal((6000, 3 * 81)).astype(np.float32), n=24, size=9)
    assert photos.shape == (24, 3, 9, 9)
    assert _orientedness(photos) > 1.5 * _orientedness(noise)
