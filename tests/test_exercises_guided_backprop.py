"""Notebook 07's checks: the guided ReLU as an autograd function, guided backprop with hooks."""
import torch
from exercise_support import solution

from helpers import exercises as check
from helpers.exercises.verdict import tiny_cnn
from helpers.hooks import leftover_hooks

STEM = "07_guided_backprop"


def relu_rule(backward, save=True):
    """A student's MyGuidedReLU with forward = ReLU and the given backward(z, grad)."""

    class Student(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            if save:
                ctx.save_for_backward(z)
            return z.clamp(min=0)

        @staticmethod
        def backward(ctx, grad):
            z, = ctx.saved_tensors
            return backward(z, grad)

    return Student


def test_the_notebooks_guided_relu_passes_as_a_function_and_as_the_class():
    assert check.guided_relu(solution(STEM, "my_guided_relu")).status == "passed"
    assert check.guided_relu(solution(STEM, "MyGuidedReLU")).status == "passed"


def test_a_stub_is_not_done():
    class Stub(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            raise NotImplementedError()

        @staticmethod
        def backward(ctx, grad):
            raise NotImplementedError()

    assert check.guided_relu(Stub).status == "not done"


def test_the_usual_wrong_rules_fail_with_their_hint():
    wrong = {
        "ordinary ReLU gradient": lambda z, g: g * (z > 0),            # no positive-grad mask
        "deconvnet rule": lambda z, g: g.clamp(min=0),                 # no forward mask
        "mask is inverted": lambda z, g: g.clamp(min=0) * (z <= 0),
        "return the mask itself": lambda z, g: ((z > 0) & (g > 0)).float(),
        "use z > 0": lambda z, g: g.clamp(min=0) * (z >= 0),
    }
    for hint, backward in wrong.items():
        verdict = check.guided_relu(relu_rule(backward))
        assert verdict.status == "failed", hint
        assert hint in verdict.message, verdict.message


def test_forgetting_to_save_the_input_names_the_students_line():
    verdict = check.guided_relu(relu_rule(lambda z, g: g * (z > 0) * (g > 0), save=False))
    assert verdict.status == "failed" and "\n" not in verdict.message
    assert "ctx.saved_tensors" in verdict.message and "Traceback" not in verdict.message


def test_a_wrong_forward_shape_is_one_line():
    class Flat(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return z.clamp(min=0).flatten()

    verdict = check.guided_relu(Flat)
    assert verdict.status == "failed" and "\n" not in verdict.message.split("\n  Hint:")[0]
    assert "has shape (560,), expected (2, 8, 5, 7)" in verdict.message


def _guided(model, image, target, relu=None, remove=True, score=None):
    relu = relu or solution(STEM, "my_guided_relu")
    x = image.unsqueeze(0).clone().requires_grad_(True)
    handles = [m.register_forward_hook(lambda mod, inputs, out: relu(inputs[0]))
               for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    try:
        out = model(x)
        s = (score or (lambda o: o[0, target]))(out)
    finally:
        if remove:
            for h in handles:
                h.remove()
    return torch.autograd.grad(s, x)[0][0]


def test_the_notebooks_guided_backprop_passes_and_leaves_no_hooks():
    model = tiny_cnn()
    assert check.guided_backprop(solution(STEM, "my_guided_backprop"), model).status == "passed"
    assert leftover_hooks(model) == []


def test_a_guided_backprop_stub_is_not_done():
    def stub(model, image, target):
        raise NotImplementedError()
    assert check.guided_backprop(stub).status == "not done"


def test_wrong_guided_backprops_fail_with_their_hint():
    model = tiny_cnn()
    leaky = check.guided_backprop(lambda m, x, t: _guided(m, x, t, remove=False), model)
    assert leaky.status == "failed" and "left hooks on 2 module(s)" in leaky.message
    assert leftover_hooks(model) == []  # the check cleans up after the student
    plain = check.guided_backprop(lambda m, x, t: _guided(m, x, t, relu=lambda z: None))
    assert plain.status == "failed" and "ordinary gradient" in plain.message
    prob = check.guided_backprop(
        lambda m, x, t: _guided(m, x, t, score=lambda o: o.softmax(1)[0, t]))
    assert prob.status == "failed" and "not the probability" in prob.message


def test_a_batch_dimension_is_one_line():
    verdict = check.guided_backprop(lambda m, x, t: _guided(m, x, t)[None])
    assert verdict.status == "failed" and "\n" not in verdict.message.split("\n  Hint:")[0]
    assert "has shape (1, 3, 37, 53), expected (3, 37, 53)" in verdict.message


def test_a_wrong_rule_outside_the_known_mistakes_shows_the_general_hint():
    verdict = check.guided_relu(relu_rule(lambda z, g: g.abs() * (z > 0)))  # |grad|
    assert verdict.status == "failed"
    assert "\n  Hint: forward returns z.clamp(min=0) and saves z" in verdict.message


def test_a_wrong_map_outside_the_known_mistakes_shows_the_general_hint():
    verdict = check.guided_backprop(
        lambda m, x, t: _guided(m, x, t, score=lambda o: o.log_softmax(1)[0, t]))
    assert verdict.status == "failed"
    assert "\n  Hint: hook every nn.ReLU with a forward hook" in verdict.message


def test_hooks_left_after_an_exception_are_rejected():
    def no_finally(model, image, target):
        relu = solution(STEM, "my_guided_relu")
        x = image.unsqueeze(0).clone().requires_grad_(True)
        hs = [m.register_forward_hook(lambda mod, inputs, out: relu(inputs[0]))
              for m in model.modules() if isinstance(m, torch.nn.ReLU)]
        model(x)[0, target].backward()
        for h in hs:
            h.remove()
        return x.grad[0]

    model = tiny_cnn()
    verdict = check.guided_backprop(no_finally, model)
    assert verdict.status == "failed" and leftover_hooks(model) == []
    assert "forward pass raises" in verdict.message
    assert "after the model raised an exception, your function left hooks" in verdict.message
    assert "finally" in verdict.message


def test_swallowing_the_models_exception_is_rejected():
    def swallowed(model, image, target):
        try:
            return _guided(model, image, target)
        except Exception:
            return torch.zeros_like(image)
    verdict = check.guided_backprop(swallowed)
    assert verdict.status == "failed" and "did not reach the caller" in verdict.message
