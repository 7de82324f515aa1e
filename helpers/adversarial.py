"""Fooling the network: targeted adversarial examples, FGSM, unrecognizable images (notebook 09).

* ``targeted_attack``: push photos to a chosen wrong class with a perturbation of
  at most ``eps`` per pixel: fixed-budget L-infinity projected sign-gradient steps
  (Kurakin et al., 2017; PGD in Madry et al., 2018), not the box-constrained
  L-BFGS search for the smallest perturbation of Szegedy et al. (2014). Each image
  stops as soon as the model predicts the target, so the perturbation stays as
  small as the step schedule allows.
* ``fgsm``: one step of size ``eps`` along the sign of the loss gradient
  (Goodfellow et al., 2015).
* ``fooling_images``: images the network classifies with high confidence that
  look like nothing (Nguyen et al., 2015), found with the optimization engine: as pixels
  (noise-like) or drawn by a CPPN (regular patterns, like Nguyen et al.'s evolved ones).
"""
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import objectives as obj
from .checks import check_count, check_strength
from .cppn import cppn_image
from .device import model_device
from .images import as_batch, load_image
from .models import class_index, model_input
from .optimize import optimize, sign_step
from .params import image_param


def _targets(model, targets, n):
    if isinstance(targets, (int, str)):
        targets = [targets] * n
    targets = [class_index(model, t) for t in targets]
    if len(targets) != n:
        raise ValueError(f"Need one target class per image: {len(targets)} targets, {n} images.")
    return torch.tensor(targets)


def _check_eps(eps):
    if not 0 <= eps <= 1:
        raise ValueError(f"eps is a per-pixel bound in [0, 1] (e.g. 4/255), got {eps}.")


@dataclass
class AttackResult:
    """Outcome of ``targeted_attack`` for N images.

    Attributes:
        images: (N, 3, H, W) adversarial images in [0, 1].
        success: (N,) bool, the model predicts the target.
        steps: (N,) int, gradient steps used (0 = predicted the target already).
        linf: (N,) float, max |adversarial - original| per image.
        target_prob: (N,) float, softmax probability of the target at the end.
    """
    images: torch.Tensor
    success: torch.Tensor
    steps: torch.Tensor
    linf: torch.Tensor
    target_prob: torch.Tensor

    @property
    def success_rate(self):
        return self.success.float().mean().item()


def cross_entropy_gradient(model, images, classes):
    """Gradient of the cross-entropy of ``classes`` with respect to the images, and the logits.

    The one loss gradient of the attacks: a sign step against it moves an image towards
    its class (targeted attack), a sign step along it away from it (FGSM).

    Args:
        images: (N, 3, H, W) in [0, 1], on the model's device.
        classes: (N,) class indices on the same device.
    Returns:
        ``(gradient (N, 3, H, W), logits (N, K))``, both detached.
    """
    x = images.detach().requires_grad_(True)
    logits = model(x)
    # Summed (not averaged) so each image's step does not depend on the batch size.
    loss = F.cross_entropy(logits, classes, reduction="sum")
    grad, = torch.autograd.grad(loss, x)
    return grad, logits.detach()


def project(images, originals, eps):
    """The nearest images within ``eps`` of ``originals`` in L-infinity that stay in [0, 1]."""
    return torch.min(torch.max(images, originals - eps), originals + eps).clamp(0, 1)


def _fast_layout(images):
    """Channels-last on a CPU, where the convolutions' NHWC path makes a gradient pass about
    25 % faster; unchanged elsewhere. (``fgsm`` keeps the plain layout: the exercise checks
    compare its sign step element by element.)"""
    return images.contiguous(memory_format=torch.channels_last) \
        if images.device.type == "cpu" else images


