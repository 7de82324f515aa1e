"""helpers.data: the offline sets, the online loaders without a network, and feature extraction."""
import socket

import numpy as np
import pytest
import torch
from PIL import Image

import helpers
from helpers import data


@pytest.fixture(scope="module")
def tiny():
    return data.photos(n_per_class=1, size=32)


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt fails (and is counted), as on a machine without internet."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", lambda self, *a: refuse(*a))
    return attempts


# --------------------------------------------------------------------------- offline sets

def test_photos_shapes_labels_and_determinism():
    a = data.photos(n_per_class=3, size=40)
    assert a.images.shape == (33, 3, 40, 40) and a.images.dtype == torch.float32
    assert 0 <= a.images.min() and a.images.max() <= 1
    assert a.classes == data.PHOTO_SOURCES
    assert torch.equal(torch.bincount(a.labels), torch.full((11,), 3))
    assert a.fingerprint() == data.photos(n_per_class=3, size=40).fingerprint()
    assert a.fingerprint() != data.photos(n_per_class=3, size=40, seed=1).fingerprint()
    assert "source photo" in a.description


def test_photos_crops_of_one_photo_really_differ():
    a = data.photos(n_per_class=4, size=32, sources=["chelsea", "brick"])
    x = a.images.flatten(1)
    same = torch.cdist(x[:4], x[:4])
    assert same[~torch.eye(4, dtype=bool)].min() > 1.0  # no two crops are (nearly) the same picture


def test_digits_are_sklearn_digits_upsampled():
    from sklearn.datasets import load_digits
    d = data.digits(size=16)
    assert d.images.shape == (1797, 3, 16, 16)
    assert torch.equal(d.labels, torch.tensor(load_digits().target))
    assert torch.equal(d.images[:, 0], d.images[:, 2])
    small = data.digits(n=100, size=8, seed=3)
    counts = torch.bincount(small.labels, minlength=10)
    assert counts.sum() == 100 and counts.max() - counts.min() <= 1  # class-balanced subset
    # at the native size the pixels are sklearn's, scaled to [0, 1]
    full = data.digits(size=8)
    assert torch.allclose(full.images[5, 0], torch.tensor(load_digits().images[5] / 16, dtype=torch.float32))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="photos, digits, imagenette, cifar10"):
        data.load_dataset("mnist")
    with pytest.raises(ValueError, match="n_per_class"):
        data.photos(n_per_class=0)
    with pytest.raises(ValueError, match="1..1797"):
        data.digits(n=5000)


# --------------------------------------------------------------------------- online sets, offline

@pytest.mark.parametrize("name", ["imagenette", "cifar10"])
def test_online_sets_fail_cleanly_offline(name, tmp_path, no_network):
    with pytest.raises(data.DatasetUnavailable, match="offline.*photos, digits"):
        data.load_dataset(name, root=tmp_path)
    assert no_network, "the loader should have checked the network (and been refused)"
    assert list(tmp_path.iterdir()) == []  # nothing half-downloaded


def test_fallback_selects_the_offline_set(tmp_path, no_network, monkeypatch):
    stub = data.photos(n_per_class=1, size=16)
    monkeypatch.setattr(data, "photos", lambda: stub)
    with pytest.warns(UserWarning, match="offline 'photos'"):
        got = data.load_dataset("cifar10", root=tmp_path, fallback=True)
    assert got is stub


def test_imagenette_on_disk_is_read_without_network(tmp_path, no_network):
    rng = np.random.default_rng(0)
    for wnid in ["n01440764", "n02102040"]:
        folder = tmp_path / "imagenette2-160" / "val" / wnid
        folder.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (160, 213, 3), dtype=np.uint8)).save(
                folder / f"{wnid}_{i}.JPEG")
    ds = data.load_dataset("imagenette", root=tmp_path, n=4, size=32)
    assert ds.images.shape == (4, 3, 32, 32) and ds.classes == ["tench", "English springer"]
    assert sorted(ds.labels.tolist()) == [0, 0, 1, 1]
    assert no_network == []  # on disk: the network was never needed


def test_missing_samples_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No ImageNet sample photos"):
        data.imagenet_samples(tmp_path)


# --------------------------------------------------------------------------- features

def test_features_match_the_penultimate_layer(model, tiny):
    f = data.extract_features(model, tiny, cache=False, progress=False)
    assert f.shape == (len(tiny), 1280) and f.dtype == torch.float32
    with torch.no_grad(), helpers.record(model, ["pool"]) as rec:
        model(tiny.images)
    assert torch.allclose(f, rec["pool"].flatten(1), atol=1e-4)
    one = data.extract_features(model, tiny, batch_size=1, cache=False, progress=False)
    assert torch.allclose(f, one, atol=1e-4)  # batching and channels-last change nothing
    assert helpers.leftover_hooks(model) == []


def test_features_reductions_and_resize(model, tiny):
    x = tiny.images[:3]
    with torch.no_grad(), helpers.record(model, ["blocks.3"]) as rec:
        model(torch.nn.functional.interpolate(x, size=(48, 48), mode="bilinear", antialias=True))
    act = rec["blocks.3"]
    for reduce, want in [("avg", act.mean((2, 3))), ("max", act.amax((2, 3))), ("flatten", act.flatten(1))]:
        got = data.extract_features(model, x, "blocks.3", reduce=reduce, size=48, cache=False, progress=False)
        assert torch.allclose(got, want, atol=1e-4), reduce
    with pytest.raises(ValueError, match="'avg', 'max' or 'flatten'"):
        data.extract_features(model, x, reduce="mean")
    with pytest.raises(helpers.LayerError, match="blocks.3"):
        data.extract_features(model, x, layer="block.3")


def test_hooks_removed_when_extraction_fails(model, tiny):
    def boom(x):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        data.extract_features(model, tiny, transform=boom, cache=False, progress=False)
    assert helpers.leftover_hooks(model) == []

