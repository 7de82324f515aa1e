"""The machinery every exercise check uses: verdicts, comparisons, hints, the student's own line."""
import pytest
import torch

from helpers.exercises import Case, Mismatch, Mistake, close, run
from helpers.exercises.verdict import random_images, tiny_cnn

CASES = [Case("a vector", (torch.arange(4.0) - 2,)), Case("a 2x3 matrix", (torch.randn(2, 3),))]


def reference(x):
    return x.abs()


def test_the_reference_passes_and_the_verdict_is_printed(capsys):
    verdict = run("absolute", lambda x: torch.abs(x), reference, CASES)
    assert verdict and verdict.status == "passed"
    assert capsys.readouterr().out.startswith("✓ absolute: passed on 2 inputs (a vector; a 2x3")


def test_a_stub_is_not_done_yet():
    def stub(x):
        raise NotImplementedError()
    verdict = run("absolute", stub, reference, CASES)
    assert verdict.status == "not done" and not verdict and "not done yet" in verdict.message


def test_a_wrong_value_names_the_element_and_both_values():
    verdict = run("absolute", lambda x: x, reference, CASES)
    assert verdict.status == "failed"
    assert "on a vector, the output differs at element (0,): expected 2, got -2" in verdict.message


def test_a_known_mistake_gets_its_hint_and_an_unknown_one_the_general_hint():
    mistakes = [Mistake(lambda x: x.clone(), "take the absolute value")]
    assert "Hint: take the absolute value" in run("absolute", lambda x: x, reference, CASES,
                                                  mistakes=mistakes).message
    verdict = run("absolute", lambda x: 2 * x, reference, CASES, mistakes=mistakes, hint="general")
    assert "Hint: general" in verdict.message


def test_a_wrong_shape_is_one_line_without_a_traceback():
    verdict = run("absolute", lambda x: x.abs().sum(), reference, CASES)
    assert verdict.message.count("\n") == 0
    assert "the output has shape (), expected (4,)" in verdict.message


def test_an_error_in_the_students_code_names_their_line():
    def mine(x):
        y = x.abs()
        return y @ torch.ones(7)
    verdict = run("absolute", mine, reference, CASES)
    assert verdict.status == "failed" and "RuntimeError" in verdict.message
    assert "(in mine, line" in verdict.message and "return y @ torch.ones(7)" in verdict.message
    assert "Traceback" not in verdict.message


def test_the_student_cannot_change_the_next_input_in_place():
    def in_place(x):
        return x.abs_()
    shared = torch.tensor([-1.0, 2.0])
    verdict = run("absolute", in_place, reference, [Case("a", (shared,)), Case("b", (shared,))])
    assert verdict.passed and shared.tolist() == [-1.0, 2.0]


def test_passing_a_value_instead_of_the_function_is_explained():
    verdict = run("absolute", torch.ones(3), reference, CASES)
    assert verdict.status == "failed" and "Pass the function itself" in verdict.message


@pytest.mark.parametrize("got, expected, message", [
    (torch.ones(2), (torch.ones(2), torch.ones(2)), "should be a tuple of 2 values"),
    ([1.0], torch.ones(1), "should be a torch tensor, got list"),
    (torch.tensor([float("nan")]), torch.ones(1), "contains NaN"),
    (3, 4, "expected 4, got 3"),
])
def test_close_explains_each_kind_of_difference(got, expected, message):
    with pytest.raises(Mismatch, match=message):
        close(got, expected)


def test_close_accepts_numpy_and_small_float_errors():
    close(torch.ones(3).numpy() + 1e-7, torch.ones(3))
    close(0.1 + 0.2, 0.3)


def test_the_check_network_and_images_are_deterministic():
    x = random_images(2, 11, 13, seed=3)
    assert x.shape == (2, 3, 11, 13) and torch.equal(x, random_images(2, 11, 13, seed=3))
    assert torch.equal(tiny_cnn()(x), tiny_cnn()(x)) and tiny_cnn()(x).shape == (2, 10)
    assert not any(p.requires_grad for p in tiny_cnn().parameters())