def targeted_attack(model, images, targets, eps=4 / 255, steps=20, step_size=None,
                    batch_size=8):
    """Targeted L-infinity attack: ``x + delta`` with ``|delta| <= eps`` predicted as the target.

    ``x_{k+1} = clip_[0,1](clip_[x-eps, x+eps](x_k - step_size * sign(grad CE(f(x_k), target))))``
    from ``x_0 = x`` (Kurakin et al., 2017; Madry et al., 2018, without the random start).
    An image leaves the batch as soon as the model predicts its target (or its steps run
    out) and the next image takes its place, so batches stay full.

    Args:
        images: (N, 3, H, W) or (3, H, W) in [0, 1].
        targets: one class (index or name) for all, or one per image.
        eps: L-infinity bound on the perturbation, in pixel units (4/255 = 4 grey levels).
        steps: most gradient steps per image.
        step_size: size of a sign step; default ``eps / 4`` (larger steps overshoot and
            oscillate: eps/2 needs more steps on the ImageNet samples).
        batch_size: images per forward pass.
    Returns:
        ``AttackResult``.
    """
    _check_eps(eps)
    steps = check_count(steps, "steps")
    if step_size is not None:
        check_strength(step_size, "step_size")
    dev = model_device(model)
    images = model_input(model, images, name="images")
    n = len(images)
    targets = _targets(model, targets, n).to(dev)
    alpha = eps / 4 if step_size is None else float(step_size)
    x = images.clone()
    count = torch.zeros(n, dtype=torch.long, device=dev)
    success = torch.zeros(n, dtype=torch.bool, device=dev)
    waiting, active = list(range(n)), []
    while waiting or active:
        take = batch_size - len(active)
        active, waiting = active + waiting[:take], waiting[take:]
        idx = torch.tensor(active, device=dev)
        grad, logits = cross_entropy_gradient(model, _fast_layout(x[idx]), targets[idx])
        if not torch.isfinite(grad).all():
            raise FloatingPointError("The attack's gradient became NaN or infinite; check the "
                                     "model and the images (finite values in [0, 1]).")
        hit = logits.argmax(1) == targets[idx]
        success[idx[hit]] = True
        go = ~hit & (count[idx] < steps)
        idx, grad = idx[go], grad[go]
        if len(idx):  # one projected sign step (PGD) down the loss of the target
            x[idx] = project(sign_step(x[idx], grad, alpha), images[idx], eps)
            count[idx] += 1
        active = idx.tolist()
    with torch.no_grad():
        probs = torch.cat([model(x[i:i + batch_size]).softmax(1)
                           for i in range(0, n, batch_size)])
    linf = (x - images).flatten(1).abs().max(1).values
    return AttackResult(x.cpu(), success.cpu(), count.cpu(), linf.cpu(),
                        probs[torch.arange(n, device=dev), targets].cpu())


def fgsm(model, images, labels, eps=2 / 255):
    """Fast gradient sign method: ``x + eps * sign(grad of the loss of the true label)``.

    Args:
        images: (N, 3, H, W) or (3, H, W) in [0, 1].
        labels: true classes (index/name, one for all or one per image).
    Returns:
        (N, 3, H, W) adversarial images in [0, 1].
    """
    _check_eps(eps)
    images = model_input(model, images, name="images")
    labels = _targets(model, labels, len(images)).to(images.device)
    grad, _ = cross_entropy_gradient(model, images, labels)
    return sign_step(images, grad, -eps).clamp(0, 1)  # one step *up* the loss of the label


@torch.no_grad()
def _predictions(model, images, batch_size):
    dev = model_device(model)
    return torch.cat([model(images[i:i + batch_size].to(dev)).argmax(1).cpu()
                      for i in range(0, len(images), batch_size)])


def fgsm_error_rates(model, images, labels, epsilons=(1 / 255, 2 / 255, 4 / 255, 8 / 255),
                     batch_size=8):
    """Top-1 error rate of the model on FGSM images, for each epsilon (and 0 = clean).

    The gradient does not depend on epsilon, so it is computed once per image.

    Returns:
        dict epsilon -> error rate in [0, 1] (key 0.0 holds the clean error rate).
    """
    images = as_batch(images, "cpu")
    labels = _targets(model, labels, len(images))
    dev = model_device(model)
    grads = torch.cat([cross_entropy_gradient(model, _fast_layout(images[i:i + batch_size].to(dev)),
                                              labels[i:i + batch_size].to(dev))[0].sign().cpu()
                       for i in range(0, len(images), batch_size)])
    rates = {0.0: (_predictions(model, images, batch_size) != labels).float().mean().item()}
    for eps in epsilons:
        _check_eps(eps)
        adv = sign_step(images, grads, -eps).clamp(0, 1)
        rates[float(eps)] = (_predictions(model, adv, batch_size) != labels).float().mean().item()
    return rates


FOOLING_PARAMETERIZATIONS = ("pixel", "fourier", "cppn")
# Adam's step for each: pixels and Fourier coefficients move in pixel units; a CPPN's
# weights act on every pixel at once, so smaller steps keep its sigmoid out of saturation.
FOOLING_LR = {"pixel": 0.05, "fourier": 0.05, "cppn": 0.02}


