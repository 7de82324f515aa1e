import numpy as np
import pytest
import torch
from PIL import Image

import helpers
from helpers import ImageError, load_image
from helpers.images import _shrink, center_crop_resize


@pytest.mark.parametrize("name", list(helpers.SAMPLES))
def test_every_sample_loads_as_rgb_in_unit_range(name):
    img = load_image(name, 96)
    assert img.shape == (3, 96, 96) and img.dtype == torch.float32
    assert 0 <= img.min() and img.max() <= 1 and img.std() > 0.01


def test_grayscale_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(np.full((40, 60), 128, np.uint8), "L").save(path)
    img = load_image(path, 32)
    assert img.shape == (3, 32, 32)
    assert torch.allclose(img[0], img[1]) and abs(img.mean().item() - 128 / 255) < 1e-3


def test_rgba_is_composited_on_white(tmp_path):
    a = np.zeros((20, 20, 4), np.uint8)
    a[..., 0] = 255  # red, fully transparent -> white
    Image.fromarray(a, "RGBA").save(tmp_path / "t.png")
    img = load_image(tmp_path / "t.png", None)
    assert torch.allclose(img, torch.ones_like(img))


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    a = np.full((16, 16), 32768, np.uint16)
    Image.fromarray(a).save(tmp_path / "d.png")
    img = load_image(tmp_path / "d.png", None)
    assert abs(img.mean().item() - 0.5) < 0.01


def test_huge_jpeg_loads_quickly_and_is_cropped(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (3000, 9000, 3), np.uint8)).save(tmp_path / "big.jpg")
    img = load_image(tmp_path / "big.jpg", 224)
    assert img.shape == (3, 224, 224)


@pytest.mark.parametrize("mode", ["RGB", "L", "I;16", "P"])
def test_huge_photo_is_reduced_before_floats_with_the_same_result(mode):
    """A 4000 x 2400 photo shrinks by a whole factor first; the picture is unchanged."""
    y, x = np.mgrid[0:2400, 0:4000]
    wave = (np.sin(x / 150.0) * np.cos(y / 90.0) + 1) / 2
    if mode == "I;16":
        img = Image.fromarray((wave * 65535).astype(np.uint16))
    else:
        img = Image.fromarray((wave * 255).astype(np.uint8)).convert(mode)
    full = center_crop_resize(load_image(img, None), 96)
    small = load_image(img, 96)
    assert _shrink(img, 192).size == (334, 200)  # reduced by 12 (2400 // 192), rounded up
    assert (small - full).abs().max() < 0.02


def test_text_file_gives_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageError, match="not an image.*JPEG, PNG"):
        load_image(tmp_path / "notes.txt")


def test_unknown_source_names_the_samples():
    with pytest.raises(ImageError, match="chelsea"):
        load_image("no-such-photo")


def test_bytes_and_arrays_and_roundtrip(tmp_path):
    img = load_image("coffee", 64)
    helpers.save_image(img, tmp_path / "c.png")
    back = load_image((tmp_path / "c.png").read_bytes(), None)
    assert torch.allclose(back, img, atol=1 / 255 + 1e-6)
    assert load_image(np.zeros((10, 10, 3), np.float32), None).shape == (3, 10, 10)
    assert helpers.to_numpy(img).shape == (64, 64, 3)


def test_center_crop_keeps_the_middle(tmp_path):
    a = np.zeros((100, 300, 3), np.uint8)
    a[:, 100:200] = 255  # the central square is white, the sides black
    Image.fromarray(a).save(tmp_path / "wide.png")
    assert load_image(tmp_path / "wide.png", 50).min() > 0.99


def test_as_batch_shapes_dtype_device_and_bad_input():
    from helpers.images import as_batch
    img = torch.rand(3, 8, 6, dtype=torch.float16, requires_grad=True)
    b = as_batch(img)
    assert b.shape == (1, 3, 8, 6) and b.dtype == torch.float32 and not b.requires_grad
    assert as_batch(np.zeros((2, 3, 4, 4), np.uint8)).shape == (2, 3, 4, 4)
    assert as_batch(img, "meta").device.type == "meta"
    with pytest.raises(ValueError, match=r"\(3, H, W\) or \(N, 3, H, W\).*\(1, 8, 6\)"):
        as_batch(img[:1])
    with pytest.raises(TypeError, match="load_image"):
        as_batch("chelsea")


def test_resize_keeps_rank_range_and_sign():
    from helpers.images import resize
    img = torch.rand(3, 40, 30)
    assert resize(img, 20).shape == (3, 20, 20)
    assert resize(img[None], (10, 12)).shape == (1, 3, 10, 12)
    assert resize(img, (40, 30)) is img  # the same size: nothing to do
    small = resize(img, 7)
    assert small.min() >= img.min() - 1e-6 and small.max() <= img.max() + 1e-6
    detail = torch.full((1, 3, 16, 16), -0.25)  # a signed map (a dream's added detail)
    assert torch.allclose(resize(detail, 37), torch.tensor(-0.25))
    # antialiased: a fine checkerboard shrinks to flat grey, not to aliased stripes
    board = ((torch.arange(64)[:, None] + torch.arange(64)[None]) % 2).float().expand(3, 64, 64)
    assert (resize(board, 8) - 0.5).abs().max() < 0.05

