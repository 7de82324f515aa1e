"""Notebook 10's checks: the answer key passes, a stub is "not done", usual mistakes fail with
their hint, a wrong shape is one line."""
import pytest
import torch

import helpers
from helpers import exercises as check
from tests.exercise_support import solution

STEM = "10_deep_dream"


def _normalized_step(model, image, layer, step_size, shift, norm, sign=1.0, clamp=True,
                     objective=lambda a: a.pow(2).mean()):
    """A student's step with a choice of normalization (what the wrong answers vary)."""
    x = image.detach().clone().requires_grad_(True)
    with helpers.hooks.record(model, [layer]) as rec:
        model(torch.roll(x, shifts=tuple(shift), dims=(-2, -1)))
    grad, = torch.autograd.grad(objective(rec[layer]), x)
    out = image + sign * step_size * grad / norm(grad)
    return out.clamp(0, 1) if clamp else out


def _mean_abs(g):
    return g.abs().mean(dim=(1, 2, 3), keepdim=True)


def descent(model, image, layer, step_size=0.01, shift=(0, 0)):
    return _normalized_step(model, image, layer, step_size, shift, _mean_abs, sign=-1.0)


def not_normalized(model, image, layer, step_size=0.01, shift=(0, 0)):
    return _normalized_step(model, image, layer, step_size, shift, lambda g: 1.0)


def max_normalized(model, image, layer, step_size=0.01, shift=(0, 0)):
    return _normalized_step(model, image, layer, step_size, shift,
                            lambda g: g.abs().amax(dim=(1, 2, 3), keepdim=True))


def batch_normalized(model, image, layer, step_size=0.01, shift=(0, 0)):
    return _normalized_step(model, image, layer, step_size, shift, lambda g: g.abs().mean())


def not_clamped(model, image, layer, step_size=0.01, shift=(0, 0)):
    return _normalized_step(model, image, layer, step_size, shift, _mean_abs, clamp=False)


def step_on_rolled_image(model, image, layer, step_size=0.01, shift=(0, 0)):
    x = torch.roll(image, shifts=tuple(shift), dims=(-2, -1)).requires_grad_(True)
    with helpers.hooks.record(model, [layer]) as rec:
        model(x)
    grad, = torch.autograd.grad(rec[layer].pow(2).mean(), x)
    return (x + step_size * grad / _mean_abs(grad)).clamp(0, 1).detach()


STEP_WRONG = [
    (descent, "ascends"),
    (not_normalized, "not normalized"),
    (max_normalized, "not the max"),
    (batch_normalized, "its own mean"),
    (not_clamped, "clamp the result"),
    (step_on_rolled_image, "still rolled"),
]


@pytest.fixture(scope="module")
def dream_step():
    return solution(STEM, "my_dream_step")


@pytest.fixture(scope="module")
def octave_dream():
    return solution(STEM, "my_octave_dream")


def test_dream_step_answer_key_passes(dream_step, model):
    assert check.dream_step(dream_step, model).status == "passed"


def test_dream_step_stub_is_not_done(model):
    def stub(model, image, layer, step_size=0.01, shift=(0, 0)):
        raise NotImplementedError()
    assert check.dream_step(stub, model).status == "not done"


@pytest.mark.parametrize("wrong, hint", STEP_WRONG, ids=[w.__name__ for w, _ in STEP_WRONG])
def test_dream_step_rejects_usual_mistakes(wrong, hint, model):
    verdict = check.dream_step(wrong, model)
    assert verdict.status == "failed"
    assert "Hint:" in verdict.message and hint in verdict.message


def test_dream_step_wrong_shape_is_one_line(model):
    def first_image(model, image, layer, step_size=0.01, shift=(0, 0)):
        return image[0]
    verdict = check.dream_step(first_image, model)
    assert verdict.status == "failed"
    assert "shape (3, 32, 32), expected (1, 3, 32, 32)" in verdict.message
    assert "\n" not in verdict.message.split("\n  Hint:")[0] and "Traceback" not in verdict.message


def test_octave_dream_answer_key_passes(octave_dream, model):
    assert check.octave_dream(octave_dream, model).status == "passed"


def test_octave_dream_stub_is_not_done(model):
    def stub(image, sizes, dream):
        raise NotImplementedError()
    assert check.octave_dream(stub, model).status == "not done"


def no_detail(image, sizes, dream):
    out = None
    for size in sizes:  # every octave starts again from the photo: nothing is carried up
        out = dream(helpers.resize(image, size))
    return out.clamp(0, 1)


def carries_the_image(image, sizes, dream):
    x = helpers.resize(image, sizes[0])
    for size in sizes:
        x = dream(helpers.resize(x, size))
    return x


def large_to_small(image, sizes, dream):
    detail = None
    for size in sizes[::-1]:
        base = helpers.resize(image, size)
        detail = torch.zeros_like(base) if detail is None else helpers.resize(detail, size)
        detail = dream((base + detail).clamp(0, 1)) - base
    return (image + helpers.resize(detail, tuple(image.shape[-2:]))).clamp(0, 1)


def returns_detail(image, sizes, dream):
    detail = None
    for size in sizes:
        base = helpers.resize(image, size)
        detail = torch.zeros_like(base) if detail is None else helpers.resize(detail, size)
        detail = dream((base + detail).clamp(0, 1)) - base
    return detail


OCTAVE_WRONG = [
    (no_detail, "carry the detail up"),
    (carries_the_image, "whole dreamed image"),
    (large_to_small, "smallest size to the full size"),
    (returns_detail, "not the detail alone"),
]


@pytest.mark.parametrize("wrong, hint", OCTAVE_WRONG, ids=[w.__name__ for w, _ in OCTAVE_WRONG])
def test_octave_dream_rejects_usual_mistakes(wrong, hint, model):
    verdict = check.octave_dream(wrong, model)
    assert verdict.status == "failed"
    assert "Hint:" in verdict.message and hint in verdict.message


def test_octave_dream_error_is_one_line(model):
    def forgets_to_resize_detail(image, sizes, dream):
        detail = torch.zeros_like(helpers.resize(image, sizes[0]))
        for size in sizes:
            base = helpers.resize(image, size)
            detail = dream((base + detail).clamp(0, 1)) - base
        return (image + detail).clamp(0, 1)
    verdict = check.octave_dream(forgets_to_resize_detail, model)
    assert verdict.status == "failed"
    assert "raised RuntimeError" in verdict.message and "\n" not in verdict.message
    assert "forgets_to_resize_detail" in verdict.message  # names the student's own line
