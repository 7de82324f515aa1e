"""helpers.device: where tensors live and how many CPU threads torch uses."""
import importlib

import pytest
import torch

device = importlib.import_module("helpers.device")  # helpers.device is also the function device()


def test_one_thread_on_a_busy_cpu_and_restored_after(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(device.os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    assert device.busy_cpu()
    with device.cpu_threads() as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.setattr(device.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    with device.cpu_threads() as n:
        assert n == before == torch.get_num_threads()
    with pytest.raises(RuntimeError), device.cpu_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == before


def test_thread_policy_works_without_getloadavg(monkeypatch):
    # Windows has no os.getloadavg: the policy must not crash there (notebooks 02 and 04 use it).
    monkeypatch.delattr(device.os, "getloadavg")
    before = torch.get_num_threads()
    assert device.busy_cpu() is False
    with device.cpu_threads() as n:
        assert n == before == torch.get_num_threads()
    with device.small_image_threads(32, 32):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_model_device_of_parameters_buffers_and_empty_modules():
    assert device.model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert device.model_device(torch.nn.Linear(2, 2, device="meta")) == torch.device("meta")
    assert device.model_device(torch.nn.BatchNorm2d(3, affine=False).to("meta")).type == "meta"
    assert device.model_device(torch.nn.ReLU()) == torch.device("cpu")
    assert isinstance(device.model_device(torch.nn.Linear(2, 2)), torch.device)
