"""Occlusion, saliency, guided backprop and deconvnet, against Captum and by hand."""
import copy

import pytest
import torch
from captum.attr import Deconvolution, GuidedBackprop, Occlusion, Saliency
from model_state import assert_unchanged, state
from torch import nn

from helpers import LayerError, load_image, record
from helpers.attribution import (
    channels_by_activation,
    deconvnet,
    gradient_image,
    guided_backprop,
    occlusion,
    occlusion_baseline,
    rectified_layers,
    saliency,
)

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")
SIZE = 64  # small photos keep Captum's occlusion fast; the maths does not depend on size


def rel_err(ours, ref):
    """Largest difference relative to the reference map's largest magnitude."""
    return float((ours - ref).abs().max() / ref.abs().max())


@pytest.fixture(scope="module")
def vgg(untrained):
    return untrained("vgg16")


@pytest.fixture(scope="module")
def cat():
    return load_image("chelsea", SIZE)


def _captum_input(x):
    return x[None].clone().requires_grad_(True)


# ----------------------------------------------------------------------------- Captum agreement
@pytest.mark.parametrize("name", ["resnet", "vgg", "offline"])
def test_saliency_matches_captum(name, request, cat):
    model = request.getfixturevalue(name)
    ref = Saliency(model).attribute(_captum_input(cat), target=281).abs().amax(1)[0]
    assert rel_err(saliency(model, cat, 281), ref) < 1e-5


@pytest.mark.parametrize("name", ["resnet", "vgg"])
@pytest.mark.parametrize("ours, theirs", [(guided_backprop, GuidedBackprop),
                                          (deconvnet, Deconvolution)])
def test_guided_and_deconvnet_match_captum_on_relu_models(name, ours, theirs, request, cat):
    model = request.getfixturevalue(name)
    before = state(model)
    ref = theirs(model).attribute(_captum_input(cat), target=281)[0]
    got = ours(model, cat, 281)
    assert got.shape == (3, SIZE, SIZE)
    assert rel_err(got, ref) < 1e-5
    assert rel_err(got, Saliency(model).attribute(_captum_input(cat), target=281, abs=False)[0]) > 0.05
    assert_unchanged(model, before)


class _Clip6(nn.Module):
    """min(x, 6) with its ordinary gradient (1 below 6, 0 above)."""

    def forward(self, x):
        return x.clamp(max=6.0)


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(max=6.0)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _Clip6Straight(nn.Module):
    """min(x, 6) passing the gradient straight through (the deconvnet rule ignores the clip)."""

    def forward(self, x):
        return _StraightThrough.apply(x)


