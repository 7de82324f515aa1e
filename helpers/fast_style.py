"""Fast style transfer: train a feed-forward network with perceptual losses, stylize in one pass.

Johnson et al. (ECCV 2016) train ``TransformerNet`` f_W on many photos c to minimise the
same losses that Gatys et al. minimise per image (``helpers.style``):
``lambda_c d(f_W(c), c) + lambda_s sum_l w_l E_l(f_W(c), s) + lambda_tv TV(f_W(c))``.
Dumoulin et al. (ICLR 2017) train one network for N styles at once: each photo of a batch
gets a style, and only that style's (gamma, beta) rows learn from it. ``train`` does both
(one style is N = 1).
"""
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .device import cpu_threads, model_device
from .hooks import activations, record
from .images import as_batch, center_crop_resize, resize
from .inversion import feature_distance
from .objectives import tv
from .optimize import channels_last
from .style import preset, scale_style, style_loss, style_targets
from .transformer_net import TransformerNet, mix_weights, with_styles

WEIGHTS = Path(__file__).parent / "weights" / "fast_style.pt"
# The course's public-domain paintings sit beside the repository (never inside it).
SHARED_PAINTINGS = Path(__file__).resolve().parents[2] / "shared" / "paintings"
# The training settings of the shipped weights (scripts/train_fast_style.py) and defaults.
STYLE_WEIGHT, CONTENT_WEIGHT, TV_WEIGHT = 1.0, 1.0, 1.0


@dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
        net: the trained ``TransformerNet`` (eval mode).
        history: ``{"total", "content", "style", "tv"}`` -> one float per step (batch means).
        steps: steps run; seconds: wall time; interrupted: stopped by KeyboardInterrupt.
    """
    net: TransformerNet
    history: dict = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    interrupted: bool = False


def _as_images(images, name):
    if isinstance(images, torch.Tensor):
        images = list(images) if images.dim() == 4 else [images]
    images = [as_batch(im)[0].float().cpu() for im in images]
    if not images:
        raise ValueError(f"Need at least one {name} image.")
    return images


def crops_source(contents, size):
    """Content photos as an (M, 3, S, S) tensor, S = 5/4 ``size``, for random ``size`` crops."""
    side = max(size, round(size * 1.25))
    return torch.stack([center_crop_resize(c, side) for c in _as_images(contents, "content")])


def loss_terms(model, styles, size, style_scale=1.0):
    """Layers and per-style Gram targets of the perceptual losses, from ``style.preset``.

    Returns:
        ``(content_layer, {layer: w_l}, {layer: (S, C, C) Gram targets})`` with the styles
        (``(3, h, w)`` images) scaled to ``style_scale * size`` pixels as in ``style_transfer``.
    """
    p = preset(model)
    layers = p["style"]
    dev = model_device(model)
    grams = [style_targets(model, scale_style(s, style_scale * size).to(dev), layers, p["smooth"])
             for s in _as_images(styles, "style")]
    return p["content"], layers, {k: torch.cat([g[k] for g in grams]) for k in layers}


def perceptual_loss(model, output, content, targets, style_index, content_layer, layers,
                    style_weight=STYLE_WEIGHT, content_weight=CONTENT_WEIGHT,
                    tv_weight=TV_WEIGHT):
    """The loss of Johnson et al. for a batch, from ``helpers.style``'s objectives.

    Args:
        output: (N, 3, H, W) network output (with graph); content: (N, 3, H, W) photos.
        targets: ``{layer: (S, C, C)}`` Gram matrices; style_index: (N,) style of each image.
    Returns:
        ``(total, {"content", "style", "tv"} -> 0-dim tensors)``.
    """
    dev = model_device(model)
    smooth = preset(model)["smooth"]
    phi_c = activations(model, content.to(dev), [content_layer])[content_layer]
    # feature_distance divides by the whole batch's ||phi(c)||^2 and averages over it:
    # times N it is the batch's relative distance, one photo's d(x, c) for N = 1.
    content_obj = feature_distance(content_layer, phi_c, smooth) * len(output)
    style_obj = style_loss({k: g[style_index] for k, g in targets.items()}, layers, smooth)
    tv_obj = tv(tv_weight)
    image = channels_last(output.to(dev))
    with record(model, sorted({content_layer, *layers}), stop=True) as rec:
        rec.run(image)
    terms = {"content": content_obj(rec, image), "style": style_obj(rec, image),
             "tv": tv_obj(rec, image)}
    total = content_weight * terms["content"] + style_weight * terms["style"] + terms["tv"]
    return total, terms


def train(model, contents, styles, names=None, net=None, steps=400, batch=4, size=128,
          lr=2e-3, style_weight=STYLE_WEIGHT, content_weight=CONTENT_WEIGHT,
          tv_weight=TV_WEIGHT, style_scale=1.0, seed=0, progress=True, callback=None,
          every=50, checkpoint=None, checkpoint_every=200, threads=None, norms_only=False):
    """Train a (conditional) ``TransformerNet`` with the perceptual losses, Adam.

    Each step takes ``batch`` random ``size`` px crops of the content photos (flipped at
    random) and gives them styles in turn, so every style is trained equally.

    Args:
        model: the loss network (``helpers.load_model()``), frozen.
        contents: (M, 3, H, W) tensor or list of (3, H, W) photos in [0, 1].
        styles: list of (3, h, w) style images (one for Johnson et al., N for Dumoulin et al.).
        names: style names (default ``style 0``, ``style 1``...).
        net: a network to continue training (its styles must match); a new one by default.
        callback: ``callback(step, net, history)`` every ``every`` steps (live previews).
        checkpoint: path; the weights (``save``) go there every ``checkpoint_every`` steps
            and at the end.
        threads: CPU threads for the run (default: unchanged, or 1 on a busy CPU).
        norms_only: train only the (gamma, beta) tables, the convolutions stay as they are
            (a new style for a trained network, Dumoulin et al.).
    Returns:
        ``TrainResult``; stops cleanly on KeyboardInterrupt with the network so far.
    """
    styles = _as_images(styles, "style")
    names = list(names) if names is not None else [f"style {i}" for i in range(len(styles))]
    if len(names) != len(styles):
        raise ValueError(f"{len(styles)} style images but {len(names)} names.")
    if int(steps) < 0 or int(batch) < 1 or int(size) < 16:
        raise ValueError(f"Need steps >= 0, batch >= 1 and size >= 16 "
                         f"(got {steps}, {batch}, {size}).")
    net = net if net is not None else TransformerNet(names, seed=seed)
    if list(net.styles) != names:
        raise ValueError(f"The network knows styles {net.styles}, not {names}.")
    source = crops_source(contents, size)
    gen = torch.Generator().manual_seed(seed)
    history = {k: [] for k in ("total", "content", "style", "tv")}
    interrupted, step, start = False, 0, time.perf_counter()
    with cpu_threads(threads):
        content_layer, layers, targets = loss_terms(model, styles, size, style_scale)
        dev = model_device(model)
        net.to(dev).train()
        params = [p for n in net.norms() for p in n.parameters()] if norms_only \
            else list(net.parameters())
        net.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=lr)
        bar = _bar(steps, progress)
        try:
            for step in range(1, int(steps) + 1):
                x = _random_crops(source, batch, size, gen).to(dev)
                idx = (torch.arange(batch) + (step - 1) * batch) % len(styles)
                out = net(x, torch.eye(len(styles))[idx].to(dev))
                total, terms = perceptual_loss(model, out, x, targets, idx.to(dev),
                                               content_layer, layers, style_weight,
                                               content_weight, tv_weight)
                if not torch.isfinite(total):
                    raise FloatingPointError(f"The loss became {float(total)} at step {step}; "
                                             f"lower lr (now {lr}).")
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()
                history["total"].append(total.item())
                for k, v in terms.items():
                    history[k].append(v.item())
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{history['total'][-1]:.3g}")
                if callback is not None and (step % every == 0 or step == steps):
                    callback(step, net, history)
                if checkpoint and step % checkpoint_every == 0:
                    save(net, checkpoint)
        except KeyboardInterrupt:
            interrupted = True
            step = len(history["total"])
        finally:
            if bar is not None:
                bar.close()
            net.eval()
    if checkpoint:
        save(net, checkpoint)
    return TrainResult(net, history, len(history["total"]), time.perf_counter() - start,
                       interrupted)


def _bar(steps, progress):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=int(steps), desc="training", leave=False)


def _random_crops(source, batch, size, gen):
    m, _, s, _ = source.shape
    pick = torch.randint(m, (batch,), generator=gen)
    ys = torch.randint(s - size + 1, (batch,), generator=gen)
    xs = torch.randint(s - size + 1, (batch,), generator=gen)
    flips = torch.rand(batch, generator=gen) < 0.5
    crops = [source[i, :, y:y + size, x:x + size] for i, y, x in zip(pick, ys, xs)]
    return torch.stack([c.flip(-1) if f else c for c, f in zip(crops, flips)])


# ---- weights on disk --------------------------------------------------------------------------

def save(net, path, **record_):
    """Weights-only checkpoint: the state dict, the network's config and a small record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"state_dict": state, "config": net.config(), "record": dict(record_)}, tmp)
    tmp.replace(path)
    return path


