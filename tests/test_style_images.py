"""Style images: offline styles load, paintings fail offline with one message, uploads are checked."""
import datetime
import io
import json

import numpy as np
import pytest
from PIL import Image

from helpers import ImageError
from helpers import style_images as si


def _png(size=(40, 30), colour=(200, 30, 30)):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "png")
    return buf.getvalue()


@pytest.mark.parametrize("name", list(si.OFFLINE))
def test_offline_styles_load_as_rgb(name):
    img = si.load_style(name, 48)
    assert img.shape == (3, 48, 48)
    assert 0 <= img.min() and img.max() <= 1


def test_stained_glass_has_flat_colours_and_dark_lines():
    img = si.stained_glass()
    assert img.shape[-1] == 3
    assert (img.max(-1) < 0.1).mean() > 0.05  # lead lines
    assert img.std() > 0.15


@pytest.fixture
def offline(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("tests must not touch the network")
    monkeypatch.setattr(si, "online", lambda url, timeout=3.0: False)
    monkeypatch.setattr(si.urllib.request, "urlopen", no_network)
    return tmp_path


def test_painting_offline_fails_with_one_clear_message(offline):
    with pytest.raises(si.StyleUnavailable) as err:
        si.load_style("starry_night", 32, folder=offline)
    msg = str(err.value)
    assert "starry_night" in msg and "offline" in msg and "stained_glass" in msg
    assert list(offline.iterdir()) == []


def test_painting_offline_falls_back_with_a_warning(offline):
    with pytest.warns(UserWarning, match="stained_glass"):
        img = si.load_style("great_wave", 32, fallback=True, folder=offline)
    assert img.shape == (3, 32, 32)


def test_cached_painting_is_checked(offline):
    path = offline / "composition_7.jpg"
    path.write_bytes(_png())
    # First use records the hash, the second verifies it.
    assert si.load_style("composition_7", 16, folder=offline).shape == (3, 16, 16)
    known = json.loads((offline / "checksums.json").read_text())
    assert len(known["composition_7"]) == 64
    assert si.load_style("composition_7", 16, folder=offline).shape == (3, 16, 16)
    path.write_bytes(_png(colour=(0, 0, 255)))  # tampered / corrupted
    with pytest.raises(ImageError, match="SHA-256"):
        si.load_style("composition_7", 16, folder=offline)
    assert not path.exists()


def test_unknown_painting():
    with pytest.raises(ValueError, match="starry_night"):
        si.painting_path("mona_lisa")


def test_read_upload_accepts_widget_values():
    value = ({"name": "cat.png", "type": "image/png", "size": 100,
              "content": memoryview(_png())},)
    img = si.read_upload(value, size=24)
    assert img.shape == (3, 24, 24)
    assert img[0].mean() > 0.7 and img[2].mean() < 0.2
    assert si.read_upload(_png(), size=8).shape == (3, 8, 8)


def test_read_upload_refuses_bad_files():
    with pytest.raises(ImageError, match="No file"):
        si.read_upload(())
    with pytest.raises(ImageError, match="limit"):
        si.read_upload({"name": "big.png", "content": _png()}, max_bytes=10)
    with pytest.raises(ImageError, match="not an image file"):
        si.read_upload({"name": "notes.pdf", "content": _png()})
    with pytest.raises(ImageError, match="not an image PIL can read"):
        si.read_upload({"name": "fake.jpg", "content": b"hello world"})
    with pytest.raises(ImageError, match="empty"):
        si.read_upload({"name": "x.png", "content": b""})


def test_upload_widget_accepts_images_only():
    w = si.upload_widget()
    assert ".png" in w.accept and ".jpg" in w.accept and not w.multiple


def test_styles_list():
    assert set(si.STYLES) == set(si.OFFLINE) | set(si.PAINTINGS)
    assert all(np.char.startswith(info["url"], "https://") for info in si.PAINTINGS.values())


def test_upload_box_adds_a_checked_image_to_the_picker():
    import ipywidgets as W
    picker, store = W.Dropdown(options=["chelsea"], value="chelsea"), {}
    box = si.upload_box(picker, store, size=16)
    up, msg = box.children
    up.value = ({"name": "notes.txt", "type": "text/plain", "size": 3, "content": b"abc",
                 "last_modified": datetime.datetime(2024, 1, 1)},)
    assert "not an image file" in msg.value and picker.options == ("chelsea",) and not store
    up.value = ({"name": "red.png", "type": "image/png", "size": 10,
                 "content": memoryview(_png()), "last_modified": datetime.datetime(2024, 1, 1)},)
    assert picker.value == "upload 1" and store["upload 1"].shape == (3, 16, 16)
