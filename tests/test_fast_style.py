"""Fast style transfer: the network, conditional instance norm, training, the shipped weights, the panel."""
import datetime
from pathlib import Path

import pytest
import torch

from helpers import ImageError, leftover_hooks, load_image
from helpers.device import cpu_threads
from helpers.fast_style import (CONTENT_WEIGHT, STYLE_WEIGHT, WEIGHTS, load, loss_terms,
                                perceptual_loss, save, shipped, stylize, train, train_style)
from helpers.inversion import evaluate, feature_distance
from helpers.hooks import activations
from helpers.style import preset, scale_style, style_loss, style_targets, style_transfer
from helpers.style_mixer import StyleMixer, jpeg_bytes, mix
from helpers.transformer_net import TransformerNet, mix_weights, polyphase_conv, with_styles

PAINTINGS = Path(__file__).resolve().parents[2] / "shared" / "paintings"
SIZE = 128          # the training crop size of the shipped weights
RATIO = 3.0         # the network's style loss within 3x of per-image optimization (issue 12)


def painting(name, size=256):
    path = PAINTINGS / f"{name}.jpg"
    if not path.exists():
        pytest.skip(f"{path} is absent (the paintings live beside the repository)")
    return load_image(path, size)


def scores(model, image, content, style, size=SIZE):
    """(style loss, content distance) of ``image`` as ``style_transfer`` measures them."""
    p = preset(model)
    layers = p["style"]
    style_obj = style_loss(style_targets(model, scale_style(style, size), layers), layers)
    target = activations(model, content, [p["content"]])[p["content"]]
    return evaluate(model, [style_obj, feature_distance(p["content"], target)], image)


