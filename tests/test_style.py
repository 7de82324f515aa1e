"""Gram matrices, the Gatys texture loss, softmax smoothing, texture synthesis, style transfer."""
import pytest
import torch
import torchvision

from helpers import LayerError, leftover_hooks, load_image
from helpers.device import cpu_threads
from helpers.objectives import Objective
from helpers.style import (
    PRESETS,
    RESIDUAL_LAYERS,
    gram,
    layer_style_loss,
    layers_up_to,
    preset,
    scale_style,
    softmax_smooth,
    style_loss,
    style_targets,
    style_transfer,
    synthesize_texture,
)
from helpers.style_images import load_style

# Documented bound (notebook 12): with the defaults (style_weight 10, 60 L-BFGS steps, 96 px)
# the relative content distance at blocks.5 measured 0.56; 1 would be an all-zero description.
CONTENT_BOUND = 0.75


def one_thread():
    """Small images: one thread is faster on a shared CPU (the helpers' own policy)."""
    return cpu_threads(1)


def test_gram_matches_a_loop_and_ignores_positions():
    f = torch.randn(2, 3, 4, 5)
    g = gram(f)
    assert g.shape == (2, 3, 3)
    for n in range(2):
        for i in range(3):
            for j in range(3):
                assert g[n, i, j].item() == pytest.approx((f[n, i] * f[n, j]).mean().item(),
                                                          rel=1e-5, abs=1e-6)
    # A texture statistic: shuffling positions (the same way in every channel) changes nothing.
    perm = torch.randperm(20)
    shuffled = f.reshape(2, 3, 20)[..., perm].reshape(2, 3, 4, 5)
    assert torch.allclose(gram(shuffled), g, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        gram(torch.randn(3, 4))


def test_layer_loss_is_gatys_formula():
    a, b = torch.rand(1, 6, 5, 5), torch.rand(1, 6, 5, 5)
    n, m = 6, 25
    fa, fb = a.reshape(n, m), b.reshape(n, m)
    expected = ((fa @ fa.T - fb @ fb.T) ** 2).sum() / (4 * n ** 2 * m ** 2)
    assert layer_style_loss(a, gram(b)).item() == pytest.approx(expected.item(), rel=1e-5)
    assert layer_style_loss(b, gram(b)).item() == pytest.approx(0, abs=1e-9)


def test_style_loss_weights_layers():
    acts = {"a": torch.rand(1, 2, 3, 3), "b": torch.rand(1, 4, 2, 2)}
    targets = {"a": gram(torch.rand(1, 2, 3, 3)), "b": gram(torch.rand(1, 4, 2, 2))}
    ea = layer_style_loss(acts["a"], targets["a"]).item()
    eb = layer_style_loss(acts["b"], targets["b"]).item()
    obj = style_loss(targets, {"a": 2.0, "b": 0.5})
    assert isinstance(obj, Objective) and obj.layers == {"a", "b"}
    assert obj(acts, None).item() == pytest.approx(2 * ea + 0.5 * eb, rel=1e-6)


def test_softmax_smooth():
    x = torch.randn(2, 3, 4, 4) * 5
    s = softmax_smooth(x)
    assert (s > 0).all()
    assert torch.allclose(s.mean((1, 2, 3)), torch.ones(2))
    flat_x, flat_s = x[0].flatten(), s[0].flatten()
    assert torch.equal(flat_x.argsort(), flat_s.argsort())  # order kept
    # Entropy rises with temperature (Wang et al.: smoothing enhances entropy).
    def entropy(t):
        p = t.flatten(1) / t.flatten(1).sum(1, keepdim=True)
        return -(p * p.log()).sum(1).mean().item()
    assert entropy(softmax_smooth(x, 1)) < entropy(softmax_smooth(x, 4)) < entropy(
        softmax_smooth(x, 64))
    assert torch.allclose(softmax_smooth(x, 1e6), torch.ones_like(x), atol=1e-3)


def test_presets_name_real_layers(model):
    p = preset(model)
    for name in list(p["style"]) + [p["content"]] + RESIDUAL_LAYERS:
        model.get_submodule(name)
    assert p is not PRESETS["efficientnet_lite0"] and p["style"] is not PRESETS[
        "efficientnet_lite0"]["style"]
    # The classic VGG layers are ReLUs (relu1_1 ... relu5_1, relu4_2); build on "meta": no memory.
    for arch in ("vgg19", "vgg16", "resnet18", "resnet50"):
        with torch.device("meta"):
            net = torchvision.models.get_model(arch, weights=None)
        names = list(PRESETS[arch]["style"]) + [PRESETS[arch]["content"]]
        for name in names:
            module = net.get_submodule(name)
            if arch.startswith("vgg"):
                assert isinstance(module, torch.nn.ReLU), (arch, name)
    assert [n for n in PRESETS["vgg19"]["style"]] == [f"features.{i}" for i in (1, 6, 11, 20, 29)]


def test_layers_up_to(model):
    names = list(preset(model)["style"])
    assert layers_up_to(model, names[2]) == names[:3]
    with pytest.raises(ValueError, match="choose one of"):
        layers_up_to(model, "conv_head")


def test_texture_gram_loss_falls_100x_on_a_larger_canvas(model):
    sample = load_image("gravel", 128)[:, 32:96, 32:96]
    with one_thread():
        res = synthesize_texture(model, sample, size=96, steps=100)
    assert res.image.shape == (1, 3, 96, 96)
    assert res.style_ratio >= 100, (res.style_start, res.style_end)
    # Not a grey or constant picture: the texture has the sample's contrast.
    assert res.image.std().item() > 0.5 * sample.std().item()
    assert leftover_hooks(model) == []


def test_texture_carries_colour_of_sample(model):
    sample = load_image("coffee", 64)
    with one_thread():
        res = synthesize_texture(model, sample, steps=60)
    pixels = synthesize_texture(model, sample, steps=5, param="pixel")
    assert pixels.style_end < pixels.style_start
    mean_out, mean_in = res.image[0].mean((1, 2)), sample.mean((1, 2))
    assert (mean_out - mean_in).abs().max() < 0.1  # the Gram matrices pin down the colours
    assert mean_out[0] > mean_out[2]  # coffee is reddish-brown, not blue


@pytest.fixture(scope="module")
def pair():
    return load_image("chelsea", 96), load_style("stained_glass", 128)


def test_style_transfer_bounds(model, pair):
    content, style = pair
    with one_thread():
        res = style_transfer(model, content, style, style_weight=10, steps=60)
    assert res.style_ratio >= 10, (res.style_start, res.style_end)
    assert res.content_start == pytest.approx(0, abs=1e-3)  # started from the photo
    assert res.content_end < CONTENT_BOUND
    assert 1e-3 < (res.image - content).abs().mean() < 0.3  # changed, but still the photo
    assert leftover_hooks(model) == []


def test_more_style_weight_trades_content_for_style(model, pair):
    content, style = pair
    with one_thread():
        weak = style_transfer(model, content, style, style_weight=0.1, steps=40)
        strong = style_transfer(model, content, style, style_weight=100, steps=40)
    assert strong.style_end < weak.style_end
    assert strong.content_end > weak.content_end


def test_adam_noise_and_coarse_to_fine(model, pair):
    content, style = pair
    with one_thread():
        res = style_transfer(model, content, style, style_weight=10, steps=40, optimizer="adam",
                             init="noise", scales=2)
    assert res.image.shape == (1, 3, 96, 96)
    assert res.steps == 40
    assert res.content_end < 0.8 * res.content_start  # the noise moved towards the photo
    assert res.style_end < res.style_start


def test_style_scale_changes_the_target():
    style = load_style("stained_glass", 256)
    assert scale_style(style, 192).shape[-1] == 192
    assert scale_style(style, 48).shape[-1] == 48


def test_smoothing_changes_targets(model):
    img = load_image("brick", 64)
    plain = style_targets(model, img, ["blocks.2"])
    smooth = style_targets(model, img, ["blocks.2"], smooth=16)
    assert not torch.allclose(plain["blocks.2"], smooth["blocks.2"])


def test_bad_input_fails_before_work(model, pair):
    content, style = pair
    with pytest.raises(LayerError):
        style_transfer(model, content, style, style_layers=["blocks.99"], steps=1)
    with pytest.raises(LayerError):
        style_transfer(model, content, style, content_layer="nope", steps=1)
    with pytest.raises(ValueError, match="init"):
        style_transfer(model, content, style, init="photo", steps=1)
    with pytest.raises(ValueError, match="optimizer"):
        style_transfer(model, content, style, optimizer="rmsprop", steps=1)
    with pytest.raises(ValueError, match="temperature"):
        synthesize_texture(model, content, smooth=-1.0, steps=1)
    with pytest.raises(ValueError, match="fourier"):
        style_transfer(model, content, style, param="wavelet", steps=1)
    assert leftover_hooks(model) == []
