"""Notebook 09's checks: FGSM, and one projected sign step (PGD) towards a target class."""
import torch
import torch.nn.functional as F
from exercise_support import solution

from helpers import exercises as check

STEM = "09_fooling"


def gradient(model, images, classes, mean=True):
    x = images.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), classes, reduction="mean" if mean else "sum")
    return torch.autograd.grad(loss, x)[0]


def fgsm(direction=1, sign=True, clamp=True):
    def my_fgsm(model, images, labels, eps):
        g = gradient(model, images, labels)
        x = images + direction * eps * (g.sign() if sign else g)
        return x.clamp(0, 1) if clamp else x
    return my_fgsm


def pgd(direction=-1, sign=True, ball=True, box=True, around_current=False):
    def my_pgd_step(model, images, originals, targets, eps, alpha):
        g = gradient(model, images, targets, mean=False)
        x = images + direction * alpha * (g.sign() if sign else g)
        center = images if around_current else originals
        if ball:
            x = torch.clamp(x, center - eps, center + eps)
        return x.clamp(0, 1) if box else x
    return my_pgd_step


def test_the_notebooks_solutions_pass():
    assert check.fgsm(solution(STEM, "my_fgsm")).status == "passed"
    assert check.pgd_step(solution(STEM, "my_pgd_step")).status == "passed"


def test_a_per_image_loop_passes_too():
    def looped(model, images, labels, eps):
        return torch.cat([fgsm()(model, x[None], y[None], eps) for x, y in zip(images, labels)])
    assert check.fgsm(looped).status == "passed"


def test_stubs_are_not_done():
    def stub(*args):
        raise NotImplementedError()
    assert check.fgsm(stub).status == "not done"
    assert check.pgd_step(stub).status == "not done"


def test_wrong_fgsm_fails_with_its_hint():
    wrong = {
        "not by eps * gradient": fgsm(sign=False),
        "lowers the loss of the true label": fgsm(direction=-1),
        "leave the [0, 1] box": fgsm(clamp=False),
    }
    for hint, fn in wrong.items():
        verdict = check.fgsm(fn)
        assert verdict.status == "failed", hint
        assert hint in verdict.message, verdict.message


def test_a_wrong_fgsm_outside_the_known_mistakes_shows_the_general_hint():
    def l2_step(model, images, labels, eps):
        g = gradient(model, images, labels)
        return (images + eps * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).clamp(0, 1)
    verdict = check.fgsm(l2_step)
    assert verdict.status == "failed"
    assert "\n  Hint: one step of exactly eps per pixel up the loss" in verdict.message


def test_wrong_pgd_steps_fail_with_their_hint():
    wrong = {
        "away from the target": pgd(direction=+1),
        "not alpha * gradient": pgd(sign=False),
        "leaves the eps ball around the original": pgd(ball=False),
        "the step leaves the [0, 1] box": pgd(box=False),
        "not the current images": pgd(around_current=True),
    }
    for hint, fn in wrong.items():
        verdict = check.pgd_step(fn)
        assert verdict.status == "failed", hint
        assert hint in verdict.message, verdict.message


def test_a_wrong_shape_is_one_line():
    verdict = check.pgd_step(lambda *a: pgd()(*a)[0])
    assert verdict.status == "failed" and "\n" not in verdict.message
    assert "has shape (3, 48, 48), expected (2, 3, 48, 48)" in verdict.message
