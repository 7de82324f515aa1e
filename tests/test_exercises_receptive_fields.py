"""Notebook 04's exercises: the receptive-field recurrence and the box a unit sees.

The notebook's own solutions pass, stubs are "not done", and wrong answers written the way
students write them fail, with the hint for their mistake.
"""
import pytest
from exercise_support import solution

from helpers import exercises as check

NB = "04_max_patches"


def stub(*args):
    raise NotImplementedError()


# --------------------------------------------------------------------------- receptive_field
def test_the_notebook_solution_passes():
    assert check.receptive_field(solution(NB, "my_receptive_field")).passed


def test_a_stub_is_not_done():
    assert check.receptive_field(stub).status == "not done"


def no_jump_in_size(layers):
    r, j, o = 1, 1, 0
    for k, s, p in layers:
        r += k - 1
        o -= p * j
        j *= s
    return r, j, o


def jump_updated_first(layers):
    r, j, o = 1, 1, 0
    for k, s, p in layers:
        j *= s
        r += (k - 1) * j
        o -= p * j
    return r, j, o


def padding_added(layers):
    r, j, o = 1, 1, 0
    for k, s, p in layers:
        r += (k - 1) * j
        o += p * j
        j *= s
    return r, j, o


def padding_forgotten(layers):
    r, j = 1, 1
    for k, s, p in layers:
        r += (k - 1) * j
        j *= s
    return r, j, 0


def padding_not_scaled(layers):
    r, j, o = 1, 1, 0
    for k, s, p in layers:
        r += (k - 1) * j
        o -= p
        j *= s
    return r, j, o


def centre_of_the_window(layers):  # Distill's other convention: the centre of unit 0
    r, j, o = 1, 1, 0.0
    for k, s, p in layers:
        o += ((k - 1) / 2 - p) * j
        r += (k - 1) * j
        j *= s
    return r, j, o


@pytest.mark.parametrize("wrong, hint", [
    (no_jump_in_size, "r_l = r_{l-1} + (k - 1) * j_{l-1}"),
    (jump_updated_first, "update the jump last"),
    (padding_added, "(minus)"),
    (padding_forgotten, "padding moves it back"),
    (padding_not_scaled, "p * j_{l-1} input pixels"),
    (centre_of_the_window, "(not its centre)"),
])
def test_usual_mistakes_fail_with_their_hint(wrong, hint):
    verdict = check.receptive_field(wrong)
    assert verdict.status == "failed"
    assert "\n  Hint: " in verdict.message and hint in verdict.message


def test_a_wrong_shape_is_one_line():
    verdict = check.receptive_field(lambda layers: 3)
    assert verdict.status == "failed" and verdict.message.count("\n") == 1  # verdict + hint
    assert "should return a tuple (size, jump, start), got 3 (int)" in verdict.message
    verdict = check.receptive_field(lambda layers: (3, 1))
    assert "got 2 values" in verdict.message and "Traceback" not in verdict.message


def test_a_wrong_value_names_it():
    verdict = check.receptive_field(padding_added)
    assert "start is 1, expected -1 (you returned (3, 1, 1), expected (3, 1, -1))" in verdict.message


# --------------------------------------------------------------------------- unit_box
def test_the_notebook_unit_box_passes():
    assert check.unit_box(solution(NB, "my_unit_box")).passed


def test_a_unit_box_stub_is_not_done():
    assert check.unit_box(stub).status == "not done"


def not_clipped(rf, row, col, size):
    r, j, o = rf
    return o + row * j, o + col * j, o + row * j + r, o + col * j + r


def inclusive_end(rf, row, col, size):
    r, j, o = rf
    top, left = max(o + row * j, 0), max(o + col * j, 0)
    return top, left, min(o + row * j + r - 1, size), min(o + col * j + r - 1, size)


def row_and_col_swapped(rf, row, col, size):
    r, j, o = rf
    top, left = o + col * j, o + row * j
    return max(top, 0), max(left, 0), min(top + r, size), min(left + r, size)


def clipped_to_the_last_pixel(rf, row, col, size):
    r, j, o = rf
    top, left = o + row * j, o + col * j
    return max(top, 0), max(left, 0), min(top + r, size - 1), min(left + r, size - 1)


@pytest.mark.parametrize("wrong, hint", [
    (not_clipped, "clip the box to the image"),
    (inclusive_end, "bottom and right are exclusive, like a Python slice"),
    (row_and_col_swapped, "row moves the box down"),
    (clipped_to_the_last_pixel, "so clip them to size, not size - 1"),
])
def test_usual_unit_box_mistakes_fail_with_their_hint(wrong, hint):
    verdict = check.unit_box(wrong)
    assert verdict.status == "failed" and "\n  Hint: " in verdict.message
    assert hint in verdict.message


def test_a_wrong_unit_box_shape_is_one_line():
    verdict = check.unit_box(lambda rf, row, col, size: (0, 0, size))
    assert verdict.status == "failed" and "Traceback" not in verdict.message
    assert "should return a tuple (top, left, bottom, right), got 3 values" in verdict.message
