import os
import pytest
import torch
import torch.nn.functional as F
import torchvision

import helpers
from helpers import models
from helpers.efficientnet import Conv2dSame


def _top1(model, x, y):
    with torch.inference_mode():
        pred = torch.cat([model(x[i:i + 8]).argmax(1) for i in range(0, len(x), 8)])
    return (pred == y).float().mean().item()


def test_offline_model_accuracy_on_imagenet_samples(model, imagenet_photos):
    x, y, _ = imagenet_photos
    acc = _top1(model, x, y)
    assert acc >= 0.80, f"top-1 {acc:.2f} on {len(y)} samples"


def test_symmetric_padding_is_measurably_worse(model, imagenet_photos, monkeypatch):
    """The TF 'same' padding is what the checkpoint was trained with: dropping it must hurt."""
    x, y, _ = imagenet_photos
    good = _top1(model, x, y)

    def symmetric(self, inp):
        pad = [k // 2 for k in self.kernel_size]
        return F.conv2d(inp, self.weight, self.bias, self.stride, pad, self.dilation, self.groups)
    monkeypatch.setattr(Conv2dSame, "forward", symmetric)
    bad = _top1(model, x, y)
    assert bad < good - 0.02, (good, bad)


def test_tf_same_padding_pads_bottom_right():
    conv = Conv2dSame(1, 1, 3, 2, bias=False)
    x = torch.randn(1, 1, 8, 8)
    expected = F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)  # TF: extra pixel at the end
    assert torch.allclose(conv(x), expected)
    assert conv(torch.randn(1, 1, 224, 224)).shape[-1] == 112


def test_offline_model_classifies_the_cat(model, cat):
    top = helpers.predict(model, cat, k=5)[0]
    assert any("cat" in name for _, name, _ in top), top


def test_model_contract(model):
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert len(model.classes) == 1000 and model.input_size == 224
    assert "blocks.15" in dict(model.named_modules())
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x), model._net(2 * x - 1), atol=1e-5)  # [0,1] -> [-1,1] inside


def test_unknown_model_name_lists_choices():
    with pytest.raises(ValueError, match="efficientnet_lite0.*alexnet"):
        helpers.load_model("alexnett")


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(models, "online", lambda url, timeout=3.0: False)
    return tmp_path


def test_torchvision_model_offline_raises_one_clear_error(offline_hub):
    with pytest.raises(models.ModelUnavailable, match=r"alexnet.*offline.*efficientnet_lite0"):
        helpers.load_model("alexnet")


def test_torchvision_model_offline_falls_back_with_one_line(offline_hub, capsys):
    m = helpers.load_model("vgg16", fallback=True)
    assert m.name == "efficientnet_lite0"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vgg16" in err[0] and "Using efficientnet_lite0" in err[0]


def test_cached_torchvision_weights_load_safely(offline_hub, monkeypatch):
    """The real loading path: weights found in torch's hub cache, read with weights_only=True."""
    reference = torchvision.models.resnet18(weights=None)
    path = models._checkpoint_path("resnet18")
    os.makedirs(os.path.dirname(path))
    torch.save(reference.state_dict(), path)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)
    monkeypatch.setattr(torch, "load", spy)
    assert "resnet18" in helpers.available_models()
    m = helpers.load_model("resnet18")
    assert calls == [True]
    x = torch.rand(1, 3, 64, 64)
    mean = torch.tensor(models.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(models.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(m(x), reference.eval()((x - mean) / std), atol=1e-5)
    assert "layer4.1.conv2" in dict(m.named_modules())  # torchvision's own names


def test_untrained_torchvision_model_works_offline():
    m = helpers.load_model("alexnet", pretrained=False)
    assert m.features[0].weight.shape == (64, 3, 11, 11)
    m.train()
    assert m._net.training  # the flag reaches the wrapped network (GoogLeNet reads it)


def test_offline_checkpoint_loaded_with_weights_only(monkeypatch):
    seen = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("weights_only")) or real_load(*a, **k))
    helpers.load_model()
    assert seen == [True]


def test_class_index_accepts_names_and_rejects_bad_targets(model):
    assert helpers.class_index(model, "tabby") == 281
    assert helpers.class_index(model, 5) == 5
    with pytest.raises(ValueError, match="0..999"):
        helpers.class_index(model, 1000)
    with pytest.raises(ValueError, match="did you mean"):
        helpers.class_index(model, "tabbby cat")


