import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from helpers import attribution_figures as af
from helpers.attribution import channels_by_activation, clip_map, saliency
from helpers.images import load_image
from helpers.models import predict

SIZE = 96            # small photos keep every figure cheap
OCC = dict(window=48, stride=48, size=SIZE)  # 2 x 2 window positions


def pixels(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="rgba", dpi=40)
    return np.frombuffer(buf.getvalue(), np.uint8)


def drawn(ax):
    """The array of the first image drawn on ``ax``."""
    return np.asarray(ax.images[0].get_array())


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_occlusion_figure_shows_photo_map_colorbar_overlay_and_is_closed(model):
    fig = af.occlusion_figure(model, "coffee", **OCC)
    assert not plt.fignum_exists(fig.number)
    assert len(fig.axes) == 4  # photo, map, its colour bar, overlay
    photo, heat, over, _ = fig.axes
    top, name, p = predict(model, load_image("coffee", SIZE), k=1)[0][0]
    assert photo.get_title() == f"{name}: p = {p:.2f}"
    assert heat.get_title() == "drop in p (window 48, stride 48, zero)"
    expected = af.occlusion_map(model, "coffee", top, 48, 48, "zero", SIZE)
    np.testing.assert_allclose(drawn(heat), expected.numpy())
    vmin, vmax = heat.images[0].get_clim()
    assert vmin == -vmax == -float(expected.abs().max())
    assert len(over.images) == 2  # photo and heat map over it


def test_occlusion_figure_changes_with_the_fill_and_the_class(model):
    zero = pixels(af.occlusion_figure(model, "coffee", fill="zero", **OCC))
    mean = pixels(af.occlusion_figure(model, "coffee", fill="mean", **OCC))
    cup = pixels(af.occlusion_figure(model, "coffee", target="cup", fill="zero", **OCC))
    assert zero.shape == mean.shape == cup.shape
    assert (zero != mean).any() and (zero != cup).any()


def test_occlusion_figure_reports_a_class_name_it_cannot_resolve(model):
    fig = af.occlusion_figure(model, "coffee", target="no such class", **OCC)
    assert "no such class" in fig._suptitle.get_text()
    name = predict(model, load_image("coffee", SIZE), k=1)[0][0][1]
    assert fig.axes[0].get_title().startswith(name + ":")  # falls back to the prediction


def test_occlusion_map_is_cached_per_setting_and_on_the_cpu(model):
    first = af.occlusion_map(model, "coffee", 967, 48, 48, "blur", SIZE)
    hits = af.occlusion_map.cache_info().hits
    assert af.occlusion_map(model, "coffee", 967, 48, 48, "blur", SIZE) is first
    assert af.occlusion_map.cache_info().hits == hits + 1
    other = af.occlusion_map(model, "coffee", 967, 48, 48, "zero", SIZE)
    assert other is not first and not torch.equal(other, first)
    assert first.device.type == "cpu" and first.shape == (SIZE, SIZE)


def test_fills_figure_shows_each_fill_in_the_hole_and_its_map(model):
    fig = af.fills_figure(model, "coffee", **OCC)
    assert len(fig.axes) == 6
    assert titles(fig)[:3] == ["fill = zero", "fill = mean", "fill = blur"]
    assert all(t.startswith("drop: ") for t in titles(fig)[3:])
    zero_hole = drawn(fig.axes[0])
    c = SIZE // 2
    assert zero_hole[c - 20:c + 20, c - 20:c + 20].max() == 0  # a black square in the middle
    assert zero_hole.max() > 0
    mean_hole = drawn(fig.axes[1])[c - 20:c + 20, c - 20:c + 20]
    assert np.ptp(mean_hole.reshape(-1, 3), axis=0).max() < 1e-6  # one flat colour
    assert not np.allclose(drawn(fig.axes[3]), drawn(fig.axes[4]))


def test_class_occlusion_figure_shows_the_top_classes_on_one_scale(model):
    fig = af.class_occlusion_figure(model, "chelsea", k=2, **OCC)
    assert len(fig.axes) == 3
    top = [name for _, name, _ in predict(model, load_image("chelsea", SIZE), k=2)[0]]
    assert [t.split(" (p")[0] for t in titles(fig)[1:]] == top
    assert fig.axes[1].images[0].get_clim() == fig.axes[2].images[0].get_clim()


