"""Grad-CAM vs pytorch-grad-cam and one forward + gradient pass; integrated gradients vs Captum.

Run: .venv/bin/python bench/bench_cam.py [--size 224] [--steps 32 50] [--threads N]

Prints two markdown tables, for the offline model and a randomly initialised ResNet-18 on the
cat photo:
1. Grad-CAM at the default layer (the last block): helpers.grad_cam, one forward pass plus
   ``torch.autograd.grad`` to the input (frozen parameters), and pytorch-grad-cam's ``GradCAM``
   (built once, hooks on; the call returns its min-max scaled, resized map), with the largest
   difference of the raw maps (on the layer's grid) relative to the map's maximum;
2. integrated gradients at equal steps (black baseline, Gauss-Legendre): helpers vs Captum's
   ``IntegratedGradients`` with all steps in one batch (its default) and in batches of 16 (our default at 224 px),
   with the largest difference of the maps relative to the map's maximum.
Every contender runs once untimed first; timings are medians of ``--repeats`` runs
(``--ig-repeats`` for integrated gradients). Other work
on the machine shows up as noise.
"""
import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import load_image, load_model
from helpers.gradcam import cam_layer, grad_cam
from helpers.integrated_gradients import integrated_gradients
from bench_attribution import timed  # the one timing loop of the attribution benchmarks

warnings.filterwarnings("ignore")


def rel(ours, ref):
    return float((ours - ref).abs().max() / ref.abs().max())


def cam_rows(name, model, x, target, repeats):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer = cam_layer(model, None, x.shape[-1])
    module = dict(model.named_modules())[layer]

    def forward_grad():
        xx = x[None].clone().requires_grad_(True)
        return torch.autograd.grad(model(xx)[0, target], xx)[0]

    base, _ = timed(forward_grad, repeats)
    ours_t, _ = timed(lambda: grad_cam(model, x, target, layer), repeats)
    targets = [ClassifierOutputTarget(target)]
    with GradCAM(model=model, target_layers=[module]) as cam:
        # Frozen parameters: the input carries the graph (as in ours).
        theirs_t, _ = timed(lambda: cam(x[None].clone().requires_grad_(True), targets), repeats)
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        raw = np.maximum(cam.get_cam_image(x[None], module, targets, acts, grads)[0], 0)
    err = rel(grad_cam(model, x, target, layer, upsample=False), torch.from_numpy(raw))
    for what, t in [("forward + grad to input (frozen params)", base),
                    (f"helpers.grad_cam ({layer})", ours_t),
                    ("pytorch-grad-cam GradCAM", theirs_t)]:
        print(f"| {name} | {what} | {1000 * t:.1f} | {t / base:.2f}x | {t / ours_t:.2f}x | "
              f"{f'{err:.1e}' if what.startswith('pytorch') else '-'} |", flush=True)


def ig_rows(name, model, x, target, steps, repeats):
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(model)
    # Each contender runs once untimed at full size first: the first run of a new batch size
    # pays for fresh memory pages, which would otherwise count against whoever goes first.
    ours_t, ours = timed(lambda: integrated_gradients(model, x, target, "black", steps), repeats)
    print(f"| {name} | {steps} | helpers.integrated_gradients (default batches) | {ours_t:.2f} | 1.00x | - |",
          flush=True)
    for batch in [None, 16]:
        t, ref = timed(lambda: ig.attribute(x[None], baselines=0.0, target=target, n_steps=steps,
                                            internal_batch_size=batch)[0], repeats)
        print(f"| {name} | {steps} | Captum IntegratedGradients, internal_batch_size={batch} | "
              f"{t:.2f} | {t / ours_t:.2f}x | {rel(ours, ref):.1e} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, nargs="+", default=[32])
    parser.add_argument("--repeats", type=int, default=5, help="timed Grad-CAM runs")
    parser.add_argument("--ig-repeats", type=int, default=3, help="timed integrated-gradients runs")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x = load_image("chelsea", args.size)
    torch.manual_seed(0)
    models = [("efficientnet_lite0", load_model()),
              ("resnet18 (random)", load_model("resnet18", pretrained=False))]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f}, cat photo at {args.size} px\n")
    print("| model | Grad-CAM | time (ms) | / forward + grad | / ours | raw map: max diff / max |")
    print("|---|---|---|---|---|---|")
    for name, model in models:
        target = int(model(x[None]).argmax())
        cam_rows(name, model, x, target, args.repeats)
    print("\n| model | steps | integrated gradients | time (s) | / ours | max diff / max |")
    print("|---|---|---|---|---|---|")
    for name, model in models:
        target = int(model(x[None]).argmax())
        for steps in args.steps:
            ig_rows(name, model, x, target, steps, args.ig_repeats)


if __name__ == "__main__":
    main()
