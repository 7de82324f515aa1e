"""The optimization loop: known answers on a hand-set model, real improvement on the offline
network, no hooks left behind (also on errors and interrupts), NaN detection, reproducibility."""
import pytest
import torch
from torch import nn

from helpers import LayerError, leftover_hooks, record
from helpers.objectives import Objective, channel, class_score, l2, layer_norm, neuron
from helpers.optimize import Result, make_optimizer, optimize
from helpers.params import fourier_image, pixel_image
from helpers.regularizers import BlurEvery, ClipSmallNorm, Jitter


class RedDetector(nn.Module):
    """conv(1x1) weights: channel 0 = red - green, channel 1 = blue; then a linear 'classifier'."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1., -1., 0.], [0., 0., 1.]]).view(2, 3, 1, 1))
            self.fc.weight.copy_(torch.tensor([[1., 0.], [0., 1.]]))
        self.requires_grad_(False)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(1))


def test_known_optimum_on_a_hand_set_model():
    """Maximizing red - green drives red to 1, green to 0 and leaves blue alone."""
    model = RedDetector()
    param = pixel_image(8, seed=0)
    blue = param().detach()[:, 2].clone()
    result = optimize(model, param, channel("conv", 0), steps=60, lr=0.05, progress=False)
    img = result.image
    assert torch.allclose(img[:, 0], torch.ones_like(img[:, 0]))
    assert torch.allclose(img[:, 1], torch.zeros_like(img[:, 1]))
    assert torch.allclose(img[:, 2], blue)
    assert result.history[-1] == pytest.approx(-1.0, abs=1e-6)
    # the same through the logits, and with plain SGD / L-BFGS
    for opt, lr in (("sgd", 200), ("lbfgs", 1), ("normalized", 0.1), ("sign", 0.1)):
        r = optimize(model, pixel_image(8, seed=0), class_score(0), steps=40, lr=lr,
                     optimizer=opt, progress=False)
        assert r.history[-1] < -0.99, opt


def test_l2_pulls_towards_grey():
    model = RedDetector()
    r = optimize(model, pixel_image(8, sd=0.3, seed=1), l2(1.0), steps=100, lr=0.05,
                 progress=False)
    assert (r.image - 0.5).abs().max() < 0.05


def test_early_layer_objective_stops_the_forward_but_gradients_are_exact(model, cat):
    """The loop skips layers after the last recorded one; its gradient equals a full pass's."""
    x = cat[None, :, :96, :96].clone()
    obj = channel("blocks.3", 5) + 0.5 * neuron("blocks.1", 2)
    seen = []
    # (the channel checks run the whole network once under no_grad; count only the steps)
    model.fc.register_forward_hook(lambda *a: seen.append(1) if torch.is_grad_enabled() else None)
    try:
        param = pixel_image(x)
        r = optimize(model, param, obj, steps=1, optimizer="sgd", lr=1.0, progress=False)
    finally:
        model.fc._forward_hooks.clear()
    assert not seen  # the classifier never ran
    xr = x.clone().requires_grad_(True)
    with record(model, ["blocks.3", "blocks.1"]) as rec:
        model(xr)
        loss = obj(rec, xr)
    g, = torch.autograd.grad(loss, xr)
    assert torch.allclose(r.image, (x - g).clamp(0, 1), atol=1e-5)
    assert r.history[0] == pytest.approx(loss.item(), rel=1e-5)


def test_neuron_activation_rises_tenfold(model):
    obj = neuron("blocks.10", 7)
    param = pixel_image(96, seed=0)
    with record(model, "blocks.10") as rec:
        model(param().detach())
    start = -obj(rec, None).item()
    r = optimize(model, param, obj, transforms=[Jitter(2)], steps=20, lr=0.05, progress=False,
                 seed=0)
    assert -r.history[-1] > 10 * max(start, 0.1)
    assert leftover_hooks(model) == []


def test_seeded_runs_are_reproducible_and_leave_the_global_rng_alone(model):
    def run(seed):
        return optimize(model, pixel_image(48, seed=3), layer_norm("blocks.4"),
                        transforms=[Jitter(4)], post_steps=[BlurEvery(2, 0.5)],
                        steps=6, lr=0.05, progress=False, seed=seed)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b, c = run(0), run(0), run(1)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.history == b.history and torch.equal(a.image, b.image)
    assert a.history != c.history


def test_callback_every_n_steps_and_early_stop():
    model, calls = RedDetector(), []

    def cb(step, image, loss):
        calls.append((step, tuple(image.shape), loss))
        return step >= 20
    r = optimize(model, pixel_image(8), channel("conv", 1), steps=50, lr=0.01, callback=cb,
                 every=5, progress=False)
    assert [c[0] for c in calls] == [5, 10, 15, 20]
    assert calls[0][1] == (1, 3, 8, 8) and calls[-1][2] == r.history[-1]
    assert r.steps == 20 and r.stopped and len(r.history) == 20