def test_saliency_figure_has_one_map_per_class(model):
    fig = af.saliency_figure(model, "chelsea", [None, "goldfish"], size=SIZE)
    assert len(fig.axes) == 3
    assert titles(fig)[2] == "goldfish (gradient)"
    assert not np.allclose(drawn(fig.axes[1]), drawn(fig.axes[2]))
    t = predict(model, load_image("chelsea", SIZE), k=1)[0][0][0]
    expected = clip_map(saliency(model, load_image("chelsea", SIZE), t))
    np.testing.assert_allclose(drawn(fig.axes[1]), expected.numpy(), atol=1e-6)


def test_smoothgrad_figure_one_panel_per_noise_and_noise_changes_the_map(model):
    fig = af.smoothgrad_figure(model, "chelsea", noises=(0.0, 0.25), samples=2, size=SIZE)
    assert titles(fig) == ["noise 0.00, 1 sample(s)", "noise 0.25, 2 sample(s)"]
    assert not np.allclose(drawn(fig.axes[0]), drawn(fig.axes[1]))


def test_gradient_vs_smoothgrad_figure_and_saliency_cache(model):
    fig = af.gradient_vs_smoothgrad_figure(model, "chelsea", 285, noise=0.2, samples=2, size=SIZE)
    assert titles(fig) == ["chelsea: Egyptian cat", "gradient", "SmoothGrad: noise 0.20, 2 samples"]
    plain = af.saliency_map(model, "chelsea", 285, size=SIZE)
    assert af.saliency_map(model, "chelsea", 285, size=SIZE) is plain
    np.testing.assert_allclose(drawn(fig.axes[1]), clip_map(plain).numpy())
    assert not np.allclose(drawn(fig.axes[1]), drawn(fig.axes[2]))


def test_rules_figure_draws_three_different_backward_rules(model):
    fig = af.rules_figure(model, "chelsea", 285, size=SIZE)
    assert titles(fig) == ["chelsea: Egyptian cat", "gradient", "deconvnet", "guided"]
    maps = [drawn(ax) for ax in fig.axes[1:]]
    assert all(m.shape == (SIZE, SIZE, 3) and 0 <= m.min() and m.max() <= 1 for m in maps)
    assert not np.allclose(maps[0], maps[2]) and not np.allclose(maps[1], maps[2])
    guided = af.backward_map(model, "chelsea", 285, "guided", SIZE)
    assert af.backward_map(model, "chelsea", 285, "guided", SIZE) is guided
    assert guided.shape == (3, SIZE, SIZE) and guided.device.type == "cpu"


def test_neurons_figure_shows_the_strongest_channels(model):
    layer = "blocks.4.act1"
    fig = af.neurons_figure(model, "chelsea", layer, k=3, size=SIZE)
    assert len(fig.axes) == 3
    top = [ch for ch, _ in channels_by_activation(model, load_image("chelsea", SIZE), layer)[:3]]
    assert [int(t.split(" ch ")[1].split()[0]) for t in titles(fig)] == top


def test_neuron_figure_follows_the_rank(model):
    layer = "blocks.4.act1"
    first = af.neuron_figure(model, "chelsea", layer, rank=0, size=SIZE)
    second = af.neuron_figure(model, "chelsea", layer, rank=1, size=SIZE)
    (c0, _), (c1, _) = af.ranked_channels(model, "chelsea", layer, SIZE)[:2]
    assert f"channel {c0}: rank 0" in first.axes[0].get_title()
    assert f"channel {c1}: rank 1" in second.axes[0].get_title()
    assert [ax.get_title() for ax in first.axes[1:]] == ["guided", "deconvnet"]
    assert not np.allclose(drawn(first.axes[1]), drawn(second.axes[1]))
    act = af.layer_activation(model, "chelsea", layer, SIZE)
    assert act.dim() == 3 and act.device.type == "cpu"
    assert first.axes[0].images[1].get_array().shape == (SIZE, SIZE)  # activation, upsampled


