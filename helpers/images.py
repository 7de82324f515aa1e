"""Load photos (paths, URLs, named samples) as (3, H, W) tensors in [0, 1], and back."""
import io
import os
import urllib.request

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .checks import check_size

Image.MAX_IMAGE_PIXELS = 20_000 ** 2  # huge photos are fine; decompression bombs are not


def _skimage(name):
    import skimage.data
    return lambda: getattr(skimage.data, name)()


def _sklearn(filename):
    def load():
        from sklearn.datasets import load_sample_images
        data = load_sample_images()
        return data.images[[os.path.basename(f) for f in data.filenames].index(filename)]
    return load


# Photos that ship inside the installed packages, so every notebook works offline.
SAMPLES = {
    "chelsea": _skimage("chelsea"),        # a tabby cat
    "coffee": _skimage("coffee"),          # a cup of espresso
    "astronaut": _skimage("astronaut"),    # Eileen Collins
    "rocket": _skimage("rocket"),          # a rocket on the launch pad
    "china": _sklearn("china.jpg"),        # a temple in China
    "flower": _sklearn("flower.jpg"),      # a flower with a bee
    "camera": _skimage("camera"),          # grayscale cameraman
    "brick": _skimage("brick"),            # textures (grayscale)
    "grass": _skimage("grass"),
    "gravel": _skimage("gravel"),
    "hubble": _skimage("hubble_deep_field"),
    "colorwheel": _skimage("colorwheel"),
}
PHOTOS = ["chelsea", "coffee", "astronaut", "rocket", "china", "flower"]
TEXTURES = ["brick", "grass", "gravel", "hubble", "colorwheel"]


# Values a hair outside [0, 1] come from float rounding in resizes; real mistakes (0-255 photos,
# ImageNet-normalized tensors) are far outside.
RANGE_SLACK = 1e-3


class ImageError(ValueError):
    """A source that is not a readable image."""


def _to_float(array):
    """HxW, HxWx1/3/4 arrays of any dtype -> HxWx3 float32 in [0, 1]."""
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / (65535.0 if a.max(initial=0) > 255 else 255.0)
    else:
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ImageError("The image contains NaN or infinite values: valid images hold finite "
                             "values in [0, 1] (or 0-255).")
        if a.min(initial=0) < -RANGE_SLACK or a.max(initial=0) > 255:
            raise ImageError(f"The image has values from {a.min():.4g} to {a.max():.4g}; valid "
                             f"float images hold values in [0, 1] (or 0-255).")
        if a.max(initial=0) > 1.0 + RANGE_SLACK:  # float photos stored 0..255
            a = a / 255.0
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ImageError(f"Expected an HxW, HxWx3 or HxWx4 image, got shape {a.shape}.")
    if a.shape[-1] == 4:  # composite RGBA on white
        a = a[..., :3] * a[..., 3:] + (1 - a[..., 3:])
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.clip(a, 0.0, 1.0)


def _open(source):
    """A PIL image or an array from a path, URL, bytes or sample name."""
    if isinstance(source, (np.ndarray, Image.Image)):
        return source
    if isinstance(source, bytes):
        fp = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        s = str(source)
        if s in SAMPLES:
            return SAMPLES[s]()
        if s.startswith(("http://", "https://")):
            try:
                with urllib.request.urlopen(s, timeout=10) as r:
                    fp = io.BytesIO(r.read())
            except OSError as err:
                raise ImageError(f"Cannot download {s} ({err}); offline, use a file or a sample: "
                                 f"{', '.join(SAMPLES)}.") from None
        elif os.path.exists(s):
            fp = s
        else:
            raise ImageError(f"No such file or sample: {s!r}. Samples: {', '.join(SAMPLES)}.")
    else:
        raise ImageError(f"Cannot read an image from a {type(source).__name__}.")
    try:
        img = Image.open(fp)
        img.draft("RGB", (4096, 4096))  # JPEG: decode huge photos at a reduced scale
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageError(f"{source if not isinstance(source, bytes) else 'bytes'} is not an image "
                         f"PIL can read (JPEG, PNG, GIF, BMP, TIFF, WebP): {err}") from None
    return img


def _pil_to_array(img):
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(img, dtype=np.float32) / (65535.0 if np.asarray(img).max() > 255 else 255.0)
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    if img.mode == "LA":
        img = img.convert("RGBA")
    return np.asarray(img)


def _shrink(img, min_side):
    """Box-reduce a huge photo by a whole factor while its short side stays >= ``min_side``.

    Converting a 100-megapixel photo to floats first would need gigabytes; the
    antialiased resize that follows is unchanged in effect.
    """
    factor = min(img.size) // min_side
    if factor < 2:
        return img
    if img.mode.startswith("I;16"):
        img = img.convert("I")  # 16-bit: reduce works on 32-bit integers, values unchanged
    elif img.mode in ("P", "1"):
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    return img.reduce(factor)


def center_crop_resize(image, size):
    """(3, H, W) -> (3, size, size): crop the central square, resize with antialiasing."""
    _, h, w = image.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return resize(image[:, top:top + s, left:left + s], size).clamp(0, 1)


