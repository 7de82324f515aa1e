"""Occlusion vs Captum's Occlusion, and the cost of saliency / guided backprop.

Run: .venv/bin/python bench/bench_attribution.py [--size 224] [--window 16] [--stride 8]

Prints two markdown tables:
1. occlusion of the offline model on the cat photo (window 16, stride 8 at 224 px:
   27 x 27 = 729 occluded copies): helpers.occlusion vs captum.attr.Occlusion at
   perturbations_per_eval 1 and at its best setting, with the largest difference
   of the maps relative to the map's maximum;
2. saliency, guided backprop and deconvnet vs one forward plus one gradient-to-input
   pass (torch.autograd.grad with frozen parameters), and vs ``.backward()`` with
   trainable parameters, which computes weight gradients too.
Every contender runs once untimed first (oneDNN primitives, allocator, and for ours the
one-off ``models.inference_copy``); timings are the median of ``--repeats`` runs after it.
Other work on the machine shows up as noise.
"""
import argparse
import copy
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import load_image, load_model
from helpers.attribution import deconvnet, guided_backprop, occlusion, saliency

warnings.filterwarnings("ignore", message="Setting backward hooks")


def timed(fn, repeats, warmup=True):
    if warmup:  # allocator, oneDNN primitives, one-off caches
        fn()
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per occlusion setting")
    parser.add_argument("--ppe", type=int, nargs="+", default=[1, 2, 4, 8, 32],
                        help="Captum perturbations_per_eval settings to try")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for every contender (1 helps when other jobs load the CPU)")
    args = parser.parse_args()
    from captum.attr import Occlusion

    if args.threads:
        torch.set_num_threads(args.threads)

    model, x = load_model(), load_image("chelsea", args.size)
    target = 285  # Egyptian cat, the top-1 class
    n = (-(-(args.size - args.window) // args.stride) + 1) ** 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f}, offline model, "
          f"{args.size} px, window {args.window}, stride {args.stride}: {n} occluded copies\n")

    print("| occlusion | time (s) | copies/s | speed-up of ours | max diff / max |")
    print("|---|---|---|---|---|", flush=True)
    ours_t, ours = timed(lambda: occlusion(model, x, target, window=args.window,
                                           stride=args.stride), args.repeats)
    print(f"| helpers.occlusion (batch 2, inference_copy, inference_mode) | {ours_t:.2f} | "
          f"{n / ours_t:.0f} | 1.00x | - |", flush=True)
    occ = Occlusion(lambda z: model(z).softmax(-1))
    rows = []
    for ppe in args.ppe:
        def captum(ppe=ppe):
            return occ.attribute(x[None], sliding_window_shapes=(3, args.window, args.window),
                                 strides=(3, args.stride, args.stride), target=target,
                                 baselines=0.0, perturbations_per_eval=ppe)[0, 0]
        t, ref = timed(captum, args.repeats)
        err = float((ours - ref).abs().max() / ref.abs().max())
        rows.append((ppe, t))
        print(f"| captum Occlusion, perturbations_per_eval={ppe} | {t:.2f} | {n / t:.0f} | "
              f"{t / ours_t:.2f}x | {err:.1e} |", flush=True)
    best = min(rows, key=lambda r: r[1])
    print(f"\nCaptum's best here: perturbations_per_eval={best[0]}; ours is "
          f"{best[1] / ours_t:.2f}x faster.")

    def forward_grad():
        xx = x[None].clone().requires_grad_(True)
        return torch.autograd.grad(model(xx)[0, target], xx)[0]

    trainable = copy.deepcopy(model).requires_grad_(True)

    def backward_trainable():
        xx = x[None].clone().requires_grad_(True)
        trainable.zero_grad(set_to_none=True)
        trainable(xx)[0, target].backward()
        return xx.grad

    reps = max(7, 3 * args.repeats)
    base, _ = timed(forward_grad, reps)
    print(f"\n| gradient method ({args.size} px) | time (ms) | / forward + grad-to-input |")
    print("|---|---|---|")
    for name, fn in [("forward + grad to input (frozen params)", forward_grad),
                     ("saliency", lambda: saliency(model, x, target)),
                     ("guided_backprop", lambda: guided_backprop(model, x, target)),
                     ("deconvnet", lambda: deconvnet(model, x, target)),
                     ("guided_backprop of a neuron (blocks.10.act1)",
                      lambda: guided_backprop(model, x, ("blocks.10.act1", 3))),
                     ("forward + .backward() with trainable params", backward_trainable)]:
        t = base if fn is forward_grad else timed(fn, reps)[0]
        print(f"| {name} | {1000 * t:.1f} | {t / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