def test_randomization_figure_grid_and_labels():
    maps = [torch.rand(8, 8) for _ in range(3)]
    check = {"steps": ["original", "fc", "conv_stem"],
             "maps": {"saliency": maps, "guided_backprop": maps[::-1]},
             "similarity": {"saliency": [1.0, 0.5, 0.25], "guided_backprop": [1.0, 0.9, 0.1]}}
    fig = af.randomization_figure(check)
    assert len(fig.axes) == 6
    assert titles(fig)[:3] == ["original", "up to fc", "up to conv_stem"]
    assert [ax.get_xlabel() for ax in fig.axes[:3]] == ["rho = 1.00", "rho = 0.50", "rho = 0.25"]
    assert fig.axes[0].get_ylabel() == "saliency" and fig.axes[3].get_ylabel() == "guided_backprop"
    np.testing.assert_allclose(drawn(fig.axes[3]), clip_map(maps[2]).numpy())


def test_randomization_figure_with_one_method_and_no_rows_lost():
    check = {"steps": ["original", "fc"], "maps": {"saliency": [torch.rand(4, 4)] * 2},
             "similarity": {"saliency": [1.0, 1.0]}}
    assert len(af.randomization_figure(check).axes) == 2


@pytest.mark.parametrize("name", af.__all__)
def test_every_public_name_has_a_docstring(name):
    assert getattr(af, name).__doc__


# ----------------------------------------------------------------------------- IG and Grad-CAM
def test_integrated_gradients_figure_shows_the_completeness_check(model):
    from helpers.integrated_gradients import score_difference
    fig = af.integrated_gradients_figure(model, "chelsea", 285, steps=4, baseline="blur", size=SIZE)
    assert not plt.fignum_exists(fig.number) and len(fig.axes) == 4
    attr = af.integrated_gradients_map(model, "chelsea", 285, 4, "blur", SIZE)
    assert attr is af.integrated_gradients_map(model, "chelsea", 285, steps=4.0, baseline="blur",
                                               size=SIZE)  # one cache entry per setting
    gap = score_difference(model, load_image("chelsea", SIZE), 285, "blur")
    assert titles(fig)[1] == "baseline: blur"
    assert titles(fig)[3] == f"signed: sum {float(attr.sum()):.2f}, S(x) - S(x') = {gap:.2f}"
    np.testing.assert_allclose(drawn(fig.axes[2]), clip_map(attr.abs().sum(0)).numpy())
    black = af.integrated_gradients_figure(model, "chelsea", 285, steps=4, size=SIZE)
    assert not np.array_equal(drawn(black.axes[2]), drawn(fig.axes[2]))


def test_ig_path_figure_one_line_per_baseline_and_the_points(model):
    fig = af.ig_path_figure(model, "chelsea", 285, ("black", "white"), steps=5, points=6,
                            size=SIZE)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3 and len(lines[2].get_xdata()) == 5
    a, s = af.score_path(model, "chelsea", 285, "white", 6, SIZE)
    np.testing.assert_allclose(lines[1].get_ydata(), s.numpy())


def test_grad_cam_figure_default_layer_and_maps(model):
    from helpers.gradcam import grad_cam
    fig = af.grad_cam_figure(model, "chelsea", size=SIZE)
    assert len(fig.axes) == 4 and titles(fig)[1] == "act1: 3 x 3 grid"
    coarse = grad_cam(model, load_image("chelsea", SIZE), 285, "act1", upsample=False)
    np.testing.assert_allclose(drawn(fig.axes[1]), coarse.numpy())
    other = af.grad_cam_figure(model, "chelsea", 285, "blocks.10", size=SIZE)
    assert titles(other)[1] == "blocks.10: 6 x 6 grid"


def test_grad_cam_classes_and_layers_figures(model):
    fig = af.grad_cam_classes_figure(model, "astronaut", ["bobsled", "space shuttle"], size=SIZE)
    assert len(fig.axes) == 3 and titles(fig)[2].startswith("space shuttle (p = ")
    maps = [drawn_over(ax) for ax in fig.axes[1:]]
    assert not np.array_equal(*maps)
    layers = af.grad_cam_layers_figure(model, "chelsea", 285, ["blocks.5", "act1"], size=SIZE)
    assert [t.split(" at ")[1].split(" (")[0] for t in titles(layers)] == ["blocks.5", "act1"]


def drawn_over(ax):
    """The heat map drawn over the photo by ``plotting.overlay``."""
    return np.asarray(ax.images[1].get_array())
