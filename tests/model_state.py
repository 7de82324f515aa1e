"""What a helper could leave changed on a model, and the check that it left nothing."""
import torch

from helpers import leftover_hooks


def state(model):
    """Everything a helper could leave changed: modules, flags, hooks, weights."""
    return ([(n, type(m), id(m), getattr(m, "inplace", None), m.training)
             for n, m in model.named_modules()],
            [(n, p.requires_grad) for n, p in model.named_parameters()],
            {k: v.clone() for k, v in model.state_dict().items()})


def assert_unchanged(model, before):
    after = state(model)
    assert after[0] == before[0] and after[1] == before[1]
    assert all(torch.equal(after[2][k], v) for k, v in before[2].items())
    assert leftover_hooks(model) == []
    for m in model.modules():  # also the tensor-level backward pre-hooks leftover_hooks may skip
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        assert not m._backward_pre_hooks
    assert torch._C._len_torch_function_stack() == 0  # no TorchFunctionMode left active
