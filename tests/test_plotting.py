import matplotlib.pyplot as plt
import numpy as np
import torch

import helpers
from helpers.plotting import finish, normalize_each, signed_map, upsample


def test_normalize_each_scales_every_item_to_unit_range():
    t = torch.stack([torch.linspace(-3, 5, 27).view(3, 3, 3), torch.full((3, 3, 3), 2.0)])
    n = normalize_each(t)
    assert n[0].min() == 0 and n[0].max() == 1
    assert torch.isfinite(n[1]).all()  # a constant kernel does not divide by zero


def test_kernel_grid_draws_one_tile_per_kernel(model):
    fig = helpers.kernel_grid(model.conv_stem.weight, ncols=8)
    assert len([a for a in fig.axes if a.images]) == 32


def test_overlay_upsamples_heatmap_to_the_photo(cat):
    heat = np.zeros((7, 7), np.float32)
    heat[0, 0] = 1
    up = upsample(heat, (224, 224))
    assert up.shape == (224, 224) and up[:16, :16].mean() > up[-16:, -16:].mean()


def test_feature_grid_highlights_channels():
    fig = helpers.feature_grid(torch.rand(6, 5, 5), ncols=3, highlight=[2])
    framed = [a for a in fig.axes if a.spines["top"].get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(framed) == 1


def test_signed_map_is_symmetric_around_zero():
    fig, axes = plt.subplots(1, 3)
    im = signed_map(axes[0], torch.tensor([[-0.5, 0.25], [0.0, 0.1]]))
    assert im.get_clim() == (-0.5, 0.5) and im.get_cmap().name == "RdBu_r"
    assert signed_map(axes[1], torch.zeros(2, 2)).get_clim() == (-1.0, 1.0)
    assert signed_map(axes[2], torch.ones(2, 2), limit=4).get_clim() == (-4.0, 4.0)
    assert finish(fig, "title", color="red") is fig and not plt.fignum_exists(fig.number)
    assert fig._suptitle.get_text() == "title" and fig._suptitle.get_color() == "red"


def test_no_rainbow_colour_maps_in_helpers_or_notebooks():
    # jet/rainbow have no perceptual order; magnitudes use viridis/inferno/gray, signs RdBu_r.
    import re
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    files = list((repo / "helpers").glob("*.py")) + list((repo / "notebooks").glob("*.ipynb"))
    bad = re.compile(r"""["'](jet|rainbow|gist_rainbow|hsv|nipy_spectral)["']""")
    found = [f.name for f in files if bad.search(f.read_text(encoding="utf-8"))]
    assert not found, f"rainbow colour maps in {found}"


def test_overlay_draws_magnitudes_with_a_perceptual_map():
    import inspect
    assert inspect.signature(helpers.overlay).parameters["cmap"].default == "inferno"
    fig, ax = plt.subplots()
    helpers.overlay(ax, torch.rand(3, 8, 8), torch.rand(4, 4))
    assert ax.images[1].get_cmap().name == "inferno"
    plt.close(fig)
    fig, ax = plt.subplots()
    assert signed_map(ax, torch.randn(4, 4)).get_cmap().name == "RdBu_r"
    plt.close(fig)
