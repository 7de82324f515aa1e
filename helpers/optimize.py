"""One optimization loop for every "make an image that..." method of the course.

Feature visualization, class models, fooling images, deep dream, inversion,
texture and style transfer all run ``optimize``: a parameterized image, an
objective over recorded layers, transforms before the forward pass, in-place
pixel edits after each step, and an optimizer.
"""
import contextlib
import copy
import functools
import io
import time
from dataclasses import dataclass, field

import torch

from .checks import check_count
from .device import model_device
from .hooks import record
from .images import check_image_size
from .models import min_input_size
from .objectives import OUTPUT, Objective
from .params import ImageParam

__all__ = [
    "LiveRuns",
    "NormalizedGD",
    "Result",
    "SignGD",
    "channels_last",
    "check_optimizer",
    "frames_cache",
    "live_runs",
    "make_optimizer",
    "optimize",
    "preview",
    "sign_step",
]


@dataclass
class Result:
    """What ``optimize`` returns.

    Attributes:
        image: (N, 3, H, W) in [0, 1], detached, on the model's device.
        history: loss per step (floats).
        steps: steps actually run.
        interrupted: True when stopped by KeyboardInterrupt.
        stopped: True when the callback asked to stop early.
    """
    image: torch.Tensor
    history: list = field(default_factory=list)
    steps: int = 0
    interrupted: bool = False
    stopped: bool = False


class NormalizedGD(torch.optim.Optimizer):
    """Gradient steps divided by the mean absolute gradient of each image (deep dream).

    ``x <- x - lr * g / mean|g|``: the step size is in pixel units whatever the
    gradient's scale, which varies by orders of magnitude between layers.
    """

    def __init__(self, params, lr=0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                dims = tuple(range(1, g.dim())) if g.dim() > 1 else (0,)
                p.sub_(group["lr"] * g / g.abs().mean(dim=dims, keepdim=True).clamp_min(1e-12))
        return loss


def sign_step(x, grad, lr):
    """``x - lr * sign(grad)``: the steepest descent step in the L-infinity norm.

    The one sign step of the course: ``SignGD`` takes it for ``optimize``, and the
    adversarial attacks (FGSM: one step, PGD: many, projected) take it directly.
    """
    return x - lr * grad.sign()


class SignGD(torch.optim.Optimizer):
    """``x <- x - lr * sign(g)`` (``sign_step``): the steepest step in L-infinity (FGSM, PGD)."""

    def __init__(self, params, lr=1 / 255):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.copy_(sign_step(p, p.grad, group["lr"]))
        return loss


OPTIMIZERS = {
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr),
    # One function evaluation per step, so ``steps`` counts the same work for every optimizer.
    "lbfgs": lambda params, lr: torch.optim.LBFGS(params, lr=lr, max_iter=1,
                                                  history_size=50),
    "normalized": lambda params, lr: NormalizedGD(params, lr=lr),
    "sign": lambda params, lr: SignGD(params, lr=lr),
}
# The learning rate a name gets when none is given: L-BFGS scales its own steps (lr 1);
# Adam/SGD in pixel units; the normalized and sign steps are pixel changes per step.
DEFAULT_LR = {"adam": 0.05, "sgd": 0.05, "lbfgs": 1.0, "normalized": 0.01, "sign": 1 / 255}


def check_optimizer(optimizer):
    """Raise ``ValueError`` unless ``optimizer`` is a name in ``OPTIMIZERS`` or a callable."""
    if not callable(optimizer) and optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {optimizer!r}. Choose one of: "
                         f"{', '.join(OPTIMIZERS)}, or pass a factory callable(params).")


def make_optimizer(optimizer, params, lr=None):
    """The one optimizer factory: a name in ``OPTIMIZERS`` or a factory ``callable(params)``.

    Args:
        optimizer: "adam", "sgd", "lbfgs", "normalized", "sign", or ``callable(params)``.
        params: the tensors to optimize.
        lr: learning rate for a named optimizer; None takes ``DEFAULT_LR[optimizer]``.
    """
    check_optimizer(optimizer)
    if callable(optimizer):
        return optimizer(params)
    return OPTIMIZERS[optimizer](params, DEFAULT_LR[optimizer] if lr is None else lr)


def _progress(steps, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=steps, leave=False)