def _relu6_as_relu(model, clip):
    """Copy of the offline model with every ReLU6 written as nn.ReLU followed by ``clip``."""
    net = copy.deepcopy(model)
    inner = net._net  # Normalized runs its wrapped network; keep its children in sync
    for module in list(inner.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(module, child_name, nn.Sequential(nn.ReLU(), clip()))
    for child_name, child in inner.named_children():
        setattr(net, child_name, child)
    return net


def test_guided_backprop_relu6_intended_difference(offline, cat):
    """Captum's GuidedBackprop hooks nn.ReLU only, so on the ReLU6 network it returns the plain
    gradient. We treat ReLU6 like ReLU (guided: relu(grad * [0 < x < 6])): that equals Captum on a
    copy whose ReLU6 are written as ReLU + clip-at-6, and differs from Captum on the model itself."""
    before = state(offline)
    ours = guided_backprop(offline, cat, 281)
    treated = GuidedBackprop(_relu6_as_relu(offline, _Clip6)).attribute(_captum_input(cat), target=281)
    assert rel_err(ours, treated[0]) < 1e-5
    untreated = GuidedBackprop(offline).attribute(_captum_input(cat), target=281)[0]
    plain = Saliency(offline).attribute(_captum_input(cat), target=281, abs=False)[0]
    assert torch.equal(untreated, plain)  # Captum: nothing treated
    assert rel_err(ours, untreated) > 0.5
    assert (ours.abs() > 0).float().mean() > 0.5  # not an empty map
    assert_unchanged(offline, before)


def test_deconvnet_relu6_intended_difference(offline, cat):
    """Deconvnet rectifies the backward signal at each ReLU6 and ignores the clip at 6 too."""
    ours = deconvnet(offline, cat, 281)
    ref = Deconvolution(_relu6_as_relu(offline, _Clip6Straight)).attribute(_captum_input(cat),
                                                                           target=281)[0]
    assert rel_err(ours, ref) < 1e-5
    # Without max-pooling switches nothing in the deconvnet pass depends on the photo.
    other = deconvnet(offline, load_image("coffee", SIZE), 281)
    assert torch.allclose(ours, other, atol=1e-6 * float(ours.abs().max()))


def _captum_occlusion(model, x, target, window, stride, baseline):
    occ = Occlusion(lambda z: model(z).softmax(-1))
    out = occ.attribute(x[None], sliding_window_shapes=(3, window, window),
                        strides=(3, stride, stride), target=target, baselines=baseline,
                        perturbations_per_eval=4)[0]
    assert torch.equal(out[0], out[2])  # the window covers all channels
    return out[0]


@pytest.mark.slow
@pytest.mark.parametrize("name, window, stride", [
    ("resnet", 16, 8), ("vgg", 20, 12), ("offline", 16, 8), ("offline", 20, 12),  # 12 leaves an edge
])
def test_occlusion_matches_captum(name, window, stride, request, cat):
    # fast=False: the same convolutions as Captum's plain forward, so the comparison
    # sees the algorithm (placement, fill, averaging), not folded batch-norm rounding.
    model = request.getfixturevalue(name)
    ref = _captum_occlusion(model, cat, 281, window, stride, 0.0)
    got = occlusion(model, cat, 281, window=window, stride=stride, fill="zero", fast=False)
    assert got.shape == (SIZE, SIZE) and ref.abs().max() > 0
    # float32 rounding: up to 1.1e-5 of the map's maximum (untrained VGG, whose
    # probability changes are tiny); a misplaced or mis-averaged window is off by ~1.
    assert rel_err(got, ref) < 5e-5


@pytest.mark.slow
@pytest.mark.parametrize("fill", ["mean", "blur"])
def test_occlusion_fills_match_captum_with_same_baseline(offline, cat, fill):
    base = occlusion_baseline(cat, fill, 16)
    assert not torch.allclose(base, cat) and base.shape == cat.shape
    if fill == "mean":
        assert torch.allclose(base, cat.mean((1, 2), keepdim=True).expand_as(cat))
    ref = _captum_occlusion(offline, cat, 285, 16, 8, base[None])
    got = occlusion(offline, cat, 285, window=16, stride=8, fill=fill, fast=False)
    assert rel_err(got, ref) < 1e-5
    # The fast path (models.inference_copy) draws the same map up to float rounding.
    assert rel_err(occlusion(offline, cat, 285, window=16, stride=8, fill=fill), ref) < 1e-4


def test_occlusion_batch_size_does_not_change_the_map(offline, cat):
    a = occlusion(offline, cat, 285, window=24, stride=10, batch_size=1)
    b = occlusion(offline, cat, 285, window=24, stride=10, batch_size=7)
    # float32 kernels differ by batch size (up to 6e-7 here, more on other CPUs); a copy
    # put in the wrong place would differ by the map's own scale (~0.2).
    assert (a - b).abs().max() < 1e-5, (a - b).abs().max()


def test_occlusion_finds_the_evidence():
    """A model that only looks at the top-left 4x4 corner: only windows there matter."""
    class Corner(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1), requires_grad=False)
            self.classes = ["corner", "rest"]

        def forward(self, x):
            s = x[:, :, :4, :4].mean((1, 2, 3)) * 10
            return torch.stack([s, torch.zeros_like(s)], 1)

    x = torch.ones(3, 16, 16)
    heat = occlusion(Corner(), x, 0, window=4, stride=4)
    p = torch.softmax(torch.tensor([10.0, 0.0]), 0)[0] - 0.5
    assert torch.allclose(heat[:4, :4], p.expand(4, 4)) and heat[4:].abs().max() == 0
    assert heat[:, 4:].abs().max() == 0


