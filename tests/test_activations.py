import pytest
import torch

from helpers.activations import channel_map, feature_maps, strongest_channels


def test_feature_maps_shape_and_values(model, cat):
    maps = feature_maps(model, cat, "blocks.5")
    assert maps.shape == (80, 14, 14) and not maps.requires_grad
    relu = feature_maps(model, cat, "act1")
    assert relu.min() >= 0 and relu.max() <= 6  # ReLU6
    assert model.training is False


def test_strongest_channels_are_the_largest_means():
    maps = torch.zeros(5, 2, 2)
    maps[3] += 4
    maps[1] += 2
    assert strongest_channels(maps, 2) == [3, 1]


def test_bad_layer_and_channel(model, cat):
    with pytest.raises(ValueError, match=r"valid are 0\.\.79"):
        channel_map(model, cat, "blocks.5", 80)
    with pytest.raises(ValueError, match="not \\(C, H, W\\)"):
        feature_maps(model, cat, "fc")
