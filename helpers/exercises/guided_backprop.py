"""Checks for notebook 07: the guided ReLU as an autograd function, and guided backprop with hooks.

Both run on ``verdict.tiny_cnn`` (plain ``nn.ReLU`` activations) and compare with
``helpers.rectifiers.Rectifiers("guided")`` and ``helpers.attribution.guided_backprop``; the
usual wrong rules (the ordinary gradient, the deconvnet rule, an inverted or bare mask) are
written as autograd functions too, so their hints apply to single tensors and whole networks.
"""
from collections import namedtuple

import torch
import torch.nn.functional as F

from ..attribution import guided_backprop as _reference_map
from ..device import model_device
from ..images import load_image
from ..rectifiers import Rectifiers
from . import verdict
from .verdict import Case, Mismatch, Mistake, close

__all__ = ["guided_backprop", "guided_relu"]


def _rule(backward):
    """An autograd ReLU whose backward is ``backward(z, grad)`` (for the usual mistakes)."""

    class Rule(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return z.clamp(min=0)

        @staticmethod
        def backward(ctx, grad):
            z, = ctx.saved_tensors
            return backward(z, grad)

    return Rule.apply


_PLAIN = _rule(lambda z, g: g * (z > 0))
_DECONVNET = _rule(lambda z, g: g.clamp(min=0))
_INVERTED = _rule(lambda z, g: g.clamp(min=0) * (z <= 0))
_BARE_MASK = _rule(lambda z, g: ((z > 0) & (g > 0)).to(g.dtype))
_AT_ZERO = _rule(lambda z, g: g.clamp(min=0) * (z >= 0))


def _helpers_relu(z):
    with Rectifiers("guided"):
        return F.relu(z)


def _apply_of(student):
    """``MyGuidedReLU`` (the class) or ``MyGuidedReLU.apply``: the function to call on a tensor."""
    apply = getattr(student, "apply", None)
    if isinstance(student, type) and issubclass(student, torch.autograd.Function):
        return apply
    return student


def _replace_relus(model, relu):
    """Forward hooks that make every ``nn.ReLU`` of ``model`` return ``relu(its input)``."""
    return [m.register_forward_hook(lambda mod, inputs, out: relu(inputs[0]))
            for m in model.modules() if isinstance(m, torch.nn.ReLU)]


def _through(relu, first, *rest):
    """``relu`` on one tensor -> (output, input gradient); on a network -> its guided map."""
    if isinstance(first, torch.nn.Module):
        model, image, target = first, *rest
        if relu is _helpers_relu:
            return _reference_map(model, image, target)
        x = image.unsqueeze(0).requires_grad_(True)
        handles = _replace_relus(model, relu)
        try:
            score = model(x)[0, target]
        finally:
            for h in handles:
                h.remove()
        grad, = torch.autograd.grad(score, x)
        return grad[0]
    z, grad = first, *rest
    z = z.requires_grad_(True)
    out = relu(z)
    if not isinstance(out, torch.Tensor) or out.shape != z.shape or not out.requires_grad:
        return out, None  # the comparison says what is wrong with the forward output
    back, = torch.autograd.grad(out, z, grad, allow_unused=True)
    if back is None:
        raise RuntimeError("no gradient reached the input: backward must return the gradient "
                           "with respect to z")
    return out.detach(), back


def _compare_relu(got, expected):
    if isinstance(expected, torch.Tensor):
        return close(got, expected, what="the guided backprop map")
    if not isinstance(got, tuple):
        raise Mismatch(f"expected the output of my_guided_relu(z), got {type(got).__name__}")
    close(got[0], expected[0], what="the forward output (a ReLU)")
    if got[1] is None:
        raise Mismatch("the forward output is not connected to the input: compute it from z, "
                       "not under torch.no_grad()")
    close(got[1], expected[1], what="the gradient at the input")


def _relu_cases(model):
    dev = model_device(model)
    g = torch.Generator().manual_seed(7)
    z = torch.randn(2, 8, 5, 7, generator=g)
    up = torch.randn(2, 8, 5, 7, generator=g)
    z[0, 0, 0, :4], up[0, 0, 0, :4] = 0.0, 1.0  # units exactly at the kink, positive signal
    z1, up1 = torch.randn(1, 16, 3, 3, generator=g), torch.randn(1, 16, 3, 3, generator=g)
    photo = load_image("chelsea", 48).to(dev)
    with torch.no_grad():
        top = int(model(photo[None]).argmax())
    return [Case("a (2, 8, 5, 7) tensor with a random gradient from above", (z.to(dev), up.to(dev))),
            Case("a (1, 16, 3, 3) tensor", (z1.to(dev), up1.to(dev))),
            Case("the small check network on a random 37x53 image, class 3",
                 (model, verdict.random_images(1, 37, 53, seed=3)[0].to(dev), 3)),
            Case("the small check network on the cat photo at 48 px, its top class",
                 (model, photo, top))]


def _model(model):
    return verdict.tiny_cnn() if model is None else model


def guided_relu(student, model=None):
    """Check ``my_guided_relu`` (``MyGuidedReLU.apply`` or the autograd.Function itself):
    forward = ReLU, backward = the guided rule.

    Compared on single tensors and inside a small ReLU network (``model``, default
    ``verdict.tiny_cnn()``; every ``nn.ReLU`` is replaced by the student's function) with
    ``helpers.rectifiers`` and ``helpers.attribution.guided_backprop``.
    """
    model = _model(model)
    if not callable(student):
        return verdict.run("guided ReLU", student, None, [])
    apply = _apply_of(student)
    mistakes = [
        Mistake(lambda *a: _through(_PLAIN, *a),
                "that is the ordinary ReLU gradient (it keeps negative gradients from above): "
                "guided backprop also sets grad < 0 to zero."),
        Mistake(lambda *a: _through(_DECONVNET, *a),
                "that is the deconvnet rule (only grad > 0): guided backprop also needs the "
                "forward mask z > 0, so save z in forward with ctx.save_for_backward(z)."),
        Mistake(lambda *a: _through(_INVERTED, *a),
                "the forward mask is inverted: pass the gradient where the unit was on, z > 0."),
        Mistake(lambda *a: _through(_BARE_MASK, *a),
                "you return the mask itself: multiply it by the gradient from above."),
        Mistake(lambda *a: _through(_AT_ZERO, *a),
                "at z = 0 the unit is off (as for the ordinary ReLU gradient): use z > 0, "
                "not z >= 0."),
    ]
    return verdict.run("guided ReLU", lambda *a: _through(apply, *a),
                       lambda *a: _through(_helpers_relu, *a), _relu_cases(model),
                       compare=_compare_relu, mistakes=mistakes,
                       hint="forward returns z.clamp(min=0) and saves z; backward returns "
                            "grad * (z > 0) * (grad > 0): the gradient from above, kept only "
                            "where the unit was on and the gradient is positive.")


class _Raised(Exception):
    """The exception the check's model raises inside the student's function."""


class _Tripwire(torch.nn.Module):
    """``net`` (the same modules, so the same hooks) whose forward raises after the pass."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        self.net(x)
        raise _Raised("raised by the check's model in its forward pass")


Run = namedtuple("Run", "map left raised")
Run.__doc__ = ("What a guided backprop function did: its map (None when the model raised), the "
               "modules it left hooks on, and whether the model's exception reached the caller.")


def _hooks_left(student):
    """Run the student's function, then report (and remove) the hooks it left on the model."""

    def call(model, image, target):
        before = verdict.hook_ids(model)
        out, raised = None, False
        try:
            out = student(model, image, target)
        except _Raised:
            raised = True
        finally:
            left = verdict.remove_new_hooks(model, before)
        return Run(out, left, raised)
    return call


def _with_no_hooks(fn, left=()):
    """``fn`` as the check runs it, leaving no hooks (or reporting ``left``, for a mistake)."""
    def call(*a):
        try:
            return Run(fn(*a), list(left), False)
        except _Raised:
            return Run(None, list(left), True)
    return call


def _compare_map(got, expected):
    if got.left and not expected.left:
        when = "after the model raised an exception, " if got.raised else ""
        raise Mismatch(f"{when}your function left hooks on {len(got.left)} module(s) "
                       f"({', '.join(got.left)})")
    if expected.left and not got.left:
        raise Mismatch("no hook was left")
    if expected.raised and not got.raised:
        raise Mismatch("the exception raised in the model's forward pass did not reach the "
                       "caller: remove the hooks in a finally block, without an except that "
                       "swallows the error")
    if not expected.raised:
        close(got.map, expected.map, what="the guided backprop map")


def _probability_map(model, image, target):
    x = image.unsqueeze(0).requires_grad_(True)
    with Rectifiers("guided"):
        p = model(x).softmax(1)[0, target]
    return torch.autograd.grad(p, x)[0][0]


def guided_backprop(student, model=None):
    """Check ``my_guided_backprop(model, image, target)`` -> (3, H, W) against
    ``helpers.attribution.guided_backprop`` on a small ReLU network, and that no hook is left,
    also when the model's forward pass raises (a wrapped network whose forward raises)."""
    model = _model(model)
    cases = [c for c in _relu_cases(model) if isinstance(c.args[0], torch.nn.Module)]
    image = verdict.random_images(1, 20, 20, seed=5)[0].to(model_device(model))
    cases.append(Case("the small check network on a random 20x20 image, class 9", (model, image, 9)))
    cases.append(Case("a model whose forward pass raises an exception (your hooks must still be "
                      "removed)", (_Tripwire(model), image, 9)))
    mistakes = [
        Mistake(_with_no_hooks(lambda m, x, t: _reference_map(m, x, t, rule="gradient")),
                "your map is the ordinary gradient: each forward hook must *return* "
                "my_guided_relu(inputs[0]), which replaces the ReLU's output."),
        Mistake(_with_no_hooks(lambda m, x, t: _reference_map(m, x, t, rule="deconvnet")),
                "your map follows the deconvnet rule: check my_guided_relu's backward."),
        Mistake(_with_no_hooks(_probability_map),
                "start from the pre-softmax score model(x)[0, target], not the probability."),
        Mistake(_with_no_hooks(_reference_map, left=["a module"]),
                "put the pass in try: ... finally: for h in handles: h.remove(), so that the "
                "hooks are removed even when the forward or backward pass raises."),
    ]
    return verdict.run("guided backprop", _hooks_left(student) if callable(student) else student,
                       _with_no_hooks(_reference_map), cases, compare=_compare_map,
                       mistakes=mistakes,
                       hint="hook every nn.ReLU with a forward hook that returns "
                            "my_guided_relu(inputs[0]), take torch.autograd.grad of the score "
                            "model(x)[0, target] with respect to x, return it as (3, H, W), and "
                            "remove the hooks in a finally block.")
