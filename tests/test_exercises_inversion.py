"""Notebook 11's checks: TV_beta, the Gram matrix, the Gram loss. The answer key passes, a stub
is "not done", usual mistakes fail with their hint, a wrong shape is one line."""
import pytest
import torch

from helpers import exercises as check
from helpers.style import gram
from tests.exercise_support import solution

STEM = "11_inversion_and_texture"


def _one_line(message):
    return "\n" not in message.split("\n  Hint:")[0] and "Traceback" not in message


def _d(image):
    return image[..., :-1, 1:] - image[..., :-1, :-1], image[..., 1:, :-1] - image[..., :-1, :-1]


# ---- total variation -------------------------------------------------------------------------

def tv_without_exponent(image, beta=2.0):
    dx, dy = _d(image)
    return (dx ** 2 + dy ** 2).mean()


def tv_per_axis_exponent(image, beta=2.0):
    dx, dy = _d(image)
    return (dx.abs() ** beta + dy.abs() ** beta).mean()


def tv_one_axis_squared(image, beta=2.0):
    dx, dy = _d(image)
    return ((dx ** 2 + dy.abs()) ** (beta / 2)).mean()


def tv_summed(image, beta=2.0):
    dx, dy = _d(image)
    return ((dx ** 2 + dy ** 2 + 1e-8) ** (beta / 2)).sum()


def tv_colours_together(image, beta=2.0):
    dx, dy = _d(image)
    return ((dx ** 2 + dy ** 2).sum(dim=1) ** (beta / 2)).mean()


TV_WRONG = [(tv_without_exponent, "power beta / 2"), (tv_per_axis_exponent, "applies to the sum"),
            (tv_one_axis_squared, "square both"), (tv_summed, "not the sum"),
            (tv_colours_together, "colour channels apart")]


def test_tv_answer_key_passes():
    assert check.total_variation(solution(STEM, "my_total_variation")).status == "passed"


def test_tv_stub_is_not_done():
    def stub(image, beta=2.0):
        raise NotImplementedError()
    assert check.total_variation(stub).status == "not done"


@pytest.mark.parametrize("wrong, hint", TV_WRONG, ids=[w.__name__ for w, _ in TV_WRONG])
def test_tv_rejects_usual_mistakes(wrong, hint):
    verdict = check.total_variation(wrong)
    assert verdict.status == "failed" and "Hint:" in verdict.message and hint in verdict.message


def test_tv_per_image_values_are_one_line():
    def per_image(image, beta=2.0):
        dx, dy = _d(image)
        return ((dx ** 2 + dy ** 2 + 1e-8) ** (beta / 2)).flatten(1).mean(1)
    verdict = check.total_variation(per_image)
    assert verdict.status == "failed" and "single number" in verdict.message
    assert _one_line(verdict.message)


# ---- Gram matrix -----------------------------------------------------------------------------

def gram_not_divided(features):
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return f @ f.transpose(1, 2)


def gram_divided_by_chw(features):
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def gram_batch_mixed(features):
    n, c, h, w = features.shape
    f = features.reshape(c, -1)          # mixes the images (and the channels) of a batch
    return (f @ f.T / (h * w))[None].expand(n, c, c)


def gram_of_the_batch(features):
    n, c, h, w = features.shape
    f = features.transpose(0, 1).reshape(c, n * h * w)
    return f @ f.T / (h * w)


def gram_centred(features):
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    f = f - f.mean(dim=2, keepdim=True)
    return f @ f.transpose(1, 2) / (h * w)


GRAM_WRONG = [(gram_not_divided, "number of positions"), (gram_divided_by_chw, "not by C * H * W"),
              (gram_of_the_batch, "one Gram matrix per image"),
              (gram_centred, "uncentred")]


def test_gram_answer_key_passes(model):
    assert check.gram(solution(STEM, "my_gram"), model).status == "passed"


