"""Style transfer time per step: helpers.style_transfer vs the PyTorch-tutorial structure.

The peer is the structure of PyTorch's "Neural Transfer Using PyTorch" tutorial:
an ``nn.Sequential`` copy of the network with ContentLoss/StyleLoss modules
inserted after the chosen layers, truncated after the last loss, optimized with
``torch.optim.LBFGS`` (one closure call = one function evaluation). For
EfficientNet-Lite0 the sequential copy is built from its top-level pieces
(normalization, stem conv, BN, ReLU6, the 16 MBConv blocks), so both sides
use the same layers at block boundaries: style after act0, blocks.1, blocks.3,
blocks.5, blocks.8 and content after blocks.5. Ours runs ``helpers.optimize``
(hooks record the layers, the forward pass stops after the deepest one, L-BFGS
with one evaluation per step, pixels optimized directly like the tutorial (not
the default Fourier parameterization), the image handed to the network in channels-last
memory order). A step is one forward + backward pass on both sides. A third row
gives the tutorial the same channels-last input, to show where the gain comes from.

Usage: .venv/bin/python bench/bench_style.py [--size 128] [--steps 60] [--repeats 3] [--threads 1]
Prints a markdown table.
"""
import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from helpers import load_image, load_model
from helpers.hooks import activations
from helpers.inversion import evaluate, feature_distance
from helpers.optimize import channels_last
from helpers.style import style_loss, style_targets, style_transfer
from helpers.style_images import load_style

STYLE = ["act0", "blocks.1", "blocks.3", "blocks.5", "blocks.8"]
CONTENT = "blocks.5"
STYLE_WEIGHT = 10.0


# ---- the tutorial's structure ---------------------------------------------------------------

def gram_matrix(x):
    a, b, c, d = x.size()
    f = x.view(a * b, c * d)
    return torch.mm(f, f.t()).div(a * b * c * d)


class ContentLoss(nn.Module):
    def __init__(self, target):
        super().__init__()
        self.target = target.detach()

    def forward(self, x):
        self.loss = F.mse_loss(x, self.target)
        return x


class StyleLoss(nn.Module):
    def __init__(self, target_feature):
        super().__init__()
        self.target = gram_matrix(target_feature).detach()

    def forward(self, x):
        self.loss = F.mse_loss(gram_matrix(x), self.target)
        return x