def fooling_images(model, targets, size=128, steps=100, lr=None, confidence=0.99,
                   parameterization="pixel", seed=0, progress=False):
    """Unrecognizable images classified as ``targets`` with high confidence (Nguyen et al., 2015).

    Adam on the cross-entropy of each target, stopping once every image reaches
    ``confidence``. What is optimized decides what the images look like:

    * ``"pixel"``: every pixel, from faint noise: noise-like images;
    * ``"fourier"``: a 1/f-scaled spectrum (``params.fourier_image``): smoother noise;
    * ``"cppn"``: the weights of a small network from ``(x, y, r)`` to colour
      (``cppn.cppn_image``): regular patterns, like the CPPN images that Nguyen et al.
      evolved (here found by gradient, in far fewer evaluations).

    Args:
        targets: class indices or names, one image each.
        size: side of the images in pixels.
        steps: most Adam steps.
        lr: Adam's learning rate; None takes ``FOOLING_LR[parameterization]``.
        parameterization: one of ``FOOLING_PARAMETERIZATIONS``.
    Returns:
        ``(images (N, 3, size, size) in [0, 1], probabilities of the targets (N,))``.
    Raises:
        ValueError: an unknown parameterization, naming the valid ones.
    """
    if parameterization not in FOOLING_PARAMETERIZATIONS:
        raise ValueError(f"Unknown parameterization {parameterization!r}: choose one of "
                         f"{', '.join(map(repr, FOOLING_PARAMETERIZATIONS))}.")
    check_strength(confidence, "confidence", 0.0, 1.0)
    targets = _targets(model, targets, len(targets) if isinstance(targets, (list, tuple)) else 1)
    n = len(targets)
    if parameterization == "cppn":
        param = cppn_image(size, batch=n, seed=seed)
    else:  # pixels start from visible noise; the Fourier start keeps its own (small) default
        param = image_param(parameterization, size,
                            sd=0.1 if parameterization == "pixel" else None, batch=n, seed=seed)
    lr = FOOLING_LR[parameterization] if lr is None else lr

    def confident(step, image, loss):
        with torch.no_grad():
            p = model(image).softmax(1)[torch.arange(n), targets.to(image.device)]
        return bool((p >= confidence).all())
    result = optimize(model, param, obj.cross_entropy(targets.tolist()), steps=steps, lr=lr,
                      callback=confident, every=5, progress=progress, seed=seed)
    with torch.no_grad():
        probs = model(result.image).softmax(1)[torch.arange(n), targets.to(result.image.device)]
    return result.image, probs.cpu()


# ---- figures for the notebook (pure, cached) ---------------------------------------------

def _show_perturbation(delta, scale=10):
    """A perturbation in [-eps, eps] drawn around grey, amplified ``scale`` times."""
    return (0.5 + scale * delta).clamp(0, 1)


def _label(model, image):
    from .models import predict
    (i, name, p), = predict(model, image, k=1)[0][:1]
    return i, f"{name[:22]} ({p:.2f})"


def comparison_figure(model, original, adversarial, title, scale=10):
    """Original | perturbation x ``scale`` | adversarial, each titled with the model's top-1."""
    from .plotting import show_images
    original, adversarial = original.detach().cpu(), adversarial.detach().cpu()
    delta = adversarial - original
    linf = delta.abs().max().item() * 255
    titles = [f"original\n{_label(model, original)[1]}",
              f"perturbation x{scale}\nmax |d| = {linf:.1f}/255",
              f"adversarial\n{_label(model, adversarial)[1]}"]
    return show_images([original.cpu(), _show_perturbation(delta, scale), adversarial.cpu()],
                       titles=titles, ncols=3, size=3.0, title=title)


@functools.lru_cache(maxsize=32)
def attack_figure(model, photo="chelsea", target="goldfish", eps_255=2.0, steps=20):
    """Targeted attack of a sample photo, shown as original / perturbation x10 / adversarial."""
    image = load_image(photo, 224)
    r = targeted_attack(model, image, target, eps=eps_255 / 255, steps=steps)
    status = (f"reached '{model.classes[class_index(model, target)]}' in {int(r.steps[0])} steps"
              if r.success[0] else f"not reached in {steps} steps")
    return comparison_figure(model, image, r.images[0],
                             f"targeted attack, eps = {eps_255:g}/255: {status}")


@functools.lru_cache(maxsize=32)
def fgsm_figure(model, photo="chelsea", eps_255=2.0):
    """FGSM on a sample photo; the 'true' label is the model's own prediction on the photo."""
    image = load_image(photo, 224)
    label, _ = _label(model, image)
    adv = fgsm(model, image, label, eps=eps_255 / 255)[0]
    return comparison_figure(model, image, adv, f"FGSM, eps = {eps_255:g}/255")


def error_rate_figure(rates):
    """Error rate against epsilon (in /255 units) from ``fgsm_error_rates``."""
    import matplotlib.pyplot as plt
    eps = sorted(rates)
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot([e * 255 for e in eps], [rates[e] for e in eps], "o-")
    ax.set(xlabel="epsilon (/255)", ylabel="top-1 error", ylim=(0, 1), title="FGSM error rate")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def fooling_figure(model, rows, title="unrecognizable images, confidently classified"):
    """Fooling images titled with the class the model sees and its confidence.

    Args:
        rows: (N, 3, H, W) images, or a dict ``{row name: images}`` drawn one row each.
    """
    from .plotting import show_images
    rows = rows if isinstance(rows, dict) else {"": rows}
    images = [img.cpu() for imgs in rows.values() for img in imgs]
    titles = [f"{name}: {_label(model, img)[1]}" if name else _label(model, img)[1]
              for name, imgs in rows.items() for img in imgs]
    return show_images(images, titles=titles, ncols=len(next(iter(rows.values()))), size=2.4,
                       title=title)
