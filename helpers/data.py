"""Small labelled image sets to explore, and one feature vector per image, cached on disk.

Offline (always works, the default): ``photos``, crops of the photos that ship
with scikit-image and scikit-learn, labelled by the photo they come from, and
``digits``, scikit-learn's 8x8 handwritten digits. Online: torchvision's
Imagenette (160 px) and CIFAR-10, downloaded once into ``helpers.cache.data_dir()``. Beside the
repository: ``imagenet_samples``, labelled ImageNet photos for accuracy checks.
``extract_features`` turns a set into vectors (``helpers.cache`` keeps them).
"""
import contextlib
import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import hooks
from .cache import cached, data_dir, model_identity, tensor_bytes, transform_identity
from .device import cpu_threads, model_device
from .checks import check_count, check_size
from .images import as_batch, center_crop_resize, load_image, resize

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "shared" / "imagenet-samples"
DATASETS = ["photos", "digits", "imagenette", "cifar10"]
OFFLINE_DATASETS = ["photos", "digits"]
# Six photos and five textures/scenes: every class is one source picture.
PHOTO_SOURCES = ["chelsea", "coffee", "astronaut", "rocket", "china", "flower", "camera", "hubble",
                 "brick", "grass", "gravel"]


class DatasetUnavailable(RuntimeError):
    """An online data set that is neither on disk nor downloadable right now."""


