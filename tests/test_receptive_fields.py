"""helpers.receptive_fields: arithmetic vs gradient, known answers, and what a unit really sees."""
import pytest
import torch
from torch import nn

import helpers
from helpers import receptive_fields
from helpers.receptive_fields import ReceptiveField as RF
from helpers.receptive_fields import receptive_field, unit_box

R = receptive_fields


def _both(model, layer, size):
    return R._by_arithmetic(model, layer, size), R._by_gradient(model, layer, size)


def test_tiny_net_by_hand():
    # conv3 pad1 -> r3 j1 start-1; maxpool2 -> r4 j2 start-1; conv3 stride2 -> r8 j4 start-1
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3, stride=2))
    for method in ("arithmetic", "gradient"):
        assert receptive_field(net, "3", 64, method) == RF(8, 4, -1), method
        assert receptive_field(net, "2", 64, method) == RF(4, 2, -1), method
    assert helpers.leftover_hooks(net) == []


@pytest.mark.slow
@pytest.mark.parametrize("name,layers,size", [
    ("alexnet", ["features.0", "features.2", "features.5", "features.10"], 224),
    ("resnet18", ["maxpool", "layer1.1", "layer2"], 224),
    ("vgg16", ["features.4", "features.16"], 224),
    ("efficientnet_lite0", ["conv_stem", "blocks.1", "blocks.3", "blocks.5", "blocks.8"], 224),
    ("efficientnet_lite0", ["conv_stem", "blocks.1", "blocks.3", "blocks.5"], 231),
])
def test_arithmetic_agrees_with_gradient(name, layers, size, untrained):
    model = untrained(name)
    for layer in layers:
        arithmetic, gradient = _both(model, layer, size)
        assert arithmetic == gradient, (name, layer, size)
    assert helpers.leftover_hooks(model) == []


def test_known_receptive_fields(untrained):
    """Published values (Araujo et al., Distill 2019; He et al. 2016) and a hand count for AlexNet."""
    alexnet = untrained("alexnet")
    assert receptive_field(alexnet, "features.0").size == 11  # conv1
    # 11 -> pool +2*4 = 19 -> conv5x5 +4*8 = 51 -> pool +2*8 = 67 -> three 3x3 +2*16 each = 163
    assert receptive_field(alexnet, "features.10")[:2] == (163, 16)  # conv5
    assert receptive_field(alexnet, "features.12")[:2] == (195, 32)  # pool5
    vgg = untrained("vgg16")
    assert receptive_field(vgg, "features.28")[:2] == (196, 16)  # conv5_3
    assert receptive_field(vgg, "features.30")[:2] == (212, 32)  # pool5
    resnet = untrained("resnet18")
    assert receptive_field(resnet, "layer4")[:2] == (435, 32)


def test_tensorflow_same_padding_depends_on_input_size(offline):
    # stride-2 3x3 "same": even inputs pad 0 before / 1 after, odd ones 1 / 1
    assert _both(offline, "conv_stem", 224) == (RF(3, 2, 0), RF(3, 2, 0))
    assert _both(offline, "conv_stem", 225) == (RF(3, 2, -1), RF(3, 2, -1))


def test_deep_layers_of_the_offline_model(offline):
    """Sizes grow with depth; a unit of the last block sees 851 px, far more than a 224 px image."""
    assert receptive_field(offline, "blocks.15")[:2] == (851, 32)
    sizes = [receptive_field(offline, layer).size for layer in helpers.main_layers(offline)]
    assert sizes == sorted(sizes) and sizes[0] == 3 and sizes[-1] > 224


def test_bad_requests(offline):
    with pytest.raises(ValueError, match="no spatial position"):
        receptive_field(offline, "fc")
    with pytest.raises(helpers.LayerError, match="blocks.5"):
        receptive_field(offline, "blocks.55")
    with pytest.raises(ValueError, match="arithmetic' or 'gradient"):
        receptive_field(offline, "blocks.5", method="guess")
    with pytest.raises(ValueError, match="larger size"):
        receptive_field(offline, "blocks.15", 224, method="gradient")
    assert helpers.leftover_hooks(offline) == []


def test_unit_box_clips_to_the_image():
    rf = RF(11, 4, -2)
    assert unit_box(rf, 0, 0, 64) == (0, 0, 9, 9)
    assert unit_box(rf, 3, 5, 64) == (10, 18, 21, 29)
    assert unit_box(rf, 15, 15, 64) == (58, 58, 64, 64)


def test_unit_ignores_pixels_outside_its_box(offline, small_set):
    """The receptive field is exactly what a unit sees: noise outside the box changes nothing,
    noise on the box's outermost ring does."""
    layer, row, col = "blocks.3", 3, 4
    rf = receptive_field(offline, layer, 64)
    t, l, b, r = unit_box(rf, row, col, 64)
    assert 0 < t and b < 64 and 0 < l and r < 64  # an unclipped unit
    x = small_set.images[:2]
    noise = torch.rand_like(x)
    outside, ring = noise.clone(), noise.clone()
    outside[:, :, t:b, l:r] = x[:, :, t:b, l:r]
    ring[:, :, t + 1:b - 1, l + 1:r - 1] = x[:, :, t + 1:b - 1, l + 1:r - 1]
    units = []
    with torch.no_grad(), helpers.record(offline, [layer]) as rec:
        for images in (x, outside, ring):
            offline(images)
            units.append(rec[layer][:, :, row, col].clone())
    assert torch.allclose(units[0], units[1], atol=1e-5)
    assert not torch.allclose(units[0], units[2], atol=1e-3)
