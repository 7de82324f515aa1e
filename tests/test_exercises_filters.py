"""The checks of 01_filters: the notebook's solutions pass, a stub is "not done yet", and the
usual wrong answers fail, each with its hint."""
import pytest
import torch
from exercise_support import solution

from helpers import exercises as check


def stub(*args):
    raise NotImplementedError()


# --------------------------------------------------------------------------- kernel_tiles

def whole_bank(weight):
    w = (weight - weight.min()) / (weight.max() - weight.min())
    return w.permute(0, 2, 3, 1)


def per_colour(weight):
    lo = weight.amin(dim=(2, 3), keepdim=True)
    hi = weight.amax(dim=(2, 3), keepdim=True)
    return ((weight - lo) / (hi - lo)).permute(0, 2, 3, 1)


def per_filter(weight):
    lo = weight.amin(dim=(1, 2, 3), keepdim=True)
    hi = weight.amax(dim=(1, 2, 3), keepdim=True)
    return (weight - lo) / (hi - lo)


def channels_first(weight):
    return per_filter(weight)


def reshaped(weight):
    n, c, k, _ = weight.shape
    return per_filter(weight).reshape(n, k, k, c)


def divided_by_max(weight):
    return (weight / weight.abs().amax(dim=(1, 2, 3), keepdim=True)).permute(0, 2, 3, 1)


def test_the_notebook_solution_passes_on_the_tiny_and_the_real_model(model):
    assert check.kernel_tiles(solution("01_filters", "my_kernel_tiles"))
    assert check.kernel_tiles(solution("01_filters", "my_kernel_tiles"), model)


def test_kernel_tiles_stub_is_not_done():
    assert check.kernel_tiles(stub).status == "not done"


@pytest.mark.parametrize("wrong, hint", [
    (whole_bank, "normalize each filter on its own"),
    (per_colour, "use one min and one max per filter"),
    (channels_first, "the colour axis must come last"),
    (reshaped, "reshape keeps the memory order"),
    (divided_by_max, "each tile is (w - min) / (max - min)"),  # no known mistake: the general hint
])
def test_kernel_tiles_rejects_the_usual_mistakes(wrong, hint):
    verdict = check.kernel_tiles(wrong)
    assert verdict.status == "failed"
    assert f"Hint: {hint}" in verdict.message


def test_kernel_tiles_names_a_wrong_shape_in_one_line():
    verdict = check.kernel_tiles(lambda w: per_filter(w).flatten(1))
    first = verdict.message.splitlines()[0]
    assert verdict.status == "failed" and "Traceback" not in verdict.message
    assert "has shape (5, 147), expected (5, 7, 7, 3)" in first


def test_kernel_tiles_reports_the_students_own_line_when_it_raises():
    def broken(weight):
        lo = weight.amin(dim=(1, 2, 3, 4))
        return weight - lo
    verdict = check.kernel_tiles(broken)
    assert verdict.status == "failed" and len(verdict.message.splitlines()) == 1
    assert "lo = weight.amin(dim=(1, 2, 3, 4))" in verdict.message


# --------------------------------------------------------------------------- channel_tiles

def input_channel(weight, channel):
    w = weight[:, channel]
    lo, hi = w.amin(dim=(1, 2), keepdim=True), w.amax(dim=(1, 2), keepdim=True)
    return (w - lo) / (hi - lo)


def whole_kernel(weight, channel):
    w = weight[channel]
    return (w - w.min()) / (w.max() - w.min())


def raw(weight, channel):
    return weight[channel]


def test_channel_tiles_solution_passes_on_the_tiny_and_the_real_model(model):
    assert check.channel_tiles(solution("01_filters", "my_channel_tiles"))
    assert check.channel_tiles(solution("01_filters", "my_channel_tiles"), model)


def test_channel_tiles_stub_is_not_done():
    assert check.channel_tiles(stub).status == "not done"


@pytest.mark.parametrize("wrong, hint", [
    (input_channel, "weight[:, channel] is one input channel"),
    (whole_kernel, "rescale each tile on its own"),
    (raw, "rescale every tile to [0, 1]"),
])
def test_channel_tiles_rejects_the_usual_mistakes(wrong, hint):
    verdict = check.channel_tiles(wrong)
    assert verdict.status == "failed"
    assert hint in verdict.message


def test_channel_tiles_names_a_wrong_shape_in_one_line():
    verdict = check.channel_tiles(lambda w, c: whole_kernel(w, c)[None])
    assert verdict.status == "failed" and "Traceback" not in verdict.message
    assert "has shape (1, 6, 3, 3), expected (6, 3, 3)" in verdict.message.splitlines()[0]


def test_channel_tiles_uses_a_deeper_full_kernel_when_there_is_one(untrained):
    from helpers.exercises.filters import _deeper_conv
    assert _deeper_conv(untrained("alexnet")) == "features.3"
    assert _deeper_conv(check.verdict.tiny_cnn()) == "2"


def test_the_checks_leave_the_weights_alone(model):
    before = [p.clone() for p in model.parameters()][:3]
    check.kernel_tiles(lambda w: w.sub_(1))  # a function that edits its input in place
    check.channel_tiles(solution("01_filters", "my_channel_tiles"), model)
    assert all(torch.equal(a, b) for a, b in zip(before, list(model.parameters())[:3]))
