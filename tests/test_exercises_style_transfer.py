"""Notebook 12's checks: the content loss and the whole style-transfer loss. The answer key
passes, a stub is "not done", usual mistakes fail with their hint, a wrong shape is one line."""
import pytest

from helpers import exercises as check
from helpers.style import gram
from tests.exercise_support import solution

STEM = "12_style_transfer"


def _one_line(message):
    return "\n" not in message.split("\n  Hint:")[0] and "Traceback" not in message


# ---- content loss ----------------------------------------------------------------------------

def content_not_relative(features, target):
    return ((features - target) ** 2).flatten(1).sum(1).mean()


def content_mse(features, target):
    return ((features - target) ** 2).mean()


def content_norm_not_squared(features, target):
    return ((features - target) ** 2).flatten(1).sum(1).mean() / target.norm()


def content_batch_sum(features, target):
    return ((features - target) ** 2).sum() / (target ** 2).sum()


CONTENT_WRONG = [(content_not_relative, "relative"), (content_mse, "mean squared error"),
                 (content_norm_not_squared, "SQUARED norm"), (content_batch_sum, "do not sum")]


def test_content_answer_key_passes(model):
    assert check.content_loss(solution(STEM, "my_content_loss"), model).status == "passed"


def test_content_stub_is_not_done(model):
    def stub(features, target):
        raise NotImplementedError()
    assert check.content_loss(stub, model).status == "not done"


@pytest.mark.parametrize("wrong, hint", CONTENT_WRONG, ids=[w.__name__ for w, _ in CONTENT_WRONG])
def test_content_rejects_usual_mistakes(wrong, hint, model):
    verdict = check.content_loss(wrong, model)
    assert verdict.status == "failed" and "Hint:" in verdict.message and hint in verdict.message


def test_content_per_image_is_one_line(model):
    def per_image(features, target):
        return ((features - target) ** 2).flatten(1).sum(1) / (target ** 2).sum()
    verdict = check.content_loss(per_image, model)
    assert verdict.status == "failed" and "single number" in verdict.message
    assert _one_line(verdict.message)


# ---- the whole loss --------------------------------------------------------------------------

def _e(features, target_gram):
    g = gram(features)
    c = g.shape[-1]
    return ((g - target_gram) ** 2).sum(dim=(1, 2)).mean() / (4 * c ** 2)


def _d(features, target):
    return ((features - target) ** 2).flatten(1).sum(1).mean() / (target ** 2).sum()


def unweighted_layers(acts, content_target, style_grams, content_layer, weights, style_weight,
                      content_weight=1.0):
    style = sum(_e(acts[layer], g) for layer, g in style_grams.items())
    return content_weight * _d(acts[content_layer], content_target) + style_weight * style


def forgets_style_weight(acts, content_target, style_grams, content_layer, weights, style_weight,
                         content_weight=1.0):
    style = sum(weights[layer] * _e(acts[layer], g) for layer, g in style_grams.items())
    return content_weight * _d(acts[content_layer], content_target) + style


def content_on_loop_variable(acts, content_target, style_grams, content_layer, weights,
                             style_weight, content_weight=1.0):
    style = 0.0
    for layer, g in style_grams.items():
        style = style + weights[layer] * _e(acts[layer], g)
    return content_weight * _d(acts[layer], content_target) + style_weight * style


def swapped_weights(acts, content_target, style_grams, content_layer, weights, style_weight,
                    content_weight=1.0):
    style = sum(weights[layer] * _e(acts[layer], g) for layer, g in style_grams.items())
    return style_weight * _d(acts[content_layer], content_target) + content_weight * style


TOTAL_WRONG = [(unweighted_layers, "weight each style layer"),
               (forgets_style_weight, "by style_weight"),
               (content_on_loop_variable, "acts[content_layer]"),
               (swapped_weights, "swapped")]


def test_total_answer_key_passes(model):
    student = solution(STEM, "my_style_transfer_loss")
    assert check.style_transfer_loss(student, model).status == "passed"


def test_total_stub_is_not_done(model):
    def stub(acts, content_target, style_grams, content_layer, weights, style_weight,
             content_weight=1.0):
        raise NotImplementedError()
    assert check.style_transfer_loss(stub, model).status == "not done"


@pytest.mark.parametrize("wrong, hint", TOTAL_WRONG, ids=[w.__name__ for w, _ in TOTAL_WRONG])
def test_total_rejects_usual_mistakes(wrong, hint, model):
    verdict = check.style_transfer_loss(wrong, model)
    assert verdict.status == "failed" and "Hint:" in verdict.message and hint in verdict.message


def test_total_wrong_layer_on_the_model_is_one_line(model):
    def content_on_first_style_layer(acts, content_target, style_grams, content_layer, weights,
                                     style_weight, content_weight=1.0):
        first = next(iter(style_grams))
        style = sum(weights[k] * _e(acts[k], g) for k, g in style_grams.items())
        return content_weight * _d(acts[first], content_target) + style_weight * style
    verdict = check.style_transfer_loss(content_on_first_style_layer, model)
    assert verdict.status == "failed" and "raised RuntimeError" in verdict.message
    assert _one_line(verdict.message)