@dataclass
class ImageSet:
    """Images with integer labels.

    Attributes:
        images: (N, 3, S, S) float32 in [0, 1].
        labels: (N,) int64, indices into ``classes``.
        classes: class names.
        name: short name (``"photos"``, ``"digits"``...).
        description: what the set is, in one paragraph.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list
    name: str
    description: str = ""
    params: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])

    def __repr__(self):
        n, _, h, w = self.images.shape
        return f"ImageSet({self.name!r}, {n} images of {h}x{w}, {len(self.classes)} classes)"

    def fingerprint(self):
        """A hash of the content (pixels, labels, class names): any change gives a new value."""
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps([self.name, list(map(str, self.classes)), list(self.images.shape)]).encode())
        h.update(tensor_bytes(self.images))
        h.update(tensor_bytes(self.labels))
        return h.hexdigest()

    def subset(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx], self.classes, self.name, self.description,
                        dict(self.params, subset=len(idx)))


# --------------------------------------------------------------------------- offline sets

def _jitter(img, gen):
    """Colour jitter of one (3, H, W) image: brightness, contrast, saturation, hue, sometimes grey."""
    import torchvision.transforms.v2.functional as TF
    u = lambda lo, hi: float(lo + (hi - lo) * torch.rand((), generator=gen))
    img = TF.adjust_brightness(img, u(0.6, 1.4))
    img = TF.adjust_contrast(img, u(0.6, 1.4))
    img = TF.adjust_saturation(img, u(0.4, 1.6))
    img = TF.adjust_hue(img, u(-0.08, 0.08))
    if torch.rand((), generator=gen) < 0.15:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    # Grey sources get a random tint so colour alone does not give their label away.
    tint = 1 + 0.25 * (torch.rand(3, 1, 1, generator=gen) - 0.5)
    return (img * tint).clamp(0, 1)


def _crops(photo, label, n, size, scale, gen, images, labels):
    _, h, w = photo.shape
    for _ in range(n):
        side = int(min(h, w) * (scale[0] + (scale[1] - scale[0]) * torch.rand((), generator=gen)))
        top = int(torch.randint(0, h - side + 1, (), generator=gen))
        left = int(torch.randint(0, w - side + 1, (), generator=gen))
        crop = center_crop_resize(photo[:, top:top + side, left:left + side], size)
        if torch.rand((), generator=gen) < 0.5:
            crop = crop.flip(-1)
        images.append(_jitter(crop, gen))
        labels.append(label)


def photos(n_per_class=30, size=128, sources=None, scale=(0.25, 0.8), seed=0):
    """Random crops of the bundled photos, labelled by source photo.

    Each image is a square crop whose side is a random fraction ``scale`` of the
    photo's shorter side, at a random place, resized to ``size``, flipped
    left-right with probability 1/2, then colour-jittered (brightness and
    contrast 0.6-1.4, saturation 0.4-1.6, hue +-0.08, grey 15% of the time, a
    +-12% per-channel tint). Crops of one photo share content but rarely pixels,
    so pixel-space neighbours are a weak guide to the label.

    Args:
        n_per_class: crops per photo.
        size: output side in pixels.
        sources: photo names from ``helpers.SAMPLES`` (default ``PHOTO_SOURCES``, 11 classes).
    Returns:
        ``ImageSet`` of ``n_per_class * len(sources)`` images (N, 3, size, size).
    """
    sources = list(sources or PHOTO_SOURCES)
    if n_per_class < 1 or size < 8:
        raise ValueError(f"n_per_class must be >= 1 and size >= 8, got {n_per_class} and {size}.")
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"scale must satisfy 0 < lo <= hi <= 1, got {scale}.")
    gen = torch.Generator().manual_seed(seed)
    images, labels = [], []
    with cpu_threads(1):  # hundreds of tiny ops: threads only add overhead
        for label, name in enumerate(sources):
            _crops(load_image(name, size=None), label, n_per_class, size, scale, gen, images, labels)
    desc = (f"{len(images)} random crops ({scale[0]:.0%}-{scale[1]:.0%} of the shorter side, "
            f"resized to {size} px, flipped, colour-jittered) of {len(sources)} photos bundled "
            f"with scikit-image/scikit-learn; the label is the source photo.")
    return ImageSet(torch.stack(images).float(), torch.tensor(labels), sources, "photos", desc,
                    dict(n_per_class=n_per_class, size=size, scale=list(scale), seed=seed))


def digits(n=None, size=32, seed=0):
    """scikit-learn's handwritten digits (1797 images, 8x8, 16 grey levels) as RGB tensors.

    Args:
        n: a random, class-balanced-in-expectation subset of this size (None: all).
        size: upsampled side (bilinear) so CNN layers have room to work.
    Returns:
        ``ImageSet`` (N, 3, size, size) in [0, 1], white digits on black, labels 0-9.
    """
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    if n is not None:
        idx = _subset_indices(y, n, seed)
        x, y = x[idx], y[idx]
    x = resize(x, size).clamp(0, 1)
    desc = (f"{len(x)} handwritten digits from scikit-learn (UCI optdigits, 8x8, 16 grey levels), "
            f"upsampled to {size} px and repeated to 3 channels; the label is the digit.")
    return ImageSet(x.repeat(1, 3, 1, 1), y, [str(i) for i in range(10)], "digits", desc,
                    dict(n=n, size=size, seed=seed))


def _subset_indices(labels, n, seed):
    """``n`` indices, as equal per class as possible, in a fixed random order."""
    labels = torch.as_tensor(labels)
    if not 1 <= n <= len(labels):
        raise ValueError(f"Subset size must be in 1..{len(labels)}, got {n}.")
    gen = torch.Generator().manual_seed(seed)
    per_class = [torch.nonzero(labels == c).flatten() for c in labels.unique()]
    per_class = [p[torch.randperm(len(p), generator=gen)] for p in per_class]
    order = [int(i) for rank in range(max(map(len, per_class))) for p in per_class if rank < len(p)
             for i in [p[rank]]]
    return torch.tensor(sorted(order[:n]))


# --------------------------------------------------------------------------- online sets

def _online(url):
    from .models import online  # the one reachability check; torchvision loads only when needed
    return online(url)


def imagenette(n=500, size=128, root=None, split="val", seed=0, download=True):
    """A subset of Imagenette (10 easy ImageNet classes), the 160 px version.

    Downloaded once (94 MB, with a progress bar and an MD5 check by torchvision)
    into ``root`` (default ``helpers.cache.data_dir()``); later calls read the files on disk.

    Args:
        n: images to keep (a class-balanced random subset).
        size: centre square crop resized to this side.
    Raises:
        DatasetUnavailable: not on disk and no network.
    """
    from torchvision.datasets import Imagenette
    url = Imagenette._ARCHIVES["160px"][0]
    root = Path(root) if root is not None else data_dir()
    on_disk = (Path(root) / Path(url).stem / split).exists()
    if not on_disk and not (download and _online(url)):
        raise DatasetUnavailable(
            f"Imagenette is not in {root} and cannot be downloaded (offline). "
            f"Offline sets: {', '.join(OFFLINE_DATASETS)}.")
    try:
        ds = Imagenette(str(root), split=split, size="160px", download=not on_disk)
    except (OSError, RuntimeError) as err:
        raise DatasetUnavailable(f"Imagenette could not be loaded from {root}: {err}") from None
    labels = torch.tensor([label for _, label in ds._samples])
    idx = _subset_indices(labels, min(n, len(labels)), seed)
    images = torch.stack([load_image(ds._samples[i][0], size=size) for i in idx.tolist()])
    classes = [c[0] for c in ds.classes]
    desc = f"{len(idx)} images of Imagenette ({split}, 160 px version) centre-cropped to {size} px."
    return ImageSet(images, labels[idx], classes, "imagenette", desc,
                    dict(n=n, size=size, split=split, seed=seed))


def cifar10(n=500, size=64, root=None, train=False, seed=0, download=True):
    """A subset of CIFAR-10 (32x32 photos, 10 classes), upsampled to ``size``.

    Raises:
        DatasetUnavailable: not on disk and no network.
    """
    from torchvision.datasets import CIFAR10
    root = Path(root) if root is not None else data_dir()
    folder = root / CIFAR10.base_folder
    if not folder.exists() and not (download and _online(CIFAR10.url)):
        raise DatasetUnavailable(
            f"CIFAR-10 is not in {root} and cannot be downloaded (offline). "
            f"Offline sets: {', '.join(OFFLINE_DATASETS)}.")
    try:
        ds = CIFAR10(str(root), train=train, download=not folder.exists())
    except (OSError, RuntimeError) as err:
        raise DatasetUnavailable(f"CIFAR-10 could not be loaded from {root}: {err}") from None
    labels = torch.tensor(ds.targets)
    idx = _subset_indices(labels, min(n, len(labels)), seed)
    x = torch.from_numpy(ds.data[idx.numpy()]).permute(0, 3, 1, 2).float() / 255
    x = resize(x, size).clamp(0, 1)
    desc = f"{len(idx)} CIFAR-10 {'train' if train else 'test'} images upsampled to {size} px."
    return ImageSet(x, labels[idx], list(ds.classes), "cifar10", desc,
                    dict(n=n, size=size, train=train, seed=seed))


_LOADERS = {"photos": photos, "digits": digits, "imagenette": imagenette, "cifar10": cifar10}


def load_dataset(name="photos", fallback=False, **kwargs):
    """One of ``DATASETS`` as an ``ImageSet``; keyword arguments go to its loader.

    Args:
        name: ``"photos"`` (offline default), ``"digits"`` (offline), ``"imagenette"``, ``"cifar10"``.
        fallback: when an online set is unavailable, warn and return ``photos()`` instead of raising.
    """
    if name not in _LOADERS:
        raise ValueError(f"Unknown data set {name!r}. Choose one of: {', '.join(DATASETS)}.")
    try:
        return _LOADERS[name](**kwargs)
    except DatasetUnavailable as err:
        if not fallback:
            raise
        warnings.warn(f"{err} Using the offline 'photos' set instead.", stacklevel=2)
        return photos()


def imagenet_samples(folder=SAMPLES_DIR, size=224, limit=None):
    """The shared labelled ImageNet photos ``NNN_WNID_name.jpg`` (NNN = class index).

    Returns:
        ``(images (N, 3, size, size) in [0, 1], labels (N,) int64, names)``.
    Raises:
        FileNotFoundError: the folder is absent (it lives beside the repository).
    """
    files = sorted(Path(folder).glob("*.jpg")) if Path(folder).is_dir() else []
    if not files:
        raise FileNotFoundError(f"No ImageNet sample photos in {folder}.")
    files = files[:limit]
    labels = [int(re.match(r"(\d+)_", f.name).group(1)) for f in files]
    images = torch.stack([load_image(f, size) for f in files])
    return images, torch.tensor(labels), [f.stem.split("_", 2)[-1] for f in files]


# --------------------------------------------------------------------------- features

def _reduce(out, reduce):
    if out.dim() == 2 or reduce == "flatten":
        return out.flatten(1)
    if reduce == "avg":
        return out.mean(dim=(-2, -1))
    return out.amax(dim=(-2, -1))


def layer_outputs(model, layer, images, batch_size=8, fn=None, progress=True, desc=None):
    """Apply ``fn`` to ``layer``'s output for every batch of ``images`` and concatenate.

    Runs under ``torch.inference_mode`` in channels-last batches (the faster memory
    order for CPU convolutions), stops each forward pass once every requested layer
    has run (``hooks.record(stop=True)``), and
    keeps only ``fn``'s (small) results, so memory stays bounded by one batch.

    Args:
        layer: a module name, or a list of names served by the same forward passes.
        images: (N, 3, H, W) in [0, 1], any device (or anything sliceable into such batches).
        fn: (B, ...) layer output -> tensor or tuple of tensors (default: flatten).
    Returns:
        tensor or tuple of tensors on the CPU, concatenated along the first dimension;
        for a list of layers, a dict from layer name to that.
    """
    from tqdm.auto import tqdm
    names = [layer] if isinstance(layer, str) else list(layer)
    fn = fn or (lambda out: out.flatten(1))
    dev = model_device(model)
    chunks = {name: [] for name in names}
    threads = cpu_threads() if dev.type == "cpu" else contextlib.nullcontext()
    with hooks.record(model, names, stop=True) as rec, threads, torch.inference_mode():
        for start in tqdm(range(0, len(images), batch_size), desc=desc or f"{layer} features",
                          disable=not progress, leave=False):
            x = images[start:start + batch_size].to(dev)
            rec.run(x.contiguous(memory_format=torch.channels_last))
            for name in names:
                res = fn(rec[name])
                res = res if isinstance(res, tuple) else (res,)
                chunks[name].append(tuple(r.float().cpu() if r.is_floating_point() else r.cpu()
                                          for r in res))
            rec.activations.clear()  # free the batch's activations before the next one
    result = {}
    for name in names:
        out = tuple(torch.cat(parts) for parts in zip(*chunks[name]))
        result[name] = out if len(out) > 1 else out[0]
    return result[layer] if isinstance(layer, str) else result


def extract_features(model, data, layer="pool", reduce="avg", size=None, transform=None,
                     batch_size=8, cache=True, cache_dir=None, progress=True):
    """One feature vector per image of ``data`` at ``layer``, cached on disk.

    The cache key hashes the model's name and weights, the layer, the reduction,
    the data's content (every pixel and label), the input size and the transform,
    so re-running a cell is instant and changed inputs are always recomputed.

    Args:
        data: ``ImageSet`` or (N, 3, H, W) tensor in [0, 1].
        layer: module name; ``"pool"`` is the offline model's 1280-d penultimate layer.
        reduce: how a (C, H, W) output becomes a vector: ``"avg"`` (global average,
            C numbers), ``"max"``, or ``"flatten"`` (C*H*W numbers).
        size: resize images to ``size`` x ``size`` before the model (None: as they are).
        transform: extra callable applied to each batch; it is cached only when it has a
            stable ``repr`` (or a ``cache_key`` attribute) and is not random.
        cache: False recomputes and stores nothing.
    Returns:
        (N, D) float32 CPU tensor.
    """
    if reduce not in ("avg", "max", "flatten"):
        raise ValueError(f"reduce must be 'avg', 'max' or 'flatten', got {reduce!r}.")
    hooks.get_layer(model, layer)  # a clear error before any heavy work
    images = as_batch(data.images if isinstance(data, ImageSet) else data, name="images")
    check_size(size, allow_none=True)
    check_count(batch_size, "batch_size")

    def resized(x):
        if size is None:
            return x
        return resize(x.float(), size)

    def prepared(start_stop):
        x = resized(images[start_stop])
        return transform(x) if transform is not None else x

    tkey = transform_identity(transform, probe=resized(images[:2])) if cache else None
    fields = None
    if tkey is not None:
        content = data.fingerprint() if isinstance(data, ImageSet) else \
            ImageSet(images, torch.zeros(0, dtype=torch.long), [], "tensor").fingerprint()
        fields = dict(kind="features", model=model_identity(model), layer=layer, reduce=reduce,
                      data=content, size=size, transform=tkey)

    def compute():
        return {"features": layer_outputs(model, layer, _Batches(images, prepared), batch_size,
                                          fn=lambda out: _reduce(out, reduce), progress=progress)}
    return cached(fields, compute, cache_dir if cache else False, prefix="features")["features"]


class _Batches:
    """Sliceable view that prepares each batch on demand (resize, transform)."""

    def __init__(self, images, prepare):
        self.images, self.prepare = images, prepare

    def __len__(self):
        return len(self.images)

    def __getitem__(self, s):
        return self.prepare(s)


__all__ = [
    "DATASETS",
    "OFFLINE_DATASETS",
    "PHOTO_SOURCES",
    "DatasetUnavailable",
    "ImageSet",
    "cifar10",
    "digits",
    "extract_features",
    "imagenet_samples",
    "imagenette",
    "layer_outputs",
    "load_dataset",
    "photos",
]
