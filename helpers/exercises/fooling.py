"""Checks for notebook 09: FGSM and one projected sign step (PGD) towards a target class.

References: ``helpers.adversarial.fgsm``, and for the step the very line of
``targeted_attack``: ``project(sign_step(x, gradient, alpha), originals, eps)``. Images near 0
and 1 and current images at the edge of the eps ball make a step that leaves the [0, 1] box or
the ball visible; a step in the wrong direction, the raw gradient or a ball around the current
image are the usual mistakes, each with its hint.
"""
import torch

from ..adversarial import cross_entropy_gradient, project
from ..adversarial import fgsm as _fgsm
from ..device import model_device
from ..optimize import sign_step
from . import verdict
from .verdict import Case, Mismatch, Mistake, close

__all__ = ["fgsm", "pgd_step"]


def _in_box(got, expected, what):
    """Raise when ``got`` leaves [0, 1] although ``expected`` does not."""
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
        return
    lo, hi = float(got.min()), float(got.max())
    if (lo < 0 or hi > 1) and float(expected.min()) >= 0 and float(expected.max()) <= 1:
        raise Mismatch(f"{what} leave the [0, 1] box (values from {lo:.4g} to {hi:.4g})")


def _compare(got, expected):
    _in_box(got, expected, "your images")
    close(got, expected, what="the result")


def _loss_gradient(model, images, classes):
    return cross_entropy_gradient(model, images, classes)[0]


def _score_gradient(model, images, classes):
    """Gradient of minus the score (logit) of ``classes``: a loss-like direction without softmax."""
    x = images.detach().requires_grad_(True)
    score = model(x).gather(1, classes[:, None]).sum()
    return -torch.autograd.grad(score, x)[0]


# --------------------------------------------------------------------------------- FGSM
def fgsm(student, model=None):
    """Check ``my_fgsm(model, images, labels, eps)`` -> (N, 3, H, W) in [0, 1] against
    ``helpers.adversarial.fgsm`` (untargeted, one sign step up the loss of the true labels)."""
    model = verdict.tiny_cnn() if model is None else model
    dev = model_device(model)
    photos = verdict.photos(model, ["chelsea", "coffee"], 48)
    cases = [
        Case("a random batch of 2 at 37x53, eps 8/255",
             (model, verdict.random_images(2, 37, 53, seed=11).to(dev),
              torch.tensor([3, 7], device=dev), 8 / 255)),
        Case("the cat and coffee photos at 48 px, eps 2/255",
             (model, photos, torch.tensor([1, 4], device=dev), 2 / 255)),
        Case("one random image at 31x31, eps 16/255",
             (model, verdict.random_images(1, 31, 31, seed=12).to(dev),
              torch.tensor([9], device=dev), 16 / 255)),
    ]

    def step(direction, sign=True, clamp=True, predicted=False, gradient=_loss_gradient):
        def wrong(model, images, labels, eps):
            if predicted:
                with torch.no_grad():
                    labels = model(images).argmax(1)
            grad = gradient(model, images, labels)
            out = images + direction * eps * (grad.sign() if sign else grad)
            return out.clamp(0, 1) if clamp else out
        return wrong

    mistakes = [
        Mistake(step(+1, sign=False), "step by eps * sign(gradient), not by eps * gradient: "
                                      "every pixel moves by exactly eps."),
        Mistake(step(-1), "that step lowers the loss of the true label (it helps the network): "
                          "FGSM adds eps * sign(gradient of the loss)."),
        Mistake(step(+1, clamp=False), "clip the result to [0, 1]: it must stay an image."),
        Mistake(step(+1, gradient=_score_gradient), "use the gradient of the cross-entropy "
                                                      "loss F.cross_entropy(model(x), labels), "
                                                      "not of a score."),
        Mistake(step(+1, predicted=True), "use the given labels, not the model's "
                                             "predictions."),
    ]
    return verdict.run("FGSM", student, _fgsm, cases, compare=_compare, mistakes=mistakes,
                       hint="one step of exactly eps per pixel up the loss: images + eps * "
                            "sign(gradient of F.cross_entropy(model(images), labels) with "
                            "respect to the images), then clamp to [0, 1].")


# --------------------------------------------------------------------------------- PGD step
def _reference_step(model, images, originals, targets, eps, alpha):
    """One step of ``targeted_attack``: down the target's loss, into the ball and the box."""
    return project(sign_step(images, _loss_gradient(model, images, targets), alpha), originals, eps)


def _wrong_step(direction=-1, sign=True, ball=True, box=True, at="images"):
    def wrong(model, images, originals, targets, eps, alpha):
        grad = _loss_gradient(model, images if at == "images" else originals, targets)
        x = images + direction * alpha * (grad.sign() if sign else grad)
        if ball:
            x = torch.min(torch.max(x, originals - eps), originals + eps)
        return x.clamp(0, 1) if box else x
    return wrong


def _start_in_ball(originals, eps, seed):
    """Current images of an attack in progress: random in the ball, a third of them on its edge."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.empty(originals.shape).uniform_(-1, 1, generator=g)
    edge = torch.rand(originals.shape, generator=g) < 1 / 3
    noise = torch.where(edge, noise.sign(), noise).to(originals)
    return project(originals + eps * noise, originals, eps)


def pgd_step(student, model=None):
    """Check ``my_pgd_step(model, images, originals, targets, eps, alpha)`` -> (N, 3, H, W):
    one projected sign step of a targeted attack, as in ``helpers.adversarial.targeted_attack``."""
    model = verdict.tiny_cnn() if model is None else model
    dev = model_device(model)
    photos = verdict.photos(model, ["chelsea", "coffee"], 48)
    rand = verdict.random_images(2, 37, 53, seed=21).to(dev)
    small = verdict.random_images(1, 29, 31, seed=22).to(dev)
    cases = [
        Case("the cat and coffee photos at 48 px, first step (images = originals), eps 4/255",
             (model, photos.clone(), photos, torch.tensor([5, 2], device=dev), 4 / 255, 1 / 255)),
        Case("a random batch of 2 at 37x53 in the middle of an attack, eps 8/255",
             (model, _start_in_ball(rand, 8 / 255, 1), rand, torch.tensor([0, 6], device=dev),
              8 / 255, 2 / 255)),
        Case("one random image at 29x31 on the edge of its ball, eps 16/255",
             (model, _start_in_ball(small, 16 / 255, 2), small, torch.tensor([8], device=dev),
              16 / 255, 6 / 255)),
    ]
    mistakes = [
        Mistake(_wrong_step(direction=+1), "that step goes up the target's loss, away from the "
                                           "target: subtract alpha * sign(gradient)."),
        Mistake(_wrong_step(sign=False), "step by alpha * sign(gradient), not alpha * gradient."),
        Mistake(_wrong_step(ball=False), "the step leaves the eps ball around the original "
                                         "images: clip to [originals - eps, originals + eps] "
                                         "after it (around the originals, not the current "
                                         "images, or many steps drift arbitrarily far)."),
        Mistake(_wrong_step(box=False), "the step leaves the [0, 1] box: clamp to [0, 1] "
                                        "after the ball."),
        Mistake(_wrong_step(at="originals"), "take the gradient at the current images, not "
                                             "at the originals."),
    ]
    return verdict.run("PGD step", student, _reference_step, cases, compare=_compare,
                       mistakes=mistakes)