def load(path=WEIGHTS, device=None):
    """A ``TransformerNet`` from a ``save`` checkpoint (``weights_only=True``), eval mode.

    The default is the network shipped with the package (six paintings, ``STYLES``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No style network weights at {path}; train one with "
                                f"helpers.fast_style.train (scripts/train_fast_style.py).")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    net = TransformerNet(**ckpt["config"])
    net.load_state_dict(ckpt["state_dict"])
    net.record = ckpt.get("record", {})
    net = net.eval().requires_grad_(False).to(device or "cpu")
    return net.to(memory_format=torch.channels_last)


def painting(name, size=256, folder=SHARED_PAINTINGS):
    """A style image by name: a painting of ``style_images`` (cached or downloaded), else
    ``folder/name.jpg`` when the course's paintings folder is there.

    Raises:
        StyleUnavailable: neither is available (offline without the folder).
    """
    from .images import load_image
    from .style_images import PAINTINGS, StyleUnavailable, load_style
    if name in PAINTINGS:
        try:
            return load_style(name, size, progress=False)
        except StyleUnavailable:
            pass
    path = Path(folder) / f"{name}.jpg"
    if path.is_file():
        return load_image(path, size)
    raise StyleUnavailable(f"The painting {name!r} is neither downloadable now nor in {folder}.")


_SHIPPED = {}


def shipped():
    """The shipped conditional network (loaded once per session)."""
    if "net" not in _SHIPPED:
        _SHIPPED["net"] = load(WEIGHTS)
    return _SHIPPED["net"]


@torch.inference_mode()
def stylize(net, images, mix=None, size=None):
    """Stylize photos in one forward pass.

    Args:
        net: a ``TransformerNet`` (``shipped()`` or from ``train``).
        images: (3, H, W) or (N, 3, H, W) in [0, 1].
        mix: a style name, ``{name: weight}`` or weights (see ``mix_weights``); the first
            style by default.
        size: resize the photos to this side or (H, W) first.
    Returns:
        (N, 3, H, W) CPU tensor in [0, 1].
    """
    x = as_batch(images).float()
    if size is not None:
        x = resize(x, size)
    w = mix_weights(net.styles, mix)
    dev = next(net.parameters()).device
    # Channels-last memory order: the CPU's faster convolution path (bench/bench_fast_style.py).
    x = x.to(dev).contiguous(memory_format=torch.channels_last)
    return net(x, w.to(dev)).cpu().contiguous()


def train_style(model, style, contents=None, name="my style", base="shipped", steps=150,
                size=96, batch=4, lr=None, **kwargs):
    """Your own style, trained in seconds to minutes at low resolution.

    With a ``base`` network only a new (gamma, beta) row learns, on the base's convolutions
    (Dumoulin et al.): fast, and the first pictures are already photos. With ``base=None``
    a whole one-style network learns from scratch (Johnson et al.): thousands of steps.

    Args:
        style: (3, h, w) style image in [0, 1] (a painting, an upload).
        contents: photos to train on; the shipped sample photos (``helpers.PHOTOS``) by default.
        base: ``"shipped"`` (the shipped network), a ``TransformerNet``, or None.
        lr: Adam's step; 0.02 for the table alone, 2e-3 from scratch by default.
        kwargs: passed to ``train`` (``callback`` for a live preview, ``seed`` ...).
    Returns:
        ``TrainResult`` whose ``net`` knows the one style ``name``.
    """
    if contents is None:
        from .images import PHOTOS, load_image
        contents = [load_image(p, 2 * size) for p in PHOTOS]
    if isinstance(base, str) and base == "shipped":
        base = shipped()
    net = None if base is None else with_styles(base, [name])
    lr = lr if lr is not None else (2e-3 if base is None else 2e-2)
    return train(model, contents, [style], names=[name], net=net, steps=steps, size=size,
                 batch=batch, lr=lr, norms_only=base is not None, **kwargs)


def gamma_beta_figure(net, size=(9.0, 3.4)):
    """The conditional-norm tables as pictures: rows = styles, columns = channels of every norm.

    Each style is nothing but one row of gamma (scale) and one of beta (shift); white lines
    separate the normalization layers, input side on the left.
    """
    import matplotlib.pyplot as plt
    norms = net.norms()
    fig, axes = plt.subplots(2, 1, figsize=size, constrained_layout=True)
    for ax, key, cmap in zip(axes, ("gamma", "beta"), ("viridis", "coolwarm")):
        table = torch.cat([getattr(n, key).detach().cpu() for n in norms], 1)
        lim = float(table.abs().max()) if key == "beta" else None
        im = ax.imshow(table.numpy(), aspect="auto", interpolation="nearest", cmap=cmap,
                       vmin=-lim if lim else None, vmax=lim)
        edge = 0
        for n in norms[:-1]:
            edge += n.gamma.shape[1]
            ax.axvline(edge - 0.5, color="white", lw=0.6)
        ax.set_yticks(range(len(net.styles)), net.styles, fontsize=8)
        ax.set_xticks([])
        ax.set_title(f"{key} ({len(net.styles)} styles x {table.shape[1]} channels "
                     f"in {len(norms)} norms)", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.02)
    plt.close(fig)
    return fig


__all__ = ["STYLE_WEIGHT", "CONTENT_WEIGHT", "TV_WEIGHT", "TrainResult", "WEIGHTS",
           "crops_source", "load", "painting", "loss_terms", "perceptual_loss", "save", "shipped",
           "stylize", "train", "train_style", "gamma_beta_figure"]
