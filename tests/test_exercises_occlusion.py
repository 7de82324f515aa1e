"""Notebook 05's exercise: the occlusion loop.

The notebook's own solution passes, a stub is "not done", and wrong loops written the way
students write them fail, with the hint for their mistake.
"""
import math

import pytest
import torch
from exercise_support import solution

from helpers import exercises as check

NB = "05_occlusion"


@pytest.fixture(scope="module")
def small_model():
    """The check's real-photo case runs through this model: the notebook's own."""
    from helpers import load_model
    return load_model()


def loop(model, image, target, window, stride, starts=None, score=False, mean=True, sign=1,
         fresh=True):
    """An occlusion loop as a student writes it, with switches for the usual slips."""
    H, W = image.shape[-2:]
    starts = starts or (lambda n: [k * stride for k in range(math.ceil((n - window) / stride) + 1)])
    f = (lambda x: model(x[None])[0, target]) if score else \
        (lambda x: model(x[None]).softmax(-1)[0, target])
    total, count = torch.zeros(H, W), torch.zeros(H, W)
    with torch.no_grad():
        p = f(image)
        x = image.clone()
        for top in starts(H):
            for left in starts(W):
                if fresh:
                    x = image.clone()
                x[:, top:top + window, left:left + window] = 0
                total[top:top + window, left:left + window] += sign * (p - f(x))
                count[top:top + window, left:left + window] += 1
    return total / count if mean else total


def test_the_notebook_solution_passes(small_model):
    assert check.occlusion(solution(NB, "my_occlusion"), small_model).passed


def test_the_reference_loop_passes_without_a_model_given():
    assert check.occlusion(loop).passed  # default model: helpers.load_model()


def test_a_stub_is_not_done(small_model):
    def my_occlusion(model, image, target, window, stride):
        raise NotImplementedError()
    assert check.occlusion(my_occlusion, small_model).status == "not done"


def score_drop(*args):
    return loop(*args, score=True)


def sum_of_drops(*args):
    return loop(*args, mean=False)


def rise_not_drop(*args):
    return loop(*args, sign=-1)


def holes_pile_up(*args):
    return loop(*args, fresh=False)


def range_stops_early(model, image, target, window, stride):
    return loop(model, image, target, window, stride,
                starts=lambda n: list(range(0, n - window + 1, stride)))


def range_off_by_one(model, image, target, window, stride):
    return loop(model, image, target, window, stride,
                starts=lambda n: list(range(0, n - window, stride)))


@pytest.mark.parametrize("wrong, hint", [
    (score_drop, "not of the score (logit)"),
    (sum_of_drops, "each pixel gets the *mean* drop"),
    (rise_not_drop, "the drop is p(image) - p(occluded)"),
    (holes_pile_up, "the black squares pile up"),
    (range_stops_early, "the windows stop too early at the border"),
    (range_off_by_one, "the windows stop too early at the border"),
])
def test_usual_mistakes_fail_with_their_hint(small_model, wrong, hint):
    verdict = check.occlusion(wrong, small_model)
    assert verdict.status == "failed" and "\n  Hint: " in verdict.message
    assert hint in verdict.message


def test_uncovered_border_pixels_are_caught_even_without_nan(small_model):
    def guarded(model, image, target, window, stride):  # 0 / 0 avoided, border left at 0
        H, W = image.shape[-2:]
        total, count = torch.zeros(H, W), torch.zeros(H, W)
        with torch.no_grad():
            p = model(image[None]).softmax(-1)[0, target]
            for top in range(0, H - window + 1, stride):
                for left in range(0, W - window + 1, stride):
                    x = image.clone()
                    x[:, top:top + window, left:left + window] = 0
                    total[top:top + window, left:left + window] += \
                        p - model(x[None]).softmax(-1)[0, target]
                    count[top:top + window, left:left + window] += 1
        return total / count.clamp(min=1)
    verdict = check.occlusion(guarded, small_model)
    assert verdict.status == "failed" and "stop too early at the border" in verdict.message
    assert "37x53" in verdict.message  # the first input the stride does not divide


def test_a_wrong_shape_is_one_line(small_model):
    verdict = check.occlusion(lambda model, image, *rest: loop(model, image, *rest)[None],
                              small_model)
    assert verdict.status == "failed" and "Traceback" not in verdict.message
    assert "the output has shape (1, 24, 24), expected (24, 24)" in verdict.message
    assert verdict.message.count("\n") == 1  # the verdict and the general hint


def test_an_error_names_the_students_line(small_model):
    def my_occlusion(model, image, target, window, stride):
        return model(image)[0, target]  # forgot the batch dimension
    verdict = check.occlusion(my_occlusion, small_model)
    assert verdict.status == "failed" and "return model(image)[0, target]" in verdict.message