def test_one_class_resolver_one_exception_type():
    """Every helper resolves classes through models.class_index and raises ValueError."""
    named = torch.nn.Linear(2, 3)
    named.classes = ["cat", "catamaran", "dog"]
    plain = torch.nn.Linear(2, 3)  # no class names: any integer index
    assert helpers.class_index(named, "DOG") == 2 and helpers.class_index(named, "catam") == 1
    assert helpers.class_index(named, torch.tensor(1)) == 1
    assert helpers.class_index(plain, 7) == 7
    with pytest.raises(ValueError, match=r"matches 2 classes.*'cat', 'catamaran'"):
        helpers.class_index(named, "ca")
    with pytest.raises(ValueError, match=r"no class names.*use an index"):
        helpers.class_index(plain, "cat")
    with pytest.raises(ValueError, match="index or a name"):
        helpers.class_index(named, 1.5)


def _bn_stats(m):
    """Give every batch norm non-trivial statistics, as a trained network has."""
    g = torch.Generator().manual_seed(0)
    for bn in m.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=g) * 0.1)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
    return m


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_inference_copy_folds_batch_norms_and_computes_the_same(name, cat):
    m = _bn_stats(helpers.load_model(name, pretrained=False))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = torch.stack([cat, cat.flip(-1)])
    fast = models.inference_copy(m, x)
    assert fast is not m
    assert not any(isinstance(b, torch.nn.BatchNorm2d) for b in fast._net.modules())
    assert isinstance(fast.bn1, torch.nn.Identity)  # top level too (Normalized lists it)
    with torch.inference_mode():
        want, got = m(x), fast(x.contiguous(memory_format=torch.channels_last))
    assert (got - want).abs().max() < 1e-4 * want.abs().max()
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())  # model untouched
    assert models.inference_copy(m, x) is fast  # kept for the session
    with torch.no_grad():
        next(m.parameters()).mul_(2)
    assert models.inference_copy(m, x) is not fast  # rebuilt when a parameter changed


def test_inference_copy_returns_the_model_when_folding_would_change_it():
    class Tap(torch.nn.Module):
        """The convolution's output also skips its batch norm: folding would be wrong."""

        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return (self.bn(y) + y).mean((2, 3))

    tap = _bn_stats(Tap()).eval()
    x = torch.rand(2, 3, 16, 16)
    assert models.inference_copy(tap, x) is tap
    plain = helpers.load_model("squeezenet1_1", pretrained=False)  # no batch norm to fold
    assert models.inference_copy(plain, torch.rand(1, 3, 64, 64)) is plain
    assert models.inference_copy(tap.train(), x) is tap


def test_model_moves_inputs_to_its_own_device():
    # A model on another device (meta stands in for CUDA/MPS here) takes CPU images as they are.
    m = helpers.load_model(pretrained=False, device="meta")
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)  # also a dtype the model does not use
    out = m(x)
    assert out.device.type == "meta" and out.dtype == torch.float32
    assert out.shape == (2, 1000)


def test_model_passes_gradients_back_to_a_cpu_input(model):
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    (g,) = torch.autograd.grad(model(x)[0, 281], x)
    assert g.device == x.device and g.abs().sum() > 0


# --------------------------------------------------------------------------- online check, proxies
class _DummyProxy:
    """A proxy on localhost that answers every request with ``status`` and logs request lines."""

    def __init__(self, status=200):
        import http.server
        import threading
        seen, code = [], status

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                seen.append(self.requestline)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if self.command == "CONNECT":  # no real tunnel: the TLS handshake then fails
                    self.close_connection = True
            do_HEAD = do_GET = do_CONNECT = _answer

            def log_message(self, *args):
                pass

        self.seen = seen
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy_env(monkeypatch):
    """``use(proxy)``: only that proxy in the environment, no NO_PROXY exceptions."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)

    def use(proxy):
        for var in ("HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.setenv(var, proxy.url)
    return use


def test_online_goes_through_the_proxy_in_the_environment(proxy_env):
    """A campus network: only the proxy reaches the web. The check must ask it, not the host."""
    proxy = _DummyProxy()
    try:
        proxy_env(proxy)
        url = "http://downloads.example.invalid/weights.pth"  # resolves nowhere without the proxy
        assert models.online(url, timeout=5)
        assert proxy.seen == [f"HEAD {url} HTTP/1.1"]
        models.online("https://download.pytorch.org/models/alexnet.pth", timeout=5)
        assert proxy.seen[-1].startswith("CONNECT download.pytorch.org:443 ")
    finally:
        proxy.close()


def test_online_is_false_when_the_proxy_cannot_reach_the_host(proxy_env):
    proxy = _DummyProxy(status=502)
    try:
        proxy_env(proxy)
        assert not models.online("http://downloads.example.invalid/weights.pth", timeout=5)
        assert len(proxy.seen) == 1
    finally:
        proxy.close()


def test_online_without_proxy_and_network_is_false(proxy_env, monkeypatch):
    import socket
    tried = []

    def refuse(*args, **kwargs):
        tried.append(args)
        raise OSError("network disabled in tests")
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert not models.online("https://download.pytorch.org/models/alexnet.pth", timeout=1)
    assert tried and tried[0][0][0] == "download.pytorch.org"  # it tried the host directly
