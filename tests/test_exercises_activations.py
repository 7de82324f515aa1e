"""The checks of 03_activations: the notebook's solutions pass, a stub is "not done yet", the
usual wrong answers fail with their hints, and the check leaves no hook behind."""
import contextlib

import numpy as np
import pytest
import torch
from exercise_support import solution

from helpers import exercises as check
from helpers.hooks import leftover_hooks


def stub(*args):
    raise NotImplementedError()


# --------------------------------------------------------------------------- record
# Wrong recorders, written the way students write them.

@contextlib.contextmanager
def records_the_input(model, layer):
    rec = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(
        lambda module, inputs, output: rec.__setitem__(layer, inputs[0]))
    try:
        yield rec
    finally:
        handle.remove()


@contextlib.contextmanager
def hooks_the_model(model, layer):
    rec = {}

    def hook(module, inputs, output):
        rec[layer] = output
    handle = model.register_forward_hook(hook)
    try:
        yield rec
    finally:
        handle.remove()


@contextlib.contextmanager
def never_removed(model, layer):
    rec = {}

    def hook(module, inputs, output):
        rec[layer] = output
    dict(model.named_modules())[layer].register_forward_hook(hook)
    yield rec


@contextlib.contextmanager
def removed_without_finally(model, layer):
    rec = {}

    def hook(module, inputs, output):
        rec[layer] = output
    handle = dict(model.named_modules())[layer].register_forward_hook(hook)
    yield rec
    handle.remove()


@contextlib.contextmanager
def swallows_the_error(model, layer):
    rec = {}

    def hook(module, inputs, output):
        rec[layer] = output
    handle = dict(model.named_modules())[layer].register_forward_hook(hook)
    try:
        yield rec
    except Exception:  # noqa: BLE001, S110 - the mistake under test
        pass
    finally:
        handle.remove()


@contextlib.contextmanager
def rebinds_the_dict(model, layer):
    rec = {}

    def hook(module, inputs, output):
        rec = {layer: output}  # noqa: F841 - the mistake: a new local dict, the yielded one stays empty
    handle = dict(model.named_modules())[layer].register_forward_hook(hook)
    try:
        yield rec
    finally:
        handle.remove()


@contextlib.contextmanager
def keeps_every_pass(model, layer):
    rec = {layer: []}
    handle = dict(model.named_modules())[layer].register_forward_hook(
        lambda module, inputs, output: rec[layer].append(output))
    try:
        yield rec
    finally:
        handle.remove()


@contextlib.contextmanager
def changes_the_output(model, layer):
    rec = {}

    def hook(module, inputs, output):
        rec[layer] = output
        return output + 0.5  # the mistake: a returned value replaces the layer's output
    handle = dict(model.named_modules())[layer].register_forward_hook(hook)
    try:
        yield rec
    finally:
        handle.remove()


class AsAClass:
    """A class-based recorder is fine too."""

    def __init__(self, model, layer):
        self.module, self.layer, self.store = dict(model.named_modules())[layer], layer, {}

    def __enter__(self):
        self.handle = self.module.register_forward_hook(
            lambda m, i, o: self.store.__setitem__(self.layer, o))
        return self.store

    def __exit__(self, *exc):
        self.handle.remove()


def test_the_notebook_solution_passes_on_the_tiny_and_the_real_model(model):
    assert check.record(solution("03_activations", "my_record"))
    assert check.record(solution("03_activations", "my_record"), model)
    assert check.record(AsAClass)
    assert leftover_hooks(model) == []


def test_record_stub_is_not_done():
    @contextlib.contextmanager
    def released(model, layer):  # what the student release holds
        # YOUR CODE HERE
        raise NotImplementedError()
    assert check.record(released).status == "not done"


@pytest.mark.parametrize("wrong, hint", [
    (records_the_input, "this is the layer's input"),
    (hooks_the_model, "this is the model's output"),
    (never_removed, "call handle.remove() when the block ends"),
    (removed_without_finally, "put the yield in try: ... finally: handle.remove()"),
    (swallows_the_error, "without an except that swallows the error"),
    (rebinds_the_dict, "without assigning a new dict to rec"),
])
def test_record_rejects_the_usual_mistakes(wrong, hint, model):
    verdict = check.record(wrong, model)
    assert verdict.status == "failed"
    assert hint in verdict.message
    assert leftover_hooks(model) == []


def test_record_names_what_went_wrong_in_one_line():
    verdict = check.record(keeps_every_pass)
    assert verdict.status == "failed" and "Traceback" not in verdict.message
    assert "rec['0'] is a list, not the layer's output tensor" in verdict.message.splitlines()[0]
    verdict = check.record(rebinds_the_dict)
    assert "rec['0'] raised KeyError" in verdict.message.splitlines()[0]
    verdict = check.record(never_removed)
    assert "a hook was still registered after the with block ended" in verdict.message


def test_record_rejects_a_hook_that_changes_the_output(model):
    verdict = check.record(changes_the_output)
    assert verdict.status == "failed"
    assert "the hook changed the model's output: a forward hook that records must return None" \
        in verdict.message.splitlines()[0]
    assert "return nothing" in verdict.message
    assert not check.record(changes_the_output, model)
    assert leftover_hooks(model) == []


