"""Notebook 06's exercises: saliency maps of a batch, and SmoothGrad.

The notebook's own solutions pass, stubs are "not done", and wrong answers written the way
students write them fail, with the hint for their mistake. SmoothGrad is compared with the
helper's own noise (a seeded generator), so the check is deterministic.
"""
import pytest
import torch
from exercise_support import solution

from helpers import exercises as check

NB = "06_saliency"


@pytest.fixture(scope="module")
def net():
    from helpers import load_model
    return load_model()


def stub(*args):
    raise NotImplementedError()


# --------------------------------------------------------------------------- saliency
def grads(model, images, targets, prob=False):
    x = images.clone().requires_grad_(True)
    out = model(x)
    if prob:
        out = out.softmax(dim=1)
    score = sum(out[n, t] for n, t in enumerate(targets))
    score.backward()
    return x.grad


def test_the_notebook_saliency_passes(net):
    assert check.saliency(solution(NB, "my_saliency"), net).passed


def test_a_per_image_loop_passes_too(net):
    def loop(model, images, targets):
        maps = []
        for image, t in zip(images, targets):
            x = image[None].clone().requires_grad_(True)
            model(x)[0, t].backward()
            maps.append(x.grad[0].abs().max(dim=0).values)
        return torch.stack(maps)
    assert check.saliency(loop, net).passed


def test_a_saliency_stub_is_not_done(net):
    assert check.saliency(stub, net).status == "not done"


def no_abs(model, images, targets):
    return grads(model, images, targets).max(dim=1).values


def sum_over_colours(model, images, targets):
    return grads(model, images, targets).abs().sum(dim=1)


def mean_over_colours(model, images, targets):
    return grads(model, images, targets).abs().mean(dim=1)


def probability(model, images, targets):
    return grads(model, images, targets, prob=True).abs().max(dim=1).values


def first_target_for_all(model, images, targets):
    x = images.clone().requires_grad_(True)
    model(x)[:, targets[0]].sum().backward()
    return x.grad.abs().amax(dim=1)


@pytest.mark.parametrize("wrong, hint", [
    (no_abs, "take the magnitude first"),
    (sum_over_colours, "not a sum or a mean"),
    (mean_over_colours, "not a sum or a mean"),
    (probability, "not the probability after the softmax"),
    (first_target_for_all, "each image has its own class"),
])
def test_usual_saliency_mistakes_fail_with_their_hint(net, wrong, hint):
    verdict = check.saliency(wrong, net)
    assert verdict.status == "failed" and "\n  Hint: " in verdict.message
    assert hint in verdict.message


def test_a_wrong_saliency_shape_is_one_line(net):
    verdict = check.saliency(lambda model, images, targets: grads(model, images, targets).abs(),
                             net)
    assert verdict.status == "failed" and "Traceback" not in verdict.message
    assert "the output has shape (1, 3, 32, 32), expected (1, 32, 32)" in verdict.message


# --------------------------------------------------------------------------- SmoothGrad
def noisy(image, noise, samples, seed, scaled=True):
    eps = torch.randn((samples, 3) + tuple(image.shape[-2:]),
                      generator=torch.Generator().manual_seed(seed))
    sigma = noise * (image.max() - image.min()) if scaled else noise
    return image + sigma * eps


def test_the_notebook_smoothgrad_passes(net):
    assert check.smoothgrad(solution(NB, "my_smoothgrad"), net).passed


def test_a_loop_over_the_copies_passes_too(net):
    def loop(model, image, target, noise, samples, seed):
        total = 0
        for x in noisy(image, noise, samples, seed):
            x = x[None].clone().requires_grad_(True)
            model(x)[0, target].backward()
            total = total + x.grad[0].abs().amax(dim=0)
        return total / samples
    assert check.smoothgrad(loop, net).passed


def test_a_smoothgrad_stub_is_not_done(net):
    assert check.smoothgrad(stub, net).status == "not done"


def noise_not_scaled(model, image, target, noise, samples, seed):
    x = noisy(image, noise, samples, seed, scaled=False).requires_grad_(True)
    model(x)[:, target].sum().backward()
    return x.grad.abs().amax(dim=1).mean(dim=0)


def gradients_not_zeroed(model, image, target, noise, samples, seed):
    eps = noisy(image, noise, samples, seed) - image
    x = image.clone().requires_grad_(True)   # one leaf for all copies, x.grad never zeroed
    total = torch.zeros(image.shape[-2:])
    for e in eps:
        model((x + e)[None])[0, target].backward()
        total += x.grad.abs().amax(dim=0)
    return total / samples


def abs_of_the_mean_gradient(model, image, target, noise, samples, seed):
    x = noisy(image, noise, samples, seed).requires_grad_(True)
    model(x)[:, target].sum().backward()
    return x.grad.mean(dim=0).abs().amax(dim=0)


def sum_not_mean(model, image, target, noise, samples, seed):
    x = noisy(image, noise, samples, seed).requires_grad_(True)
    model(x)[:, target].sum().backward()
    return x.grad.abs().amax(dim=1).sum(dim=0)


def own_noise(model, image, target, noise, samples, seed):
    sigma = noise * (image.max() - image.min())
    total = 0
    for _ in range(samples):  # fresh noise per copy, the seed ignored
        x = (image + sigma * torch.randn_like(image))[None].requires_grad_(True)
        model(x)[0, target].backward()
        total = total + x.grad[0].abs().amax(dim=0)
    return total / samples


def clamped_copies(model, image, target, noise, samples, seed):
    x = noisy(image, noise, samples, seed).clamp(0, 1).requires_grad_(True)
    model(x)[:, target].sum().backward()
    return x.grad.abs().amax(dim=1).mean(dim=0)


@pytest.mark.parametrize("wrong, hint", [
    (noise_not_scaled, "scale the noise by the image's value range"),
    (gradients_not_zeroed, "the gradients pile up from copy to copy"),
    (abs_of_the_mean_gradient, "average the maps, not the gradients"),
    (sum_not_mean, "divide by the number of copies"),
    (own_noise, "draw the noise exactly as described"),
    (clamped_copies, "do not clamp the noisy copies to [0, 1]"),
])
def test_usual_smoothgrad_mistakes_fail_with_their_hint(net, wrong, hint):
    verdict = check.smoothgrad(wrong, net)
    assert verdict.status == "failed" and "\n  Hint: " in verdict.message
    assert hint in verdict.message


def test_the_smoothgrad_check_is_deterministic(net):
    first = check.smoothgrad(solution(NB, "my_smoothgrad"), net)
    again = check.smoothgrad(solution(NB, "my_smoothgrad"), net)
    assert first.passed and again.passed and first.message == again.message


def test_a_wrong_smoothgrad_shape_is_one_line(net):
    def per_copy(model, image, target, noise, samples, seed):
        x = noisy(image, noise, samples, seed).requires_grad_(True)
        model(x)[:, target].sum().backward()
        return x.grad.abs().amax(dim=1)   # forgot the mean over the copies
    verdict = check.smoothgrad(per_copy, net)
    assert verdict.status == "failed" and "Traceback" not in verdict.message
    assert "the output has shape (1, 29, 31), expected (29, 31)" in verdict.message