class Normalization(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = mean.clone(), std.clone()

    def forward(self, img):
        return (img - self.mean) / self.std


def top_level_pieces(model):
    """EfficientNet-Lite0 as (name, module) pieces that run one after the other."""
    pieces = [("conv_stem", model.conv_stem), ("bn0", model.bn0), ("act0", model.act0)]
    pieces += [(f"blocks.{i}", b) for i, b in enumerate(model.blocks)]
    return pieces


def tutorial_model(model, content, style):
    """The tutorial's get_style_model_and_losses for EfficientNet-Lite0's pieces."""
    seq = nn.Sequential(Normalization(model.mean, model.std))
    content_losses, style_losses = [], []
    last = max(STYLE + [CONTENT], key=lambda n: [p for p, _ in top_level_pieces(model)].index(n))
    for name, module in top_level_pieces(model):
        seq.add_module(name.replace(".", "_"), copy.deepcopy(module))
        if name == CONTENT:
            target = seq(content).detach()
            loss = ContentLoss(target)
            seq.add_module(f"content_loss_{name.replace('.', '_')}", loss)
            content_losses.append(loss)
        if name in STYLE:
            target = seq(style).detach()
            loss = StyleLoss(target)
            seq.add_module(f"style_loss_{name.replace('.', '_')}", loss)
            style_losses.append(loss)
        if name == last:
            break
    return seq.eval().requires_grad_(False), style_losses, content_losses


def run_tutorial(model, content, style, steps, style_weight=1e6, content_weight=1,
                 prepare=lambda x: x):
    """The tutorial's run_style_transfer; returns the image and the closure calls made."""
    seq, style_losses, content_losses = tutorial_model(model, content, style)
    img = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([img])
    run = [0]
    while run[0] <= steps:
        def closure():
            with torch.no_grad():
                img.clamp_(0, 1)
            optimizer.zero_grad()
            seq(prepare(img))
            s = sum(sl.loss for sl in style_losses) * style_weight
            c = sum(cl.loss for cl in content_losses) * content_weight
            loss = s + c
            loss.backward()
            run[0] += 1
            return s + c
        optimizer.step(closure)
    with torch.no_grad():
        img.clamp_(0, 1)
    return img.detach(), run[0]


def run_tutorial_nhwc(model, content, style, steps):
    """The tutorial given the same channels-last input as ours (where the speed comes from)."""
    return run_tutorial(model, content, style, steps, prepare=channels_last)


# ---- ours ----------------------------------------------------------------------------------

def run_ours(model, content, style, steps):
    res = style_transfer(model, content[0], style[0], style_weight=STYLE_WEIGHT,
                         style_layers=STYLE, content_layer=CONTENT, tv_strength=0.0,
                         steps=steps, param="pixel")  # pixels, like the tutorial
    return res.image, res.steps


def quality(model, content, style, image):
    """Both results scored by the same yardstick: our content distance and Gram loss."""
    target = activations(model, content, [CONTENT])[CONTENT]
    c = evaluate(model, feature_distance(CONTENT, target), image)
    s = evaluate(model, style_loss(style_targets(model, style, STYLE)), image)
    return c, s


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model()
    dev = next(model.parameters()).device
    content = load_image("chelsea", args.size)[None].to(dev)
    style = load_style("stained_glass", args.size)[None].to(dev)

    runs = (("ours", run_ours), ("tutorial", run_tutorial), ("tutorial_nhwc", run_tutorial_nhwc))
    total = {name: [] for name, _ in runs}     # whole call / evaluations (setup included)
    marginal = {name: [] for name, _ in runs}  # (long - short) / extra evaluations
    evals, images = {}, {}
    for name, fn in runs:  # warm-up (allocator, first-call costs)
        fn(model, content, style, 3)

    def timed(fn, steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        image, n = fn(model, content, style, steps)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t, image, n

    short = max(5, args.steps // 5)
    for _ in range(args.repeats):  # interleaved, so load changes hit all alike
        for name, fn in runs:
            t1, _, n1 = timed(fn, short)
            t2, images[name], evals[name] = timed(fn, args.steps)
            total[name].append(t2 / evals[name])
            marginal[name].append((t2 - t1) / (evals[name] - n1))

    print(f"Style transfer, EfficientNet-Lite0, {args.size}x{args.size}, L-BFGS, {args.steps} "
          f"steps, {args.threads} thread(s), {dev.type}; medians of {args.repeats} interleaved "
          "runs. A step is one function evaluation (forward + backward). 'per step' divides the "
          f"whole call (setup included) by its evaluations; 'marginal' is the extra time of a "
          f"{args.steps}-step run over a {short}-step run per extra evaluation.\n")
    print("| implementation | ms / step | marginal ms / step | evaluations | content distance "
          "| Gram loss |")
    print("|---|---|---|---|---|---|")
    for name, label in (("ours", "helpers.style_transfer (optimize loop, hooks)"),
                        ("tutorial", "PyTorch tutorial (Sequential + loss modules)"),
                        ("tutorial_nhwc", "same tutorial, channels-last input (not the peer)")):
        c, s = quality(model, content, style, images[name])
        print(f"| {label} | {1000 * statistics.median(total[name]):.1f} | "
              f"{1000 * statistics.median(marginal[name]):.1f} | {evals[name]} | {c:.3f} | "
              f"{s:.4f} |")
    for key, what in ((total, "per step"), (marginal, "marginal per step")):
        ratio = statistics.median(key["tutorial"]) / statistics.median(key["ours"])
        print(f"\n{what}: ours runs at {ratio:.2f}x the tutorial's speed (> 1: faster).")


if __name__ == "__main__":
    main()