def test_a_leaking_recorder_leaves_the_models_hooks_as_they_were(model):
    mine = model.register_forward_hook(lambda *args: None)  # a hook that belongs to the caller
    try:
        check.record(never_removed, model)
        assert leftover_hooks(model) == [""]
    finally:
        mine.remove()
    assert leftover_hooks(model) == []


# --------------------------------------------------------------------------- strongest_channels

def by_peak(maps, k=8):
    return maps.amax(dim=(1, 2)).topk(min(k, len(maps))).indices.tolist()


def ascending(maps, k=8):
    return maps.mean(dim=(1, 2)).argsort()[:k].tolist()


def weakest_first(maps, k=8):
    return maps.mean(dim=(1, 2)).argsort()[-k:].tolist()


def the_values(maps, k=8):
    return maps.mean(dim=(1, 2)).topk(min(k, len(maps))).values


def k_not_clamped(maps, k=8):
    return maps.mean(dim=(1, 2)).topk(k).indices.tolist()


def test_strongest_solution_passes_on_the_tiny_and_the_real_model(model):
    assert check.strongest_channels(solution("03_activations", "my_strongest_channels"))
    assert check.strongest_channels(solution("03_activations", "my_strongest_channels"), model)


def test_strongest_accepts_a_tensor_of_indices():
    assert check.strongest_channels(
        lambda maps, k: maps.mean((1, 2)).topk(min(k, len(maps))).indices)


@pytest.mark.parametrize("indices", [
    lambda maps, k: list(np.argsort(-maps.mean((1, 2)).numpy(), kind="stable")[:k]),  # np ints
    lambda maps, k: np.argsort(-maps.mean((1, 2)).numpy(), kind="stable")[:k],  # an int array
    lambda maps, k: list(maps.mean((1, 2)).topk(min(k, len(maps))).indices),  # 0-dim tensors
    lambda maps, k: tuple(maps.mean((1, 2)).topk(min(k, len(maps))).indices.numpy()),
])
def test_strongest_accepts_other_integer_containers(indices):
    assert check.strongest_channels(indices)


@pytest.mark.parametrize("wrong, message", [
    (lambda maps, k: maps.mean((1, 2)).topk(min(k, len(maps))).values.numpy(),
     "holds floating-point values"),
    (lambda maps, k: list(maps.mean((1, 2)).topk(min(k, len(maps))).values),
     "should be a list of channel indices (ints), got list"),
    (lambda maps, k: [float(i) for i in maps.mean((1, 2)).topk(min(k, len(maps))).indices],
     "should be a list of channel indices (ints), got list"),
    (lambda maps, k: [True] * min(k, len(maps)), "should be a list of channel indices (ints)"),
    (lambda maps, k: np.ones(min(k, len(maps)), dtype=bool),
     "should be a list of channel indices (ints), got ndarray"),
    (lambda maps, k: [torch.tensor(True)] * min(k, len(maps)),
     "should be a list of channel indices (ints)"),
])
def test_strongest_still_rejects_floats_and_bools(wrong, message):
    verdict = check.strongest_channels(wrong)
    assert verdict.status == "failed"
    assert message in verdict.message


def test_strongest_rejects_ranking_by_magnitude():
    def by_magnitude(maps, k=8):
        return maps.abs().sum(dim=(1, 2)).topk(min(k, len(maps))).indices.tolist()
    verdict = check.strongest_channels(by_magnitude)
    assert verdict.status == "failed"
    assert "on signed random maps (10, 7, 9), k=4" in verdict.message
    assert "do not take abs()" in verdict.message


def test_strongest_stub_is_not_done():
    assert check.strongest_channels(stub).status == "not done"


@pytest.mark.parametrize("wrong, hint", [
    (by_peak, "mean activation over all positions, not its peak"),
    (ascending, "these are the weakest channels"),
    (weakest_first, "argsort sorts ascending"),
    (the_values, "not channel indices"),
])
def test_strongest_rejects_the_usual_mistakes(wrong, hint):
    verdict = check.strongest_channels(wrong)
    assert verdict.status == "failed"
    assert hint in verdict.message


def test_strongest_reports_a_k_larger_than_the_channels_in_one_line():
    verdict = check.strongest_channels(k_not_clamped)
    assert verdict.status == "failed" and len(verdict.message.splitlines()) == 1
    assert "more than there are channels), your function raised RuntimeError" in verdict.message


def test_strongest_ties_may_come_in_any_order():
    maps = torch.zeros(4, 2, 2)
    maps[1], maps[3] = 1.0, 1.0
    from helpers.exercises.activations import Ranked, _compare_ranked
    means = maps.mean((1, 2))
    _compare_ranked(Ranked([3, 1], means), Ranked([1, 3], means))  # equal strength: no Mismatch
    with pytest.raises(check.Mismatch, match="at rank 1: expected channel 3"):
        _compare_ranked(Ranked([1, 0], means), Ranked([1, 3], means))
