"""helpers.cache: cached features are reused for identical inputs and never returned stale."""
import pytest
import torch
import torchvision

import helpers
from helpers import data


@pytest.fixture(scope="module")
def tiny():
    return data.photos(n_per_class=1, size=32)


def test_cache_is_reused_for_identical_inputs(model, tiny, tmp_path, monkeypatch):
    first = data.extract_features(model, tiny, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("features-*.pt"))) == 1
    calls = []
    real = data.layer_outputs
    monkeypatch.setattr(data, "layer_outputs", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = data.extract_features(model, data.photos(n_per_class=1, size=32), cache_dir=tmp_path, progress=False)
    assert calls == [] and torch.equal(first, again)


def test_stale_cache_is_never_returned(model, tiny, tmp_path):
    """Every ingredient of the key changes the answer: pixels, labels, layer, size, transform, weights."""
    def fresh(*args, **kwargs):
        return data.extract_features(*args, cache=False, progress=False, **kwargs)

    def via_cache(*args, **kwargs):
        return data.extract_features(*args, cache_dir=tmp_path, progress=False, **kwargs)
    base = via_cache(model, tiny)

    one_pixel = data.ImageSet(tiny.images.clone(), tiny.labels, tiny.classes, tiny.name)
    one_pixel.images[5, 1, 10, 10] = 1 - one_pixel.images[5, 1, 10, 10]  # one pixel of 33,792
    got = via_cache(model, one_pixel)
    assert not torch.equal(got, base) and torch.allclose(got, fresh(model, one_pixel))

    relabelled = data.ImageSet(tiny.images, tiny.labels.flip(0), tiny.classes, tiny.name)
    assert relabelled.fingerprint() != tiny.fingerprint()

    for kwargs in [dict(layer="blocks.10"), dict(size=48), dict(transform=torch.nn.Hardtanh(0.2, 0.8))]:
        got = via_cache(model, tiny, **kwargs)
        assert torch.allclose(got, fresh(model, tiny, **kwargs)), kwargs
    assert not torch.allclose(via_cache(model, tiny, transform=torch.nn.Hardtanh(0.2, 0.8)),
                              via_cache(model, tiny, transform=torch.nn.Hardtanh(0.1, 0.9)))

    other = helpers.load_model()
    with torch.no_grad():
        other.fc.weight.zero_()  # after the layer: same features, yet a different model
        other.conv_stem.weight.mul_(1.5)
    got = via_cache(other, tiny)
    assert not torch.allclose(got, base) and torch.allclose(got, fresh(other, tiny))
    assert torch.equal(via_cache(model, tiny), base)  # and the original entry is still right


def test_cache_file_with_other_fields_is_recomputed(model, tiny, tmp_path):
    """A file under the right name but made for other inputs (a collision) is not trusted."""
    data.extract_features(model, tiny, cache_dir=tmp_path, progress=False)
    path, = tmp_path.glob("features-*.pt")
    stored = torch.load(path, weights_only=True)
    stored["tensors"]["features"] = torch.zeros_like(stored["tensors"]["features"])
    stored["fields"] = stored["fields"].replace("pool", "blocks.0")
    torch.save(stored, path)
    got = data.extract_features(model, tiny, cache_dir=tmp_path, progress=False)
    assert got.abs().sum() > 0


def test_unstable_transform_is_computed_not_cached(model, tiny, tmp_path):
    got = data.extract_features(model, tiny, transform=lambda x: x.flip(-1), cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    assert torch.allclose(got, data.extract_features(model, tiny.images.flip(-1), cache=False, progress=False),
                          atol=1e-4)


def test_module_weights_and_randomness_are_part_of_the_transform_key(model, tiny, tmp_path):
    """Two 1x1 convs print the same repr; a random flip is never reused from disk."""
    def conv(scale):
        c = torch.nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            c.weight.copy_(scale * torch.eye(3).view(3, 3, 1, 1))
        return c
    assert repr(conv(1.0)) == repr(conv(0.5))
    full = data.extract_features(model, tiny, transform=conv(1.0), cache_dir=tmp_path, progress=False)
    half = data.extract_features(model, tiny, transform=conv(0.5), cache_dir=tmp_path, progress=False)
    assert torch.allclose(half, data.extract_features(model, tiny.images * 0.5, cache=False,
                                                      progress=False), atol=1e-4)
    assert not torch.allclose(full, half)

    files = set(tmp_path.iterdir())
    data.extract_features(model, tiny, transform=torchvision.transforms.RandomHorizontalFlip(),
                          cache_dir=tmp_path, progress=False)
    assert set(tmp_path.iterdir()) == files
