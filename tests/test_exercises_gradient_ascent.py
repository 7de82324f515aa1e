"""Notebook 08's check: one regularized gradient-ascent step (jitter, step, decay, blur every k)."""
import torch
from exercise_support import solution

from helpers import exercises as check
from helpers.regularizers import gaussian_blur

STEM = "08_gradient_ascent"


def student(sign=1, blur=lambda step, k: (step + 1) % k == 0, decay_image=True,
            shift_back=True, clamp=True):
    """An ascent step as a student writes it, with one thing to get wrong."""

    def my_ascent_step(model, image, unit, step, shift, lr, decay, blur_sigma, blur_every):
        x = image.clone().requires_grad_(True)
        rolled = torch.roll(x, shifts=tuple(shift), dims=(-2, -1))
        if not shift_back:  # gradient of the shifted copy, used as if it were the image's
            rolled = rolled.detach().requires_grad_(True)
        grad, = torch.autograd.grad(model(rolled)[:, unit].sum(), x if shift_back else rolled)
        with torch.no_grad():
            if not decay_image:
                grad = grad * (1 - decay)
            x = x + sign * lr * grad
            x = x.clamp(0, 1) if clamp else x
            if decay_image:
                x = 0.5 + (1 - decay) * (x - 0.5)
            if blur(step, blur_every):
                x = gaussian_blur(x, blur_sigma)
        return x
    return my_ascent_step


def test_the_notebooks_solution_passes():
    assert check.ascent_step(solution(STEM, "my_ascent_step")).status == "passed"


def test_the_helper_written_by_hand_passes():
    assert check.ascent_step(student()).status == "passed"


def test_a_stub_is_not_done():
    def stub(*args, **kwargs):
        raise NotImplementedError()
    assert check.ascent_step(stub).status == "not done"


def test_the_usual_mistakes_fail_with_their_hint():
    wrong = {
        "that is gradient descent": student(sign=-1),
        "not the gradient": student(decay_image=False),
        "not on every step": student(blur=lambda step, k: True),
        "steps count from 0": student(blur=lambda step, k: step % k == 0),
        "the jitter is only for the forward pass": student(shift_back=False),
        "right after the gradient step": student(clamp=False),
    }
    for hint, fn in wrong.items():
        verdict = check.ascent_step(fn)
        assert verdict.status == "failed", hint
        assert hint in verdict.message, verdict.message


def test_a_wrong_shape_is_one_line():
    verdict = check.ascent_step(lambda *a, **k: student()(*a, **k)[0])
    assert verdict.status == "failed" and "\n" not in verdict.message
    assert "has shape (3, 37, 53), expected (2, 3, 37, 53)" in verdict.message