def test_keyboard_interrupt_returns_the_partial_result_without_hooks(model):
    def cb(step, image, loss):
        raise KeyboardInterrupt
    r = optimize(model, pixel_image(48), channel("blocks.6", 1), steps=10, callback=cb, every=3,
                 progress=False)
    assert isinstance(r, Result) and r.interrupted and r.steps == 3
    assert r.image.shape == (1, 3, 48, 48) and not r.image.requires_grad
    assert leftover_hooks(model) == []


def test_nan_loss_is_a_clear_error_and_leaves_no_hooks(model):
    def bad(rec, image):
        return rec["blocks.2"].mean() * float("nan")
    with pytest.raises(FloatingPointError, match="loss became nan at step 1.*lower the learning"):
        optimize(model, pixel_image(32), Objective(bad, {"blocks.2"}, "bad"), steps=5,
                 progress=False)
    with pytest.raises(FloatingPointError, match="inf"):
        optimize(RedDetector(), pixel_image(8), class_score(0) * float("inf"), steps=3,
                 progress=False)
    assert leftover_hooks(model) == []


def test_exception_in_objective_leaves_no_hooks(model):
    def broken(rec, image):
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        optimize(model, pixel_image(32), Objective(broken, {"blocks.3", "output"}), steps=2,
                 progress=False)
    assert leftover_hooks(model) == []


def test_bad_input_fails_before_any_step(model):
    p = pixel_image(32)
    with pytest.raises(LayerError, match="Did you mean"):
        optimize(model, p, channel("blocks.55", 0), progress=False)
    with pytest.raises(ValueError, match="Channel 500 is out of range"):
        optimize(model, p, channel("blocks.5", 500), progress=False)
    with pytest.raises(ValueError, match="Unknown optimizer 'adamw'.*adam, sgd, lbfgs"):
        optimize(model, p, channel("blocks.5", 0), optimizer="adamw", progress=False)
    with pytest.raises(ValueError, match="use pixel_image"):
        optimize(model, fourier_image(32), channel("blocks.5", 0), post_steps=[ClipSmallNorm()],
                 progress=False)
    with pytest.raises(TypeError, match="Objective"):
        optimize(model, p, lambda rec, img: 0, progress=False)
    assert leftover_hooks(model) == []


def test_optimizer_factory_and_fourier_parameterization(cat):
    model = RedDetector()
    factory = lambda params: torch.optim.Adam(params, lr=0.1)
    assert isinstance(make_optimizer(factory, [torch.zeros(1, requires_grad=True)], 1.0),
                      torch.optim.Adam)
    param = fourier_image(16, seed=0)
    start = -class_score(0)({"output": model(param())}, None).item()
    r = optimize(model, param, class_score(0), steps=40, optimizer=factory, progress=False)
    assert -r.history[-1] > start + 0.1 and 0 <= r.image.min() and r.image.max() <= 1


def _high_frequency_share(image):
    """Fraction of the image's spectral energy above a quarter of the sampling rate."""
    spec = torch.fft.rfft2(image - image.mean((-2, -1), keepdim=True)).abs() ** 2
    fy = torch.fft.fftfreq(image.shape[-2]).abs()[:, None]
    fx = torch.fft.rfftfreq(image.shape[-1])[None]
    high = torch.maximum(fy, fx) > 0.25
    return (spec[..., high].sum() / spec.sum()).item()


def test_fourier_image_starts_smooth_and_colour_correlated():
    """The 1/f spectrum scaling favours low frequencies; the colour matrix couples R, G, B."""
    fourier = fourier_image(64, sd=0.5, seed=0)()
    pixels = fourier_image(64, fft=False, sd=0.5, seed=0)()
    assert _high_frequency_share(fourier) < 0.3 * _high_frequency_share(pixels)
    rgb = torch.corrcoef(fourier[0].reshape(3, -1))
    independent = torch.corrcoef(fourier_image(64, decorrelate=False, sd=0.5, seed=0)()[0]
                                 .reshape(3, -1))
    assert rgb[0, 1] > 0.5 and independent[0, 1].abs() < 0.3


@pytest.mark.parametrize("decorrelate,fft", [(True, True), (False, True), (True, False)])
def test_fourier_image_reproduces_an_initial_photo(cat, decorrelate, fft):
    x = cat[:, :40, :50].clamp(0.01, 0.99)
    p = fourier_image(x, decorrelate=decorrelate, fft=fft)
    assert p().shape == (1, 3, 40, 50)
    assert torch.allclose(p(), x[None], atol=1e-4)