def test_gram_stub_is_not_done(model):
    def stub(features):
        raise NotImplementedError()
    assert check.gram(stub, model).status == "not done"


@pytest.mark.parametrize("wrong, hint", GRAM_WRONG, ids=[w.__name__ for w, _ in GRAM_WRONG])
def test_gram_rejects_usual_mistakes(wrong, hint, model):
    verdict = check.gram(wrong, model)
    assert verdict.status == "failed" and "Hint:" in verdict.message and hint in verdict.message


def test_gram_mixing_the_batch_fails(model):
    verdict = check.gram(gram_batch_mixed, model)  # right on one image, wrong on a batch
    assert verdict.status == "failed" and "batch of 3" in verdict.message


def test_gram_transposed_shape_is_one_line(model):
    def positions_gram(features):
        n, c, h, w = features.shape
        f = features.reshape(n, c, h * w)
        return f.transpose(1, 2) @ f / (h * w)
    verdict = check.gram(positions_gram, model)
    assert verdict.status == "failed" and "shape (1, 35, 35), expected (1, 4, 4)" in verdict.message
    assert _one_line(verdict.message)


# ---- Gram loss -------------------------------------------------------------------------------

def loss_without_scale(features, target_gram):
    return ((gram(features) - target_gram) ** 2).sum(dim=(1, 2)).mean()


def loss_mean_of_entries(features, target_gram):
    return ((gram(features) - target_gram) ** 2).mean()


def loss_batch_sum(features, target_gram):
    c = features.shape[1]
    return ((gram(features) - target_gram) ** 2).sum() / (4 * c ** 2)


def loss_own_gram_not_divided(features, target_gram):
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    g = f @ f.transpose(1, 2)
    return ((g - target_gram) ** 2).sum(dim=(1, 2)).mean() / (4 * c ** 2)


LOSS_WRONG = [(loss_without_scale, "4 N_l^2"), (loss_mean_of_entries, "the 4 is missing"),
              (loss_batch_sum, "average E_l over the images")]


def test_gram_loss_answer_key_passes(model):
    assert check.gram_loss(solution(STEM, "my_gram_loss"), model).status == "passed"


def test_gram_loss_stub_is_not_done(model):
    def stub(features, target_gram):
        raise NotImplementedError()
    assert check.gram_loss(stub, model).status == "not done"


@pytest.mark.parametrize("wrong, hint", LOSS_WRONG, ids=[w.__name__ for w, _ in LOSS_WRONG])
def test_gram_loss_rejects_usual_mistakes(wrong, hint, model):
    verdict = check.gram_loss(wrong, model)
    assert verdict.status == "failed" and "Hint:" in verdict.message and hint in verdict.message


def test_gram_loss_unscaled_gram_fails(model):
    verdict = check.gram_loss(loss_own_gram_not_divided, model)
    assert verdict.status == "failed" and "number of positions" in verdict.message


def test_gram_loss_first_target_for_all_images_fails(model):
    def first_target(features, target_gram):
        c = features.shape[1]
        return ((gram(features) - target_gram[:1]) ** 2).sum(dim=(1, 2)).mean() / (4 * c ** 2)
    verdict = check.gram_loss(first_target, model)
    assert verdict.status == "failed" and "one target per image" in verdict.message


def test_gram_loss_per_image_is_one_line(model):
    def per_image(features, target_gram):
        c = features.shape[1]
        return ((gram(features) - target_gram) ** 2).sum(dim=(1, 2)) / (4 * c ** 2)
    verdict = check.gram_loss(per_image, model)
    assert verdict.status == "failed" and "single number" in verdict.message
    assert _one_line(verdict.message)


def test_checks_keep_inputs_float32(model):
    seen = []

    def spy(features):
        seen.append(features.dtype)
        n, c, h, w = features.shape
        f = features.reshape(n, c, h * w)
        return torch.bmm(f, f.transpose(1, 2)) / (h * w)
    check.gram(spy, model)
    assert set(seen) == {torch.float32}
