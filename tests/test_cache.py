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


# --------------------------------------------------------------------------- where data and caches go
from helpers import cache as cache_module


@pytest.fixture
def no_choice(monkeypatch):
    monkeypatch.delenv(cache_module.ENV_VAR, raising=False)


def test_environment_variable_chooses_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(cache_module.ENV_VAR, str(tmp_path / "course-data"))
    assert cache_module.data_dir() == tmp_path / "course-data"
    assert cache_module.cache_folder() == tmp_path / "course-data" / "cache"
    got = cache_module.cached({"kind": "test", "n": 1}, lambda: {"x": torch.arange(3)})
    assert torch.equal(got["x"], torch.arange(3))
    assert len(list((tmp_path / "course-data" / "cache").glob("cache-*.pt"))) == 1
    assert cache_module.on_disk({"kind": "test", "n": 1})


def test_a_writable_checkout_keeps_data_in_the_repository(no_choice):
    assert cache_module.data_dir() == cache_module.REPO_DATA
    assert (cache_module.REPO_DATA.parent / "pyproject.toml").exists()


def test_read_only_repository_data_falls_back_to_the_user_cache(tmp_path, monkeypatch, no_choice):
    """A shared JupyterHub: the course folder belongs to the instructor. (A file where the folder
    should be is unwritable for root too, so this holds when the tests run as root.)"""
    repo = tmp_path / "course"
    repo.mkdir()
    (repo / "pyproject.toml").write_text("")
    (repo / "data").write_text("not a folder")
    monkeypatch.setattr(cache_module, "REPO_DATA", repo / "data")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert not cache_module.writable(repo / "data")
    assert cache_module.data_dir() == cache_module.user_cache_dir()
    assert str(cache_module.data_dir()).startswith(str(tmp_path))
    cache_module.cached({"kind": "fallback"}, lambda: {"x": torch.ones(2)})
    assert list(cache_module.cache_folder().glob("cache-*.pt"))


def test_an_installed_package_uses_the_user_cache(tmp_path, monkeypatch, no_choice):
    """From a wheel (Colab, pip install .), there is no checkout beside the package."""
    monkeypatch.setattr(cache_module, "REPO_DATA", tmp_path / "site-packages" / "data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_module.data_dir() == cache_module.user_cache_dir()
    assert not (tmp_path / "site-packages").exists()  # nothing made beside the package


@pytest.mark.parametrize("platform, expected", [
    ("linux", "xdg/cnn-insight"), ("win32", "local/cnn-insight"),
    ("darwin", "home/Library/Caches/cnn-insight")])
def test_user_cache_dir_follows_the_platform(platform, expected, tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module.sys, "platform", platform)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert cache_module.user_cache_dir() == tmp_path / expected


def test_downloads_follow_the_chosen_folder(tmp_path, monkeypatch):
    """Imagenette, CIFAR-10 and the paintings all look in data_dir() (offline here: they say where)."""
    from helpers import style_images
    monkeypatch.setenv(cache_module.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(helpers.models, "online", lambda url, timeout=3.0: False)
    monkeypatch.setattr(style_images, "online", lambda url, timeout=3.0: False)
    for name in ("imagenette", "cifar10"):
        with pytest.raises(data.DatasetUnavailable, match=f"not in {tmp_path}"):
            data.load_dataset(name)
    painting = next(iter(style_images.PAINTINGS))
    with pytest.raises(style_images.StyleUnavailable, match=str(tmp_path / "paintings")):
        style_images.painting_path(painting)