def optimize(model, param, objective, transforms=(), post_steps=(), steps=100, optimizer="adam",
             lr=None, callback=None, every=10, progress=True, seed=None):
    """Minimize ``objective`` over the image made by ``param``.

    Each step: image = param(); x = transforms(image); forward ``x`` through ``model``
    while recording ``objective.layers``; loss = objective(rec, x); gradient w.r.t. the
    parameters only (the model stays frozen); optimizer step; ``param.after_step()``
    (clamping) and the ``post_steps`` on the pixels.

    Args:
        model: any ``nn.Module`` taking (N, 3, H, W) images in [0, 1].
        param: an ``ImageParam`` (``pixel_image``, ``fourier_image``); moved to the model's device.
        objective: an ``Objective`` (loss to minimize).
        transforms: callables image -> image applied before the forward pass (jitter...).
        post_steps: callables ``op(pixels, grad, step)`` editing the pixels in place after each
            step (``BlurEvery``...); they need ``param.pixels`` (a ``pixel_image``).
        steps: number of optimizer steps (L-BFGS: outer steps, one function evaluation each).
        optimizer: "adam", "sgd", "lbfgs", "normalized", "sign", or ``callable(params)``.
        lr: learning rate for a named optimizer (None: ``DEFAULT_LR``, 0.05 for Adam).
        callback: ``callback(step, image, loss)`` every ``every`` steps and after the last one,
            with the (N, 3, H, W) detached image; returning True stops the run early.
        progress: show a tqdm progress bar.
        seed: seed for the random transforms (the global RNG state is restored afterwards).
    Returns:
        ``Result`` with ``.image`` (N, 3, H, W) in [0, 1], ``.history`` (loss per step),
        ``.steps``, ``.interrupted``, ``.stopped``.
    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be a helpers.objectives.Objective, got "
                        f"{type(objective).__name__}; build one with channel(), class_score()...")
    if not isinstance(param, ImageParam):
        raise TypeError(f"param must be an image parameterization (pixel_image, fourier_image), "
                        f"got {type(param).__name__}.")
    steps, every = check_count(steps, "steps", 0), max(1, int(every))
    transforms, post_steps = list(transforms), list(post_steps)
    if post_steps and getattr(param, "pixels", None) is None:
        raise ValueError(f"Post-step regularizers ({', '.join(map(repr, post_steps))}) edit "
                         f"pixels; use pixel_image, not {type(param).__name__}.")
    dev = model_device(model)
    if dev.type == "cpu" and channels_last not in transforms:
        transforms.append(channels_last)  # about 20 % faster steps on a CPU
    param.to(dev)
    params = [p for p in param.parameters() if p.requires_grad]
    with torch.no_grad():
        shape = param().shape
    check_image_size(shape[-2:], min_input_size(model) or 1, "image to optimize")
    size = shape[-1]
    objective.check(model, size)  # bad layer/channel/class: fail before any work
    opt = make_optimizer(optimizer, params, lr)
    names = sorted(objective.layers - {OUTPUT})
    needs_output = OUTPUT in objective.layers
    result = Result(image=None)
    pending = []  # losses as tensors; converted in chunks (no GPU sync every step)
    bar = _progress(steps, progress)
    live = _LIVE[-1] if _LIVE else None  # inside a panel's redraw: frames, preview, progress
    live_every = max(1, steps // live.frames_per_run) if live is not None else 0

    def flush(step):
        nonlocal bar
        if bar is None and live is not None and live.long():
            bar = _progress(steps, True)
            bar.update(len(result.history))
        if not pending:
            return
        values = torch.stack(pending).tolist()
        pending.clear()
        for i, v in enumerate(values):
            if v != v or v in (float("inf"), float("-inf")):
                bad = step - len(values) + i + 1
                raise FloatingPointError(
                    f"The loss became {v} at step {bad} ({objective.name}); lower the learning "
                    f"rate (lr={opt.param_groups[0]['lr']:g}) or the regularization strengths.")
        result.history.extend(values)
        if bar is not None:
            bar.update(len(values))
            bar.set_postfix(loss=f"{values[-1]:.4g}")

    # The random transforms draw from the CPU generator; fork it so a seed stays local.
    rng = torch.random.fork_rng(devices=[], device_type="cpu") if seed is not None \
        else contextlib.nullcontext()
    try:
        # Without the output, the pass ends after the last recorded layer: objectives on an
        # early layer cost only the layers up to it.
        with rng, record(model, names, stop=not needs_output) as rec:
            if seed is not None:
                torch.manual_seed(seed)

            def closure():
                opt.zero_grad(set_to_none=True)
                x = param()
                for t in transforms:
                    x = t(x)
                out = rec.run(x)
                acts = dict(rec.activations, **{OUTPUT: out}) if needs_output else rec.activations
                loss = objective(acts, x)
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                for p, g in zip(params, grads):
                    p.grad = g
                return loss

            for i in range(steps):
                try:
                    loss = opt.step(closure)
                    with torch.no_grad():
                        param.after_step()
                        if post_steps:
                            grad = param.pixels.grad
                            for op in post_steps:
                                op(param.pixels.data, grad, i)
                    pending.append(loss.detach())
                    result.steps = i + 1
                    last = i == steps - 1
                    if len(pending) >= every or last:
                        flush(i + 1)
                    if live is not None and ((i + 1) % live_every == 0 or last):
                        with torch.no_grad():
                            live.add(i + 1, param().detach(), pending[-1] if pending else
                                     result.history[-1])
                    if callback is not None and ((i + 1) % every == 0 or last):
                        with torch.no_grad():
                            img = param().detach()
                        if callback(i + 1, img, result.history[-1]) is True:
                            result.stopped = True
                            break
                except KeyboardInterrupt:
                    result.interrupted = True
                    break
            flush(result.steps)
    finally:
        if bar is not None:
            bar.close()
        for p in params:
            p.grad = None
    with torch.no_grad():
        result.image = param().detach().clamp(0, 1)
    return result


class _ChannelsLast(torch.autograd.Function):
    @staticmethod
    def forward(ctx, image):
        return image.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous()  # L-BFGS flattens gradients with view(-1)


def channels_last(image):
    """Transform for ``optimize``: the same (N, 3, H, W) image in channels-last memory order.

    The convolutions then take their faster NHWC path on a CPU (bench/bench_style.py
    measures it); the parameters and their gradients stay in the usual order. ``optimize``
    adds it on a CPU by itself.
    """
    return _ChannelsLast.apply(image)


class preview:
    """Callback that shows the current image in a notebook, updated in place.

    Usage: ``optimize(..., callback=preview(), every=10)``. Outside IPython it does nothing.
    """

    def __init__(self, width=224):
        self.width, self.handle = width, None

    def __call__(self, step, image, loss):
        try:
            from IPython.display import Image, display
        except ImportError:
            return
        from PIL import Image as PILImage

        from .images import to_numpy
        buf = io.BytesIO()
        PILImage.fromarray((to_numpy(image[0]) * 255).round().astype("uint8")).save(buf, "png")
        shown = Image(data=buf.getvalue(), width=self.width)
        if self.handle is None:
            self.handle = display(shown, display_id=True)
        else:
            self.handle.update(shown)


_LIVE = []  # the LiveRuns entered with ``live_runs``, innermost last


class LiveRuns:
    """Every ``optimize`` run inside ``with live_runs() as runs:`` feeds it (a panel's redraw).

    It keeps ``frames_per_run`` small frames (PIL images, side <= ``frame_side``) of each run
    for an animated GIF, and once the redraw has taken ``after_s`` seconds, when ``show`` is
    set, a run shows a progress bar and a preview of its image (a short run shows neither).
    The caller's own callback is called as before.
    """

    def __init__(self, show=True, after_s=2.0, width=200, max_frames=120, frame_side=160,
                 frames_per_run=24):
        self.show, self.after_s, self.width = show, after_s, width
        self.max_frames, self.frame_side = max_frames, frame_side
        self.frames_per_run = frames_per_run
        self.frames, self.start, self._preview, self._shown = [], time.perf_counter(), None, 0.0

    def long(self):
        return self.show and time.perf_counter() - self.start > self.after_s

    def extend(self, frames):
        """Append finished frames (e.g. a cached run's)."""
        self.frames.extend(frames)
        while len(self.frames) > self.max_frames:  # keep every other frame: the whole span
            self.frames = self.frames[::2]

    def add(self, step, image, loss):
        from PIL import Image as PILImage

        from .images import to_numpy
        frame = PILImage.fromarray((to_numpy(image[0]) * 255).round().astype("uint8"))
        frame.thumbnail((self.frame_side, self.frame_side))
        self.extend([frame])
        now = time.perf_counter()
        if self.long() and now - self._shown >= 0.25:  # a few previews a second are enough
            if self._preview is None:
                self._preview = preview(width=self.width)
            self._preview(step, image, loss)
            self._shown = now


@contextlib.contextmanager
def live_runs(show=True, after_s=2.0, runs=None):
    """Collect the frames of every ``optimize`` run inside; show long ones live (see ``LiveRuns``)."""
    runs = LiveRuns(show=show, after_s=after_s) if runs is None else runs
    _LIVE.append(runs)
    try:
        yield runs
    finally:
        _LIVE.remove(runs)


def frames_cache(maxsize=32):
    """``functools.lru_cache`` for a function that runs ``optimize``, keeping its frames too.

    A call served from the cache hands the frames of its first call to the ``live_runs``
    around it, so that a panel whose first drawing an earlier cell already computed still
    has a run to save as a GIF. A first call inside ``live_runs`` shows its progress there.
    """
    def wrap(fn):
        @functools.lru_cache(maxsize=maxsize)
        def run(*args, **kwargs):
            # Inside live_runs, stand in for the caller's (same clock, same preview).
            own = copy.copy(_LIVE[-1]) if _LIVE else LiveRuns(show=False)
            own.frames = []
            with live_runs(runs=own):
                result = fn(*args, **kwargs)
            return result, tuple(own.frames)

        @functools.wraps(fn)
        def cached(*args, **kwargs):
            result, frames = run(*args, **kwargs)
            if _LIVE:
                _LIVE[-1].extend(frames)
            return result

        cached.cache_info, cached.cache_clear = run.cache_info, run.cache_clear
        return cached
    return wrap
