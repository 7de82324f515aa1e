"""Style images: offline ones from the installed packages, public-domain paintings when online,
and checked uploads.

Offline styles need nothing but scikit-image: ``hubble`` (Hubble deep field),
``colorwheel``, ``stain`` (immunohistochemistry stain, purple and brown),
``brick``/``gravel``/``grass`` (grayscale textures), and a procedural one:
``stained_glass`` (superpixels of a photo with dark lead lines, strong flat
colours and edges; the default offline style).
Paintings are downloaded once into ``paintings`` of ``helpers.cache.data_dir()`` with a
progress bar and a SHA-256 check; offline, ``load_style`` raises ``StyleUnavailable`` with one
message, or (``fallback=True``) warns and returns an offline style.
"""
import hashlib
import json
import os
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import numpy as np

from .cache import data_dir
from .images import ImageError, load_image
from .models import online  # one reachability check for every download

MAX_UPLOAD_BYTES = 8 * 1024 * 1024       # FileUpload: larger files are refused
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
UPLOAD_TYPES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")


class StyleUnavailable(RuntimeError):
    """A painting that is neither cached on disk (``data_dir()/paintings``) nor downloadable now."""


def _skimage(name):
    import skimage.data
    return getattr(skimage.data, name)()


def stained_glass(source="astronaut", segments=120, seed=0):
    """A procedural style image: SLIC superpixels filled with their mean colour, dark borders.

    Returns:
        (H, W, 3) float array in [0, 1].
    """
    from skimage.morphology import dilation, disk
    from skimage.segmentation import find_boundaries, slic
    img = load_image(source, size=None).permute(1, 2, 0).numpy()
    labels = slic(img, n_segments=segments, compactness=12, start_label=0)
    out = np.zeros_like(img)
    for k in range(labels.max() + 1):
        mask = labels == k
        if mask.any():
            out[mask] = img[mask].mean(0)
    # Boost saturation so the colours read as glass, not as a blurred photo.
    grey = out.mean(-1, keepdims=True)
    out = np.clip(grey + 1.6 * (out - grey), 0, 1)
    lead = dilation(find_boundaries(labels), disk(2))
    out[lead] = 0.08
    return out


OFFLINE = {
    "stained_glass": stained_glass,
    "hubble": lambda: _skimage("hubble_deep_field"),
    "stain": lambda: _skimage("immunohistochemistry"),
    "colorwheel": lambda: _skimage("colorwheel"),
    "brick": lambda: _skimage("brick"),
    "gravel": lambda: _skimage("gravel"),
    "grass": lambda: _skimage("grass"),
}

# Public-domain paintings (Wikimedia Commons; the Kandinsky copy is the one TensorFlow's
# tutorial uses). ``sha256`` None: not pinned yet -- the first download records its hash in
# data/paintings/checksums.json and later loads are verified against it.
PAINTINGS = {
    "starry_night": {
        "url": "https://upload.wikimedia.org/wikipedia/commons/thumb/e/ea/"
               "Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg/"
               "1024px-Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg",
        "sha256": None, "credit": "Vincent van Gogh, The Starry Night (1889)"},
    "great_wave": {
        "url": "https://upload.wikimedia.org/wikipedia/commons/0/0a/"
               "The_Great_Wave_off_Kanagawa.jpg",
        "sha256": None, "credit": "Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831)"},
    "composition_7": {
        "url": "https://storage.googleapis.com/download.tensorflow.org/example_images/"
               "Vassily_Kandinsky%2C_1913_-_Composition_7.jpg",
        "sha256": None, "credit": "Wassily Kandinsky, Composition VII (1913)"},
}

STYLES = list(OFFLINE) + list(PAINTINGS)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _known_hashes(folder):
    path = Path(folder) / "checksums.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _download(url, path, progress=True):
    """Stream ``url`` to ``path`` (via a .part file) with a tqdm bar; refuse huge files."""
    from tqdm.auto import tqdm
    tmp = Path(str(path) + ".part")
    req = urllib.request.Request(url, headers={"User-Agent": "cnn-insight-course/0.1"})
    with urllib.request.urlopen(req, timeout=20) as r, open(tmp, "wb") as f, \
            tqdm(total=int(r.headers.get("Content-Length") or 0) or None, unit="B",
                 unit_scale=True, desc=Path(path).name, disable=not progress) as bar:
        done = 0
        for chunk in iter(lambda: r.read(1 << 16), b""):
            done += len(chunk)
            if done > MAX_DOWNLOAD_BYTES:
                raise ImageError(f"{url} is larger than {MAX_DOWNLOAD_BYTES >> 20} MB; refused.")
            f.write(chunk)
            bar.update(len(chunk))
    tmp.replace(path)