def as_batch(image, device=None, min_size=1, name="image"):
    """An image or a batch as an (N, 3, H, W) float32 tensor, detached, on ``device``.

    The one check of images handed to helpers: shape, size, finite values in [0, 1].

    Args:
        image: (3, H, W) or (N, 3, H, W) tensor or array in [0, 1].
        device: where the batch goes (None: where it is).
        min_size: the smallest height and width accepted (a network's smallest input,
            ``helpers.models.min_input_size``).
        name: what the image is called in error messages (``"content"``, ``"style"``...).
    Raises:
        TypeError: not a tensor or an array (load files and names with ``load_image``).
        ValueError: any other shape, an empty or too small image, NaN or infinite values,
            values outside [0, 1] (a 0-255 photo, a normalized tensor); the message says
            what is valid.
    """
    if not isinstance(image, (torch.Tensor, np.ndarray)):
        raise TypeError(f"Expected the {name} as a tensor of shape (3, H, W) in [0, 1], got a "
                        f"{type(image).__name__} (use helpers.load_image).")
    batch = torch.as_tensor(image).detach()
    shape = tuple(batch.shape)
    if batch.dim() == 3:
        batch = batch[None]
    if batch.dim() != 4 or batch.shape[1] != 3:
        raise ValueError(f"Expected the {name} of shape (3, H, W) or (N, 3, H, W) in [0, 1], got "
                         f"shape {shape}.")
    if batch.is_complex():
        raise ValueError(f"Expected the {name} as real values in [0, 1], got complex values.")
    check_image_size(batch.shape[-2:], min_size, name)
    batch = batch.to(dtype=torch.float32)
    if batch.device.type != "meta":  # shapes only: nothing to read
        check_values(batch, name)
    return batch.to(device=device)


def _is(name, one="is", many="are"):
    return many if name.endswith("s") else one


def check_image_size(hw, min_size=1, name="image"):
    """Raise a clear ValueError when an (H, W) image is empty or smaller than ``min_size``."""
    h, w = (int(s) for s in hw)
    if h < 1 or w < 1:
        raise ValueError(f"The {name} {_is(name)} empty ({h}x{w} pixels): an image needs at least "
                         f"{max(min_size, 1)}x{max(min_size, 1)} pixels.")
    if min(h, w) < min_size:
        raise ValueError(f"The {name} {_is(name)} {h}x{w} pixels, too small for this network: it "
                         f"takes images of at least {min_size}x{min_size} pixels (resize it, e.g. "
                         f"helpers.resize(image, {max(min_size, 224)})).")


def check_values(batch, name="image"):
    """Raise a clear ValueError for NaN/infinite values or values outside [0, 1]."""
    if batch.numel() == 0:
        raise ValueError(f"The {name} {_is(name, 'has', 'have')} no images (shape "
                         f"{tuple(batch.shape)}).")
    finite = torch.isfinite(batch)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"The {name} {_is(name, 'contains', 'contain')} {bad} NaN or infinite "
                         f"value(s): valid images hold finite values in [0, 1].")
    lo, hi = float(batch.min()), float(batch.max())
    if lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
        hint = (" It looks like a 0-255 photo: divide by 255 or use helpers.load_image."
                if lo >= 0 and hi <= 255 else
                " Pass the photo itself (helpers.load_image), not a normalized tensor: the "
                "models normalize inside." if lo < 0 else "")
        raise ValueError(f"The {name} {_is(name, 'has', 'have')} values from {lo:.4g} to "
                         f"{hi:.4g}; valid images hold values in [0, 1].{hint}")


def resize(image, size):
    """(N, C, h, w) or (C, h, w) -> the same with side ``size`` or (H, W), antialiased bilinear.

    Bilinear weights are positive, so values stay in the input's range: images stay in
    [0, 1] and signed maps (a dream's added detail) keep their sign.
    """
    size = check_size(size)
    h, w = (size, size) if isinstance(size, int) else size
    if tuple(image.shape[-2:]) == (h, w):
        return image
    batch = image if image.dim() == 4 else image[None]
    out = torch.nn.functional.interpolate(batch, size=(h, w), mode="bilinear", antialias=True,
                                          align_corners=False)
    return out if image.dim() == 4 else out[0]


def load_image(source, size=224):
    """A photo as a (3, size, size) float tensor in [0, 1] (centre square crop).

    Args:
        source: path, URL, bytes, PIL image, array, or a name in ``SAMPLES``.
        size: output side in pixels; ``None`` keeps the original size and aspect.
    """
    if isinstance(size, (tuple, list)):
        raise ValueError(f"size must be one whole number of pixels >= 1 (a square crop) or None, "
                         f"got {size!r}.")
    check_size(size, allow_none=True)
    img = _open(source)
    if isinstance(img, Image.Image) and size is not None:
        img = _shrink(img, 2 * size)
    array = _pil_to_array(img) if isinstance(img, Image.Image) else img
    tensor = torch.from_numpy(np.ascontiguousarray(_to_float(array))).permute(2, 0, 1)
    check_image_size(tensor.shape[-2:])
    return tensor if size is None else center_crop_resize(tensor, size)


def to_numpy(image):
    """(3, H, W) or (1, 3, H, W) tensor -> (H, W, 3) float array in [0, 1], for imshow."""
    image = image.detach().float().cpu()
    if image.dim() == 4:
        image = image[0]
    return image.clamp(0, 1).permute(1, 2, 0).numpy()


def save_image(image, path):
    """Write a (3, H, W) tensor in [0, 1] as PNG/JPEG."""
    Image.fromarray((to_numpy(image) * 255).round().astype(np.uint8)).save(path)
