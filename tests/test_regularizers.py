"""Each regularizer does what it says: blur removes high frequencies, clipping resets the
intended fraction, TV optimization lowers total variation, transforms move pixels as stated."""
import math

import pytest
import torch
import torchvision.transforms.functional as TF

from helpers.objectives import total_variation, tv
from helpers.optimize import optimize
from helpers.params import pixel_image
from helpers.regularizers import (BlurEvery, ClipSmallContribution, ClipSmallNorm, Decay,
                                  Jitter, Pad, RandomRotate, RandomScale, Upsample, gaussian_blur,
                                  high_frequency_energy, standard_transforms)


def noise(n=2, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_gaussian_blur_matches_torchvision():
    x = noise()
    for sigma in (0.5, 1.0, 2.0):
        k = 2 * math.ceil(3 * sigma) + 1
        ref = TF.gaussian_blur(x, [k, k], [sigma, sigma])
        assert torch.allclose(gaussian_blur(x, sigma), ref, atol=1e-5)


def test_blur_lowers_high_frequency_energy_only_every_k_steps():
    x = noise()
    before = high_frequency_energy(x)
    op = BlurEvery(k=3, sigma=1.0)
    y = x.clone()
    op(y, None, step=0)
    assert torch.equal(y, x)  # steps 1 and 2 of every 3 leave the image alone
    op(y, None, step=2)
    assert high_frequency_energy(y) < 0.2 * before
    assert math.isclose(y.mean().item(), x.mean().item(), abs_tol=1e-3)  # blur keeps the mean
    z = x.clone()
    BlurEvery(1, sigma=0)(z, None, 0)
    assert torch.equal(z, x)  # sigma 0 switches it off


@pytest.mark.parametrize("percentile", [0, 10, 25, 60])
def test_clip_small_norm_resets_the_intended_fraction(percentile):
    x = noise()
    norms = (x - 0.5).norm(dim=1)
    ClipSmallNorm(percentile)(x)
    grey = (x == 0.5).all(dim=1)  # (N, H, W) pixels set to grey in all channels
    for i in range(len(x)):
        assert grey[i].float().mean().item() == pytest.approx(percentile / 100, abs=1 / 1024)
        if percentile:  # exactly the smallest norms went
            assert norms[i][grey[i]].max() <= norms[i][~grey[i]].min()


@pytest.mark.parametrize("percentile", [10, 50])
def test_clip_small_contribution_resets_least_contributing_pixels(percentile):
    x, grad = noise(seed=1), torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    contribution = ((x - 0.5) * grad).sum(1).abs()
    y = x.clone()
    ClipSmallContribution(percentile)(y, grad, 0)
    grey = (y == 0.5).all(dim=1)
    assert grey.float().mean().item() == pytest.approx(percentile / 100, abs=1 / 1024)
    for i in range(len(x)):  # per image, exactly the smallest contributions went
        assert contribution[i][grey[i]].max() <= contribution[i][~grey[i]].min()
    z = x.clone()
    ClipSmallContribution(percentile)(z, None, 0)  # no gradient (e.g. first L-BFGS call): no-op
    assert torch.equal(z, x)


def test_clippings_share_one_percentile_floor():
    """Norm 10 % then contribution 25 %: grey pixels count, so 25 % end grey, not 35 %."""
    x, grad = noise(seed=4), torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    ClipSmallNorm(10)(x)
    ClipSmallContribution(25)(x, grad, 0)
    assert (x == 0.5).all(dim=1).float().mean().item() == pytest.approx(0.25, abs=2 / 1024)
    before = x.clone()
    ClipSmallContribution(20)(x, grad, 0)  # already 25 % grey: nothing left to reset
    assert torch.equal(x, before)


def test_decay_shrinks_towards_grey():
    x = noise()
    y = x.clone()
    Decay(0.1)(y)
    assert torch.allclose(y - 0.5, 0.9 * (x - 0.5), atol=1e-6)


def test_bad_strengths_are_clear_errors():
    with pytest.raises(ValueError, match="percentile must be in 0..100"):
        ClipSmallNorm(150)
    with pytest.raises(ValueError, match=r"decay strength must be in \[0, 1\)"):
        Decay(1.0)
    with pytest.raises(ValueError, match="k >= 1"):
        BlurEvery(0, 1.0)


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_tv_optimization_lowers_total_variation(beta):
    """A model-free run: only the TV penalty, so the image must get smoother."""
    model = torch.nn.Conv2d(3, 1, 1).requires_grad_(False)
    param = pixel_image(noise(1, 32))
    before = total_variation(param(), beta).item()
    result = optimize(model, param, tv(1.0, beta), steps=30, lr=0.02, progress=False)
    assert total_variation(result.image, beta).item() < 0.3 * before
    assert result.history[-1] < result.history[0]


def test_jitter_is_a_bounded_circular_shift_and_seeded():
    x = noise(1, 16)
    torch.manual_seed(5)
    y = Jitter(3)(x)
    shifts = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
              if torch.equal(torch.roll(x, (dy, dx), (-2, -1)), y)]
    assert len(shifts) == 1
    torch.manual_seed(5)
    assert torch.equal(Jitter(3)(x), y)
    assert torch.equal(Jitter(0)(x), x)


def test_rotate_by_90_degrees_is_exact_and_scale_changes_size():
    x = noise(1, 16)
    y = RandomRotate([90])(x)
    # positive angles turn counter-clockwise as displayed (like PIL and kornia)
    assert torch.allclose(y, torch.rot90(x, k=1, dims=(-2, -1)), atol=1e-5)
    assert torch.equal(RandomRotate([0])(x), x)
    assert RandomScale([1.5])(x).shape[-2:] == (24, 24)
    assert torch.all(Pad(4, 0.25)(x)[..., :4, :] == 0.25)
    assert Upsample(40)(x).shape[-2:] == (40, 40)


def test_standard_transforms_keep_gradients():
    x = noise(1, 32).requires_grad_(True)
    y = x
    for t in standard_transforms() + [Upsample(48)]:
        y = t(y)
    g, = torch.autograd.grad(y.sum(), x)
    assert y.shape == (1, 3, 48, 48) and g.abs().sum() > 0
