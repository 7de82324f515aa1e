"""Feature inversion: the distance really falls, depth really loses detail, bad input fails early."""
import pytest
import torch
from torch import nn

from helpers import LayerError, leftover_hooks, load_image
from helpers.device import cpu_threads
from helpers.hooks import activations, record
from helpers.inversion import (
    alpha_norm,
    evaluate,
    feature_distance,
    inversion_figure,
    invert,
    invert_layers,
    pixel_error,
)

SIZE = 96


@pytest.fixture(scope="module")
def photo():
    return load_image("chelsea", SIZE)


@pytest.fixture(scope="module")
def inversions(model, photo):
    with cpu_threads(1):  # small images: one thread is faster on a shared CPU
        return invert_layers(model, photo, ["act0", "blocks.2", "blocks.8"], tv_strength=8.0,
                             steps=80)


def test_feature_distance_matches_formula():
    target = torch.randn(1, 4, 3, 3)
    act = torch.randn(2, 4, 3, 3)
    obj = feature_distance("l", target)
    expected = ((act - target) ** 2).sum((1, 2, 3)).mean() / (target ** 2).sum()
    assert obj({"l": act}, None).item() == pytest.approx(expected.item(), rel=1e-6)
    assert obj({"l": target.clone()}, None).item() == 0
    assert obj({"l": torch.zeros_like(target)}, None).item() == pytest.approx(1.0)
    assert obj.layers == {"l"}


def test_feature_distance_shape_mismatch_is_explained():
    obj = feature_distance("l", torch.ones(1, 4, 3, 3))
    with pytest.raises(ValueError, match="photo's size"):
        obj({"l": torch.ones(1, 4, 5, 5)}, None)


def test_alpha_norm_is_a_soft_box():
    grey = torch.full((1, 3, 4, 4), 0.5)
    assert alpha_norm(6, 1.0)({}, grey).item() == 0
    edge = torch.ones(1, 3, 4, 4)  # at the bound 0.5 + 0.5 the penalty is exactly 1
    assert alpha_norm(6, 2.0)({}, edge).item() == pytest.approx(2.0)
    inside = torch.full((1, 3, 4, 4), 0.75)  # half-way: (1/2)^6
    assert alpha_norm(6, 1.0)({}, inside).item() == pytest.approx(0.5 ** 6)
    with pytest.raises(ValueError, match="alpha"):
        alpha_norm(0.5)


def test_activations_and_evaluate_use_record_and_leave_no_hooks(model, photo):
    acts = activations(model, photo, ["blocks.2"])
    with record(model, ["blocks.2"], detach=True) as rec:
        model(photo[None])
    assert torch.allclose(acts["blocks.2"], rec["blocks.2"])
    assert evaluate(model, feature_distance("blocks.2", acts["blocks.2"]), photo) == 0
    assert leftover_hooks(model) == []


def test_distance_falls_below_a_tenth_of_its_start(inversions, model):
    for inv in inversions:
        assert inv.distance < 0.1 * inv.distance_start, (inv.layer, inv.distance_start,
                                                         inv.distance)
        assert inv.image.shape == (1, 3, SIZE, SIZE)
        assert 0 <= inv.image.min() and inv.image.max() <= 1
    assert leftover_hooks(model) == []


def test_earlier_layers_reconstruct_closer_to_the_photo(inversions, photo):
    errors = [inv.pixel_error for inv in inversions]
    assert errors == sorted(errors), errors
    assert errors[0] < 0.6 * errors[-1], errors
    # The reconstruction is a picture of the photo, not of the noise it started from.
    assert errors[0] < pixel_error(torch.full_like(photo, 0.5), photo)


def test_inversion_figure(inversions, photo):
    fig = inversion_figure(photo, inversions)
    assert len([ax for ax in fig.axes if ax.images]) == 1 + len(inversions)


def test_bad_input_fails_before_work(model, photo):
    with pytest.raises(LayerError, match="blocks"):
        invert(model, photo, "blocks.99", steps=1)
    with pytest.raises(ValueError, match="tv_strength"):
        invert(model, photo, "blocks.2", tv_strength=-1, steps=1)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        invert(model, photo[:1], "blocks.2", steps=1)


def test_any_named_layer_of_any_model():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2))
    net.eval().requires_grad_(False)
    img = torch.rand(3, 24, 24)
    inv = invert(net, img, "1", tv_strength=0.0, steps=150, optimizer="lbfgs")
    assert inv.distance < 0.05 * inv.distance_start
    assert leftover_hooks(net) == []
