"""Deep dream raises the layer's energy, keeps the photo's size and range, and fails early."""
import pytest
import torch

from helpers import LayerError, leftover_hooks, record
from helpers.dream import deep_dream, octave_sizes


def energy(model, image, layer):
    with torch.no_grad(), record(model, layer) as rec:
        model(image[None])
    return rec[layer].pow(2).mean().item()


def test_dream_amplifies_the_layer(model, cat):
    photo = cat[:, ::2, ::2].contiguous()  # 112 px keeps the test quick
    dream = deep_dream(model, photo, "blocks.8", steps=6, octaves=2)
    assert dream.shape == photo.shape and 0 <= dream.min() and dream.max() <= 1
    assert energy(model, dream, "blocks.8") > 1.3 * energy(model, photo, "blocks.8")
    assert (dream - photo).abs().mean() > 0.01
    assert leftover_hooks(model) == []


def test_octave_sizes():
    assert octave_sizes(224, 224, 3, 2.0) == [(56, 56), (112, 112), (224, 224)]
    assert octave_sizes(100, 50, 1, 1.4) == [(100, 50)]
    with pytest.raises(ValueError, match="octaves must be a whole number >= 1"):
        octave_sizes(224, 224, 0, 1.4)


def test_unknown_layer_fails_before_work(model, cat):
    with pytest.raises(LayerError, match="Did you mean"):
        deep_dream(model, cat, "block.8")