# ----------------------------------------------------------------------------- SmoothGrad
def test_smoothgrad_is_mean_of_captum_saliency_on_the_same_noise(offline, cat):
    noise, samples, seed = 0.15, 5, 3
    eps = torch.randn((samples, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(seed))
    noisy = cat + noise * float(cat.max() - cat.min()) * eps
    sal = Saliency(offline)
    ref = torch.stack([sal.attribute(_captum_input(n), target=285).abs().amax(1)[0] for n in noisy])
    got = saliency(offline, cat, 285, noise=noise, samples=samples, seed=seed, batch_size=1)
    assert rel_err(got, ref.mean(0)) < 1e-5
    # Batched copies: the same map up to rounding (a few ReLU6 masks may flip at 0 or 6).
    assert rel_err(saliency(offline, cat, 285, noise=noise, samples=samples, seed=seed), got) < 0.02
    assert rel_err(got, saliency(offline, cat, 285)) > 0.1  # the noise did something
    assert torch.equal(saliency(offline, cat, 285, noise=0.0, samples=9), saliency(offline, cat, 285))


# ----------------------------------------------------------------------------- neurons
def test_neuron_guided_backprop_matches_hand_made_objective(resnet, cat):
    """(layer, channel, position) = gradient of that one activation, with the guided rule."""
    layer, ch = "layer2.0", 5
    with torch.no_grad(), record(resnet, [layer]) as rec:
        resnet(cat[None])
    act = rec[layer][0, ch]
    pos = tuple(int(i) for i in torch.unravel_index(act.argmax(), act.shape))
    assert act[pos] > 0
    before = state(resnet)

    class UpTo(nn.Module):  # the network cut after ``layer``, scoring that activation
        def __init__(self):
            super().__init__()
            self.r = resnet  # registered, so Captum finds (and hooks) its ReLUs

        def forward(self, x):
            r = self.r
            h = r.maxpool(r.relu(r.bn1(r.conv1((x - r.mean) / r.std))))
            h = r.layer2[0](r.layer1(h))
            return h[:, ch, pos[0], pos[1]].unsqueeze(1)

    ref = GuidedBackprop(UpTo()).attribute(_captum_input(cat), target=0)[0]
    got = guided_backprop(resnet, cat, (layer, ch, pos))
    assert rel_err(got, ref) < 1e-5
    assert_unchanged(resnet, before)


def test_neuron_default_position_is_the_strongest(offline, cat):
    """Channels and positions are ranked by the pre-activation (bn1 feeds act1 in a block)."""
    layer, pre = "blocks.5.act1", "blocks.5.bn1"
    ranked = channels_by_activation(offline, cat, layer)
    with torch.no_grad(), record(offline, [pre, layer]) as rec:
        offline(cat[None])
    z, a = rec[pre][0], rec[layer][0]
    assert torch.equal(a, z.clamp(0, 6))
    peaks = z.flatten(1).amax(1)
    assert [c for c, _ in ranked] == peaks.argsort(descending=True).tolist()
    top, value = ranked[0]
    assert value == pytest.approx(float(peaks[top]))
    pos = tuple(int(i) for i in torch.unravel_index(z[top].argmax(), z[top].shape))
    assert torch.equal(guided_backprop(offline, cat, (layer, top)),
                       guided_backprop(offline, cat, (layer, top, pos)))


def test_saturated_relu6_neuron_still_has_a_map(offline, cat):
    """A unit clipped at 6 has zero gradient; scoring its pre-activation keeps the picture."""
    layer = "blocks.10.act1"
    top, value = channels_by_activation(offline, cat, layer)[0]
    assert value > 6  # saturated on this photo
    gbp = guided_backprop(offline, cat, (layer, top))
    assert (gbp != 0).float().mean() > 0.05


def test_rectified_layers(offline, resnet, vgg):
    off = rectified_layers(offline, SIZE)
    assert off[0] == "act0" and off[-1] == "act1" and "blocks.3.act0" in off
    assert "blocks.3" not in off and "bn0" not in off  # linear bottleneck / pre-activation
    res = rectified_layers(resnet, SIZE)
    assert "layer1.0" in res and "layer1.0.relu" in res and "layer1.0.bn2" not in res
    assert rectified_layers(vgg, SIZE)[:2] == ["features.1", "features.3"]


# ----------------------------------------------------------------------------- hooks and state
def _boom(exc):
    def forward(*args, **kwargs):
        raise exc("forced failure")
    return forward


CALLS = {
    "saliency": lambda m, x: saliency(m, x, 3, noise=0.1, samples=2),
    "guided": lambda m, x: guided_backprop(m, x, 3),
    "deconvnet": lambda m, x: deconvnet(m, x, 3),
    "neuron": lambda m, x: guided_backprop(m, x, ("layer2.0", 1)),
    "occlusion": lambda m, x: occlusion(m, x, 3, window=32, stride=32),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("exc", [None, RuntimeError, KeyboardInterrupt])
def test_model_left_exactly_as_it_was(resnet, cat, call, exc, monkeypatch):
    """ResNet reuses one in-place ReLU per block; after normal calls and forced exceptions
    mid-forward the model has no hooks, the same modules, and the same inplace flags."""
    assert resnet.layer1[0].relu.inplace
    before = state(resnet)
    if exc is None:
        CALLS[call](resnet, cat)
    else:
        monkeypatch.setattr(resnet.layer3[1], "forward", _boom(exc))
        with pytest.raises(exc, match="forced failure"):
            CALLS[call](resnet, cat)
        monkeypatch.undo()
    assert_unchanged(resnet, before)
    assert resnet.layer1[0].relu.inplace


def test_exception_in_backward_leaves_nothing(offline, cat, monkeypatch):
    before = state(offline)
    monkeypatch.setattr(torch.autograd, "grad", _boom(RuntimeError))
    with pytest.raises(RuntimeError, match="forced failure"):
        guided_backprop(offline, cat, ("blocks.4.act0", 2))
    monkeypatch.undo()
    assert_unchanged(offline, before)


def test_gradient_image_range():
    img = gradient_image(torch.randn(3, 8, 8))
    assert img.min() >= 0 and img.max() <= 1 and abs(float(gradient_image(torch.zeros(3, 2, 2)).mean()) - 0.5) < 1e-6


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, error, message", [
    (lambda m, x: saliency(m, x, 1000), ValueError, r"out of range: valid are 0\.\.999"),
    (lambda m, x: guided_backprop(m, x, -1), ValueError, r"valid are 0\.\.999"),
    (lambda m, x: occlusion(m, x, 1000), ValueError, r"valid are 0\.\.999"),
    (lambda m, x: occlusion(m, x, window=65), ValueError,
     r"Window 65 does not fit the 64x64 image: choose 1\.\.64"),
    (lambda m, x: occlusion(m, x, stride=0), ValueError, r"Stride must be at least 1 pixel"),
    (lambda m, x: occlusion(m, x, fill="grey"), ValueError, r"choose one of zero, mean, blur"),
    (lambda m, x: guided_backprop(m, x, ("blocks.3", 0)), ValueError,
     (r"'blocks\.3' has no ReLU-like activation.*next rectified layer is 'blocks\.4\.act0'.*"
      r"Rectified layers: act0, blocks\.0\.act1")),
    (lambda m, x: guided_backprop(m, x, ("bn0", 0)), ValueError, r"next rectified layer is 'act0'"),
    (lambda m, x: guided_backprop(m, x, ("blocks.3.act0", 144)), ValueError,
     r"Channel 144 is out of range for layer 'blocks\.3\.act0': valid are 0\.\.143"),
    (lambda m, x: guided_backprop(m, x, ("blocks.3.act0", 0, (99, 0))), ValueError, r"Position"),
    (lambda m, x: guided_backprop(m, x, ("blocks.3.actt0", 0)), LayerError, r"blocks\.3\.act0"),
    (lambda m, x: guided_backprop(m, x, 3, rule="lrp"), ValueError, r"guided, deconvnet, gradient"),
    (lambda m, x: saliency(m, x[:2]), ValueError, r"\(3, H, W\)"),
    (lambda m, x: saliency(m, x, "tabbby"), ValueError, r"did you mean.*tabby"),
])
def test_bad_input_names_valid_choices(offline, cat, call, error, message):
    before = state(offline)
    with pytest.raises(error, match=message):
        call(offline, cat)
    assert_unchanged(offline, before)
