"""Attacks: targeted PGD reaches the target inside the L-inf ball (all 100 ImageNet samples in
the slow test), FGSM equals its formula, fooling images are confidently classified, and CPPN
fooling images are regular patterns."""
import pytest
import torch
import torch.nn.functional as F

from helpers import leftover_hooks, load_image, predict
from helpers.adversarial import fgsm, fgsm_error_rates, fooling_images, targeted_attack
from helpers.regularizers import high_frequency_energy

EPS = 4 / 255


def test_targeted_attack_reaches_the_target_within_eps(model):
    photos = torch.stack([load_image("chelsea"), load_image("coffee")])
    r = targeted_attack(model, photos, ["goldfish", "volcano"], eps=2 / 255, steps=30)
    assert r.success.all()
    assert [p[0][1] for p in predict(model, r.images, k=1)] == ["goldfish", "volcano"]
    assert r.linf.max() <= 2 / 255 + 1e-6 and r.images.min() >= 0 and r.images.max() <= 1
    assert (r.steps >= 1).all() and (r.steps <= 30).all()
    # a one-step budget cannot succeed with a tiny eps: reported as failure, not success
    weak = targeted_attack(model, photos[:1], "goldfish", eps=0.1 / 255, steps=1)
    assert not weak.success[0] and weak.steps[0] == 1


def test_attack_input_checks(model, cat):
    with pytest.raises(ValueError, match="eps is a per-pixel bound"):
        targeted_attack(model, cat, 1, eps=4)
    with pytest.raises(ValueError, match="one target class per image"):
        targeted_attack(model, torch.stack([cat, cat]), [1, 2, 3])
    with pytest.raises(ValueError, match="out of range"):
        fgsm(model, cat, 1000)


def test_attack_stops_with_a_clear_error_when_the_gradient_is_nan(cat):
    class Broken(torch.nn.Module):
        classes = [str(i) for i in range(10)]

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x.flatten(1)[:, :10] * self.weight * float("nan")
    with pytest.raises(FloatingPointError, match="NaN"):
        targeted_attack(Broken(), cat, 3, steps=2)


def test_fgsm_equals_its_formula(model, cat):
    label = predict(model, cat, k=1)[0][0][0]
    adv = fgsm(model, cat, label, eps=EPS)[0]
    x = cat[None].clone().requires_grad_(True)
    g, = torch.autograd.grad(F.cross_entropy(model(x), torch.tensor([label])), x)
    assert torch.allclose(adv, (cat + EPS * g[0].sign()).clamp(0, 1), atol=1e-6)
    with torch.no_grad():
        before = F.cross_entropy(model(cat[None]), torch.tensor([label]))
        after = F.cross_entropy(model(adv[None]), torch.tensor([label]))
    assert after > before


def test_fgsm_error_rates_structure(model):
    photos = torch.stack([load_image(p) for p in ("chelsea", "coffee")])
    labels = [p[0][0] for p in predict(model, photos, k=1)]
    rates = fgsm_error_rates(model, photos, labels, epsilons=[1 / 255, 8 / 255])
    assert list(rates) == [0.0, 1 / 255, 8 / 255] and rates[0.0] == 0.0
    assert all(0 <= v <= 1 for v in rates.values())


def test_fooling_images_are_confidently_classified(model):
    images, probs = fooling_images(model, ["goldfish", "pizza"], size=64, steps=60)
    assert images.shape == (2, 3, 64, 64) and (probs >= 0.99).all(), probs
    assert leftover_hooks(model) == []


def test_cppn_fooling_images_are_confident_regular_patterns(model):
    """Nguyen et al.'s CPPN images: the target at p >= 0.99, drawn as a pattern whose
    high-frequency energy is a small fraction of that of the pixel fooling images."""
    targets = ["goldfish", "tabby"]
    cppn, p_cppn = fooling_images(model, targets, size=128, parameterization="cppn")
    pixels, p_pixels = fooling_images(model, targets, size=128)
    assert cppn.shape == (2, 3, 128, 128) and (p_cppn >= 0.99).all(), p_cppn
    assert [p[0][1] for p in predict(model, cppn, k=1)] == targets
    assert high_frequency_energy(cppn) < 0.1 * high_frequency_energy(pixels)
    assert leftover_hooks(model) == []


def test_fooling_images_name_the_parameterizations(model):
    with pytest.raises(ValueError, match="'pixel', 'fourier', 'cppn'"):
        fooling_images(model, ["goldfish"], parameterization="evolved")


def test_fooling_figure_rows(model):
    from helpers.adversarial import fooling_figure
    images = torch.rand(2, 3, 32, 32)
    fig = fooling_figure(model, {"pixels": images, "CPPN": images}, title="t")
    assert len(fig.axes) == 4 and fig.axes[2].get_title().startswith("CPPN: ")
    assert len(fooling_figure(model, images).axes) == 2


@pytest.mark.slow
def test_attack_all_imagenet_samples(model, imagenet_photos):
    """>= 99 % of the 100 photos reach (label + 500) % 1000 with |delta|_inf <= 4/255."""
    photos, labels, _ = imagenet_photos
    targets = (labels + 500) % 1000
    r = targeted_attack(model, photos, targets, eps=EPS, steps=20)
    steps = torch.bincount(r.steps, minlength=21).tolist()
    print(f"\nsuccess {r.success_rate:.1%}; steps histogram {steps}; "
          f"L-inf max {255 * r.linf.max():.3f}/255, median {255 * r.linf.median():.3f}/255")
    assert r.success.float().mean() >= 0.99
    assert r.linf.max() <= EPS + 1e-6
    with torch.no_grad():
        preds = model(r.images[r.success]).argmax(1)
    assert torch.equal(preds, targets[r.success])


@pytest.mark.slow
def test_fgsm_error_rates_on_imagenet_samples(model, imagenet_photos):
    """FGSM at 1, 2, 4, 8 /255 turns most correct answers wrong (the rates are printed)."""
    photos, labels, _ = imagenet_photos
    rates = fgsm_error_rates(model, photos, labels)
    print("\nFGSM top-1 error: " + ", ".join(f"{round(255 * e)}/255 {r:.0%}" for e, r in
                                              rates.items()))
    assert rates[0.0] <= 0.2  # the clean photos: the model is right on >= 80 %
    assert all(rates[e] >= rates[0.0] + 0.5 for e in (1 / 255, 2 / 255, 4 / 255, 8 / 255))


def test_figures(model):
    from helpers.adversarial import attack_figure, error_rate_figure, fgsm_figure
    fig = attack_figure(model, "coffee", "goldfish", 4.0, 10)
    assert len(fig.axes) == 3 and "goldfish" in fig.axes[2].get_title()
    assert "perturbation x10" in fig.axes[1].get_title()
    assert len(fgsm_figure(model, "coffee", 2.0).axes) == 3
    assert len(error_rate_figure({0.0: 0.1, 1 / 255: 0.8}).axes) == 1