def test_pixel_image_inits():
    assert pixel_image((20, 30), batch=2)().shape == (2, 3, 20, 30)
    assert torch.equal(pixel_image(8, sd=0.1, seed=4)(), pixel_image(8, sd=0.1, seed=4)())
    with pytest.raises(ValueError, match=r"\(3, H, W\) or \(N, 3, H, W\)"):
        pixel_image(torch.rand(1, 1, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_runs_on_the_models_device(model):
    m = RedDetector().cuda()
    r = optimize(m, pixel_image(8), channel("conv", 0), steps=5, progress=False)
    assert r.image.device.type == "cuda"


def test_one_optimizer_factory_with_default_learning_rates():
    from helpers.optimize import DEFAULT_LR, OPTIMIZERS, check_optimizer
    x = [torch.zeros(3, requires_grad=True)]
    for name in OPTIMIZERS:
        assert make_optimizer(name, x).param_groups[0]["lr"] == DEFAULT_LR[name]
    lbfgs = make_optimizer("lbfgs", x)
    assert isinstance(lbfgs, torch.optim.LBFGS) and lbfgs.defaults["max_iter"] == 1
    assert make_optimizer("adam", x, 0.3).param_groups[0]["lr"] == 0.3
    with pytest.raises(ValueError, match="Unknown optimizer 'rmsprop'"):
        check_optimizer("rmsprop")


def test_sign_step_is_the_steepest_l_infinity_step():
    from helpers.optimize import SignGD, sign_step
    x, g = torch.tensor([0.5, 0.5, 0.5]), torch.tensor([2.0, -1e-6, 0.0])
    assert torch.allclose(sign_step(x, g, 0.1), torch.tensor([0.4, 0.6, 0.5]))
    p = torch.nn.Parameter(x.clone())
    p.grad = g
    SignGD([p], lr=0.1).step()
    assert torch.equal(p.data, sign_step(x, g, 0.1))


def test_image_param_switches_between_parameterizations():
    from helpers.params import FourierImage, PixelImage, image_param
    assert isinstance(image_param("pixel", 8, seed=0), PixelImage)
    assert isinstance(image_param("fourier", 8, seed=0), FourierImage)
    photo = torch.rand(3, 8, 8)
    assert torch.allclose(image_param("fourier", photo)(), photo[None], atol=1e-3)
    assert torch.equal(image_param("pixel", photo)(), photo[None])
    assert torch.equal(image_param("pixel", 8, sd=0.2, seed=1)(), pixel_image(8, sd=0.2, seed=1)())
    with pytest.raises(ValueError, match="'pixel', 'fourier'"):
        image_param("wavelet", 8)



def test_frames_cache_hands_a_cached_call_its_frames_once(model):
    from helpers.objectives import channel
    from helpers.optimize import frames_cache, live_runs
    from helpers.params import pixel_image

    @frames_cache(maxsize=2)
    def run(steps):
        return optimize(model, pixel_image(24, seed=0), -channel("blocks.1", 0), steps=steps,
                        every=2, progress=False).image
    first = run(4)  # an earlier cell: no live_runs around it
    with live_runs(show=False) as runs:
        again = run(4)
    assert run.cache_info().hits == 1 and torch.equal(first, again)
    assert len(runs.frames) == 4 and runs.frames[0].size == (24, 24)
    with live_runs(show=False) as fresh:
        run(6)  # computed inside: its frames arrive once, not twice
        run(4)  # then a cached one: both runs, in order
    assert len(fresh.frames) == 10 and fresh.frames[6:] == runs.frames


def test_live_runs_record_frames_and_keep_the_callers_callback(model):
    from helpers.objectives import channel
    from helpers.optimize import live_runs
    from helpers.params import pixel_image

    seen = []

    def stop_at_4(step, image, loss):
        seen.append(step)
        return step >= 4
    with live_runs(show=False) as runs:
        r = optimize(model, pixel_image(24, seed=0), -channel("blocks.1", 0), steps=10, every=2,
                     progress=False, callback=stop_at_4)
    assert seen == [2, 4] and r.stopped and r.steps == 4
    assert len(runs.frames) == 4 and runs.frames[0].size == (24, 24)  # short run: every step
    with live_runs(show=False) as long_runs:
        optimize(model, pixel_image(24, seed=0), -channel("blocks.1", 0), steps=96, every=50,
                 progress=False)
    assert len(long_runs.frames) == long_runs.frames_per_run  # spread over the run
    optimize(model, pixel_image(24, seed=0), -channel("blocks.1", 0), steps=4, progress=False)
    assert len(runs.frames) == 4 and len(long_runs.frames) == 24  # outside: nothing recorded