def randomized(net, seed=0):
    """The same network with random (gamma, beta) tables, so that styles differ."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n in net.norms():
            n.gamma.copy_(1 + 0.3 * torch.randn(n.gamma.shape, generator=g))
            n.beta.copy_(0.3 * torch.randn(n.beta.shape, generator=g))
    return net.eval()


# ---- the network ------------------------------------------------------------------------------

def test_output_has_the_input_size_and_stays_in_0_1():
    net = randomized(TransformerNet(["a", "b"]))
    for h, w in [(64, 64), (97, 130), (33, 18)]:
        y = stylize(net, torch.rand(2, 3, h, w), "b")
        assert y.shape == (2, 3, h, w)
        assert 0 <= float(y.min()) and float(y.max()) <= 1


def test_one_hot_mix_equals_the_single_style_network_exactly():
    net = randomized(TransformerNet(["a", "b", "c"]))
    single = TransformerNet(["b"])
    state = {k: (v[1:2] if k.endswith(("gamma", "beta")) else v)
             for k, v in net.state_dict().items()}
    single.load_state_dict(state)
    single.eval()
    x = torch.rand(2, 3, 40, 48)
    one_hot = stylize(net, x, {"a": 0.0, "b": 1.0, "c": 0.0})
    assert torch.equal(one_hot, stylize(single, x))
    assert torch.equal(one_hot, stylize(net, x, "b"))
    assert not torch.allclose(one_hot, stylize(net, x, "a"), atol=1e-3)


def test_a_mix_mixes_the_gamma_beta_rows():
    net = randomized(TransformerNet(["a", "b"]))
    norm = net.norms()[3]
    w = mix_weights(net.styles, {"a": 0.25, "b": 0.75})
    x = torch.randn(1, norm.gamma.shape[1], 5, 5)
    expected = torch.nn.functional.instance_norm(x) * \
        (0.25 * norm.gamma[0] + 0.75 * norm.gamma[1])[None, :, None, None] + \
        (0.25 * norm.beta[0] + 0.75 * norm.beta[1])[None, :, None, None]
    torch.testing.assert_close(norm(x, w[None]), expected)


@pytest.mark.parametrize("shape", [(1, 16, 40, 48), (2, 16, 33, 27), (3, 5, 9, 10)])
@pytest.mark.parametrize("s", [2, 3])
def test_polyphase_conv_equals_the_plain_convolution(shape, s):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(shape[1], 3, 9 if min(shape[2:]) > 9 else 3)
    x = torch.randn(shape)
    for layout in (torch.contiguous_format, torch.channels_last):
        got = polyphase_conv(x.contiguous(memory_format=layout), conv, s)
        torch.testing.assert_close(got, conv(x), rtol=1e-5, atol=1e-5)


def test_polyphase_conv_passes_gradients_like_the_plain_convolution():
    torch.manual_seed(0)
    conv, x = torch.nn.Conv2d(8, 3, 5), torch.randn(2, 8, 21, 18, requires_grad=True)
    grads = [torch.autograd.grad(f(x).square().sum(), [x, conv.weight, conv.bias])
             for f in (conv, lambda t: polyphase_conv(t, conv))]
    for plain, poly in zip(*grads):
        torch.testing.assert_close(poly, plain, rtol=1e-4, atol=1e-4)


def test_the_norm_matches_instance_norm_on_channels_last_with_a_large_mean():
    torch.manual_seed(0)
    norm = TransformerNet(["a"]).norms()[1]
    x = (100 + 0.1 * torch.randn(2, norm.gamma.shape[1], 12, 10)).contiguous(
        memory_format=torch.channels_last)
    got = norm(x, torch.ones(2, 1))
    expected = torch.nn.functional.instance_norm(x.double(), eps=norm.eps).float()
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=2e-3)
    assert got.is_contiguous(memory_format=torch.channels_last)  # no copy back to NCHW


@pytest.mark.parametrize("bad, words", [
    ("monet", ["'monet'", "starry", "wave"]),
    ({"starry": 0.5, "wave": 0.6}, ["sum to 1", "starry, wave"]),
    ({"starry": 1.5, "wave": -0.5}, [">= 0", "starry, wave"]),
    ([0.5, 0.5, 0.0], ["2 weights", "starry, wave"]),
    (7, ["out of range", "starry, wave"]),
    ({"starry": float("nan"), "wave": 1.0}, [">= 0"]),
])
def test_bad_styles_name_the_valid_ones(bad, words):
    net = TransformerNet(["starry", "wave"])
    with pytest.raises(ValueError) as err:
        stylize(net, torch.rand(1, 3, 16, 16), bad)
    for word in words:
        assert word in str(err.value)


def test_mix_position_must_be_in_0_1():
    net = TransformerNet(["a", "b"])
    assert mix(net, "a", "b", 0.25) == {"a": 0.75, "b": 0.25}
    assert mix(net, "a", "a", 0.7) == {"a": 1.0}
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mix(net, "a", "b", 1.2)


# ---- the losses and training ------------------------------------------------------------------

def test_perceptual_loss_is_the_style_transfer_loss_of_helpers_style(model):
    content, style = load_image("chelsea", 64), load_image("coffee", 64)
    x = torch.rand(1, 3, 64, 64)
    content_layer, layers, targets = loss_terms(model, [style], 64)
    total, terms = perceptual_loss(model, x, content[None], targets, torch.tensor([0]),
                                   content_layer, layers, style_weight=2.0, tv_weight=0.0)
    s, c = scores(model, x, content, style, 64)
    assert float(terms["style"]) == pytest.approx(s, rel=1e-4)
    assert float(terms["content"]) == pytest.approx(c, rel=1e-4)
    assert float(total) == pytest.approx(2.0 * s + c, rel=1e-4)
    assert not leftover_hooks(model)


def test_a_few_dozen_steps_lower_the_total_loss(model, tmp_path):
    contents = [load_image(p, 80) for p in ("chelsea", "astronaut", "coffee")]
    styles = [load_image("rocket", 64), load_image("brick", 64)]
    with cpu_threads(1):
        res = train(model, contents, styles, names=["rocket", "brick"], steps=40, batch=2,
                    size=48, lr=5e-3, progress=False, checkpoint=tmp_path / "w.pt",
                    checkpoint_every=20)
    h = res.history["total"]
    assert res.steps == 40 and len(h) == 40 and not res.interrupted
    first, last = sum(h[:5]) / 5, sum(h[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    again = load(tmp_path / "w.pt")  # the weights-only checkpoint gives the same network
    x = contents[0][None, :, :48, :48]
    torch.testing.assert_close(stylize(again, x, "brick"), stylize(res.net, x, "brick"))
    assert not leftover_hooks(model)


def test_training_is_seeded_and_stops_cleanly_on_interrupt(model):
    contents, style = [load_image("chelsea", 48)], load_image("brick", 48)

    def interrupt(step, net, history):
        if step == 3:
            raise KeyboardInterrupt
    with cpu_threads(1):
        a = train_style(model, style, contents, steps=4, size=32, batch=1, progress=False)
        b = train_style(model, style, contents, steps=4, size=32, batch=1, progress=False)
        c = train_style(model, style, contents, steps=10, size=32, batch=1, progress=False,
                        callback=interrupt, every=1)
    assert a.history["total"] == b.history["total"]
    assert c.interrupted and c.steps == 3 and not c.net.training
    assert not leftover_hooks(model)


def test_a_new_style_row_trains_only_the_table(model):
    base = randomized(TransformerNet(["a", "b"]))
    new = with_styles(base, ["b", "new"])
    torch.testing.assert_close(new.norms()[0].gamma[0], base.norms()[0].gamma[1])
    torch.testing.assert_close(new.norms()[0].beta[1], base.norms()[0].beta.mean(0))
    with cpu_threads(1):
        res = train_style(model, load_image("brick", 48), [load_image("chelsea", 48)],
                          base=base, steps=3, size=32, batch=1, progress=False)
    assert res.net.styles == ["my style"]
    for key, value in res.net.state_dict().items():
        same = torch.equal(value, base.state_dict()[key]) if not key.endswith(("gamma", "beta")) \
            else None
        assert same in (True, None), key
    assert not torch.equal(res.net.norms()[0].gamma[0], base.norms()[0].gamma.mean(0))


def test_save_is_weights_only(tmp_path):
    net = randomized(TransformerNet(["a", "b"]))
    path = save(net, tmp_path / "n.pt", steps=3)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["config"]["styles"] == ["a", "b"] and ckpt["record"] == {"steps": 3}
    x = torch.rand(1, 3, 24, 24)
    torch.testing.assert_close(stylize(load(path), x, "b"), stylize(net, x, "b"))
    with pytest.raises(FileNotFoundError, match="train"):
        load(tmp_path / "missing.pt")


# ---- the shipped network ----------------------------------------------------------------------

def test_shipped_weights_are_small_and_load_weights_only():
    assert WEIGHTS.stat().st_size <= 5 * 2**20
    torch.load(WEIGHTS, weights_only=True)
    net = shipped()
    assert len(net.styles) >= 6
    assert not any(p.requires_grad for p in net.parameters())


@pytest.fixture(scope="module")
def shipped_scores(model):
    """Per style: (network, optimization) x (style loss, content distance) on one photo."""
    net = shipped()
    photo = load_image("chelsea", SIZE)
    out = {}
    with cpu_threads(1):
        for name in net.styles:
            style = painting(name)
            fast = stylize(net, photo, name)
            opt = style_transfer(model, photo, style, style_weight=STYLE_WEIGHT,
                                 content_weight=CONTENT_WEIGHT)
            out[name] = (scores(model, fast, photo, style), (opt.style_end, opt.content_end),
                         fast, opt.image)
    return out


def test_shipped_styles_come_within_3x_of_optimization(shipped_scores):
    for name, ((fast_style, _), (opt_style, _), _, _) in shipped_scores.items():
        assert fast_style <= RATIO * opt_style, (name, fast_style, opt_style)


def test_shipped_styles_keep_the_content(model, shipped_scores):
    photo = load_image("chelsea", SIZE)
    other = load_image("astronaut", SIZE)
    _, d_other = scores(model, other, photo, photo)  # another photo: content lost
    for name, ((_, d_fast), _, fast, _) in shipped_scores.items():
        assert d_fast < 0.8 * d_other, (name, d_fast, d_other)
        assert float(fast.std()) > 0.08, (name, "flat picture")  # not grey


def test_a_half_mix_lies_between_its_ends_in_style_loss(model):
    net = shipped()
    a, b = "starry_night", "great_wave"
    photo = load_image("chelsea", SIZE)
    with cpu_threads(1):
        for target in (a, b):
            loss = [scores(model, stylize(net, photo, w), photo, painting(target))[0]
                    for w in ({a: 1.0}, {a: 0.5, b: 0.5}, {b: 1.0})]
            ends = sorted([loss[0], loss[2]])
            assert ends[0] < loss[1] < ends[1], (target, loss)


# ---- the panel --------------------------------------------------------------------------------

def test_mixer_redraws_on_slider_moves_and_refuses_bad_uploads():
    from helpers.widgets import Uploads
    net = randomized(TransformerNet(["a", "b", "c"]))
    uploads = Uploads(load_image)
    mixer = StyleMixer(net, uploads, photos=["chelsea", "coffee"], size=64,
                       upload=uploads.box)
    first = mixer.image.value
    assert first[:2] == b"\xff\xd8"  # JPEG
    mixer.t.value = 1.0
    assert mixer.image.value != first and mixer.last_seconds < 5
    mixer.style_b.value = "c"
    assert "c" in mixer.status.value
    box = mixer.widget.children[0].children[1]
    up, msg = box.children
    options = list(mixer.photo.options)
    for name, content, words in [("notes.txt", b"hello", "not an image"),
                                 ("big.png", b"\x89PNG" + bytes(9 * 2**20), "limit"),
                                 ("fake.png", b"not a png at all", "")]:
        up.value = ({"name": name, "type": "", "size": len(content),
                     "content": memoryview(content),
                     "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
        assert "color:#b00" in msg.value and words in msg.value, msg.value
        assert list(mixer.photo.options) == options
    with pytest.raises(ImageError):
        load_image(b"not a png at all", 64)


def test_jpeg_bytes_round_trip():
    from PIL import Image
    import io
    img = torch.rand(3, 20, 30)
    pic = Image.open(io.BytesIO(jpeg_bytes(img)))
    assert pic.size == (30, 20) and pic.format == "JPEG"
