"""CPPN images: drawn from coordinates only, grey at the start, any resolution, clear errors."""
import pytest
import torch

from helpers import l2, optimize
from helpers.cppn import composite_activation, coordinates, cppn_image, periodic_activation
from helpers.regularizers import high_frequency_energy


def test_coordinates_are_centred_with_unit_spread():
    c = coordinates(33, 33)
    assert c.shape == (33 * 33, 3)
    x, y, r = c.unbind(1)
    assert x.mean().abs() < 1e-6 and y.mean().abs() < 1e-6
    assert abs(x.std().item() - 1) < 0.05 and torch.allclose(r, (x * x + y * y).sqrt())
    wide = coordinates(10, 40)  # the longer side spans the range, the other keeps the aspect
    assert wide[:, 0].abs().max() == pytest.approx(3 ** 0.5)
    assert wide[:, 1].abs().max() == pytest.approx(3 ** 0.5 * 9 / 39, rel=1e-5)


def test_composite_activation_doubles_channels():
    z = torch.linspace(-3, 3, 7)[:, None]
    out = composite_activation(z)
    assert out.shape == (7, 2)
    assert torch.allclose(out[:, 0], torch.atan(z[:, 0]) / 0.67)
    assert torch.allclose(out[:, 1], torch.atan(z[:, 0]) ** 2 / 0.6)


def test_periodic_activation_doubles_channels_with_unit_variance():
    z = torch.linspace(-5, 5, 10001)[:, None]
    out = periodic_activation(z, frequency=2.0)
    assert out.shape == (10001, 2)
    assert torch.allclose(out[:, 0], 2 ** 0.5 * torch.sin(2 * z[:, 0]))
    assert torch.allclose(out[:, 1], 2 ** 0.5 * torch.cos(2 * z[:, 0]))
    assert out.pow(2).mean().item() == pytest.approx(1.0, abs=0.01)


def test_cppn_starts_grey_and_draws_any_resolution():
    param = cppn_image(32, batch=2, seed=0)
    image = param()
    assert image.shape == (2, 3, 32, 32) and torch.allclose(image, torch.full_like(image, 0.5))
    with torch.no_grad():
        param.out_weight.normal_()
    image = param()
    assert 0 <= image.min() and image.max() <= 1 and image.std() > 0.05
    assert not torch.allclose(image[0], image[1])  # one network per image
    assert torch.allclose(param.at_size(32), image)
    big = param.at_size((64, 96))
    assert big.shape == (2, 3, 64, 96)
    # the pattern, not pixels: the image at twice the resolution is smoother per pixel
    assert high_frequency_energy(param.at_size(128)) < high_frequency_energy(image)
    same = cppn_image(32, batch=2, seed=0)
    assert torch.equal(same.weights[0], cppn_image(32, batch=2, seed=0).weights[0])


def test_cppn_runs_in_the_optimization_loop(model):
    param = cppn_image(32, seed=0)
    before = param.weights[0].detach().clone()
    # darken the grey start: the loop must train the output layer, then the hidden ones
    result = optimize(model, param, l2(1.0, center=0.0), steps=5, lr=0.05, progress=False)
    assert result.history[-1] < result.history[0]
    assert param.out_weight.abs().sum() > 0 and not torch.equal(param.weights[0], before)


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 0}, "size must be positive"), ({"batch": 0}, "integer batch >= 1"),
    ({"layers": 1.5}, "integer layers >= 1"), ({"hidden": -2}, "integer hidden >= 1"),
    ({"frequency": 0}, "frequency > 0")])
def test_bad_arguments_name_the_rule(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cppn_image(**kwargs)
