"""helpers.patches: top patches are the maximal activations, cropped to the unit's box."""
import pytest
import torch

import helpers
from helpers import patches as P
from helpers.receptive_fields import receptive_field, unit_box


def test_top_patches_are_the_maximal_activations(offline, small_set, tmp_path):
    layer, channel, k = "blocks.5", 7, 5
    found = P.top_patches(offline, layer, channel, small_set, k=k, cache_dir=tmp_path, progress=False)
    with torch.no_grad(), helpers.record(offline, [layer]) as rec:
        offline(small_set.images)
    maps = rec[layer][:, channel]  # (N, H', W'), recomputed by a plain forward pass
    per_image = maps.flatten(1).max(1).values
    assert torch.allclose(torch.tensor([p.value for p in found]), per_image.topk(k).values, atol=1e-4)
    assert [p.image for p in found] == per_image.topk(k).indices.tolist()
    rf = receptive_field(offline, layer, 64)
    for p in found:
        assert maps[p.image, p.row, p.col] == pytest.approx(p.value, abs=1e-4)
        t, l, b, r = p.box
        assert (t, l, b, r) == unit_box(rf, p.row, p.col, 64)
        assert torch.equal(p.patch, small_set.images[p.image, :, t:b, l:r])
    assert helpers.leftover_hooks(offline) == []


def test_channel_maxima_cache_and_crops(offline, small_set, tmp_path):
    first = P.channel_maxima(offline, "blocks.3", small_set, cache_dir=tmp_path, progress=False)
    again = P.channel_maxima(offline, "blocks.3", small_set, cache_dir=tmp_path, progress=False)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert first["values"].shape == (22, 40) and first["shape"].tolist() == [8, 8]
    more = P.with_crops(small_set, crops_per_image=2)
    assert more.images.shape == (66, 3, 64, 64) and torch.equal(more.labels[22:44], small_set.labels)
    assert torch.equal(more.images[:22], small_set.images)
    with pytest.raises(ValueError, match="0..39"):
        P.top_patches(offline, "blocks.3", 40, small_set)
    with pytest.raises(ValueError, match="k must be in 1..22"):
        P.top_patches(offline, "blocks.3", 0, small_set, k=30)


def test_several_layers_share_one_pass(offline, small_set, tmp_path, monkeypatch):
    calls = []
    real = P.layer_outputs
    monkeypatch.setattr(P, "layer_outputs", lambda m, layers, *a, **k: calls.append(list(layers)) or
                        real(m, layers, *a, **k))
    layers = ["blocks.5", "blocks.1", "blocks.3"]
    both = P.channel_maxima(offline, layers, small_set, cache_dir=tmp_path, progress=False)
    assert calls == [layers]
    for layer in layers:
        alone = P.channel_maxima(offline, layer, small_set, cache=False, progress=False)
        assert all(torch.allclose(both[layer][k].float(), alone[k].float()) for k in alone), layer
    assert calls == [layers, [layers[0]], [layers[1]], [layers[2]]]
    P.channel_maxima(offline, layers, small_set, cache_dir=tmp_path, progress=False)
    assert len(calls) == 4  # all three now come from the cache
    assert helpers.leftover_hooks(offline) == []


def test_patch_figures(offline, small_set):
    found = P.top_patches(offline, "blocks.3", 0, small_set, k=3, cache=False, progress=False)
    assert len(P.show_patches(found, small_set.images).axes) == 6
    fig = P.patch_grid(offline, "blocks.3", [0, 1], small_set, k=3, progress=False)
    assert len(fig.axes) == 6 and "receptive field 35 px" in fig._suptitle.get_text()