def painting_path(name, folder=None, progress=True):
    """Local path of a painting in ``PAINTINGS``: cached, or downloaded now and checked.

    Raises:
        StyleUnavailable: not cached and offline (or the download failed).
        ImageError: the file's SHA-256 does not match the pinned or first-seen hash.
    """
    if name not in PAINTINGS:
        raise ValueError(f"Unknown painting {name!r}. Choose one of: {', '.join(PAINTINGS)}.")
    info, folder = PAINTINGS[name], Path(folder) if folder is not None else data_dir() / "paintings"
    path = folder / f"{name}{Path(urllib.parse.urlparse(info['url']).path).suffix or '.jpg'}"
    if not path.exists():
        if not online(info["url"]):
            raise StyleUnavailable(
                f"The painting {name!r} is not in {folder} and cannot be downloaded (offline). "
                f"Offline styles: {', '.join(OFFLINE)}.")
        folder.mkdir(parents=True, exist_ok=True)
        try:
            _download(info["url"], path, progress)
        except OSError as err:
            raise StyleUnavailable(f"Downloading {name!r} from {info['url']} failed ({err}). "
                                   f"Offline styles: {', '.join(OFFLINE)}.") from None
    known = _known_hashes(folder)
    expected = info["sha256"] or known.get(name)
    digest = _sha256(path)
    if expected is None:
        known[name] = digest  # first download: remember it, verify from now on
        (folder / "checksums.json").write_text(json.dumps(known, indent=1))
    elif digest != expected:
        path.unlink()
        raise ImageError(f"{path.name}: SHA-256 {digest[:12]}... does not match the expected "
                         f"{expected[:12]}...; the file was removed, try again.")
    return path


def load_style(name, size=None, fallback=False, folder=None, progress=True):
    """A style image as a (3, H, W) tensor in [0, 1] (square ``size`` if given).

    Args:
        name: one of ``OFFLINE`` or ``PAINTINGS`` (see ``STYLES``), or anything
            ``helpers.load_image`` reads (path, URL, array, sample name).
        fallback: when a painting is unavailable offline, warn and return ``stained_glass``.
    """
    if name in OFFLINE:
        return load_image(OFFLINE[name](), size)
    if name in PAINTINGS:
        try:
            return load_image(str(painting_path(name, folder, progress)), size)
        except StyleUnavailable as err:
            if not fallback:
                raise
            warnings.warn(f"{err} Using 'stained_glass' instead.", stacklevel=2)
            return load_image(OFFLINE["stained_glass"](), size)
    return load_image(name, size)


def read_upload(value, size=None, max_bytes=MAX_UPLOAD_BYTES):
    """The image from an ``ipywidgets.FileUpload`` value, checked, as (3, H, W) in [0, 1].

    Accepts the widget's ``value`` (a tuple of dicts with ``name`` and ``content``), one
    such dict, or raw bytes. Refuses files over ``max_bytes``, names that are not images
    and contents PIL cannot decode, with a ``ImageError`` that says why.
    """
    if isinstance(value, (tuple, list)):
        if not value:
            raise ImageError("No file uploaded yet.")
        value = value[-1]
    if isinstance(value, dict):
        name, content = str(value.get("name", "upload")), value.get("content", b"")
    else:
        name, content = "upload", value
    content = bytes(content.tobytes() if hasattr(content, "tobytes") else content)
    if not content:
        raise ImageError(f"{name}: the file is empty.")
    if len(content) > max_bytes:
        raise ImageError(f"{name}: {len(content) / 2**20:.1f} MB is over the "
                         f"{max_bytes / 2**20:.0f} MB limit; upload a smaller image.")
    if name != "upload" and os.path.splitext(name)[1].lower() not in UPLOAD_TYPES:
        raise ImageError(f"{name}: not an image file; allowed: {', '.join(UPLOAD_TYPES)}.")
    try:
        return load_image(content, size)
    except ImageError as err:  # say which file: the message names only "bytes"
        raise ImageError(f"{name}: {err}") from None


def upload_widget(description="your image"):
    """A FileUpload that accepts one image (the browser filters by type; ``read_upload`` checks)."""
    import ipywidgets as W
    return W.FileUpload(accept=",".join(UPLOAD_TYPES), multiple=False, description=description)


def upload_box(picker, store, size=512, description="your image"):
    """A FileUpload beside a message line; a valid upload becomes a new option of ``picker``.

    The checked image ((3, size, size) in [0, 1]) goes into ``store`` under a new name
    (``"upload 1"``, ``"upload 2"``...) that is added to the dropdown ``picker`` and selected,
    so a panel's function still takes a hashable name (and caches by it). A refused file
    only shows the reason.
    """
    import html

    import ipywidgets as W
    up, msg = upload_widget(description), W.HTML()

    def on_upload(change):
        try:
            image = read_upload(change["new"], size=size)
        except ImageError as err:
            msg.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            return
        key = f"upload {len(store) + 1}"
        store[key] = image
        msg.value = f"loaded as <b>{key}</b>"
        picker.options = list(picker.options) + [key]
        picker.value = key
    up.observe(on_upload, names="value")
    return W.VBox([up, msg])


__all__ = [
    "OFFLINE",
    "PAINTINGS",
    "STYLES",
    "StyleUnavailable",
    "load_style",
    "painting_path",
    "read_upload",
    "stained_glass",
    "upload_box",
    "upload_widget",
]
