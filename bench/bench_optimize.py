"""Per-step cost of helpers.optimize: against a raw forward+gradient, and against Lucent.

Run: .venv/bin/python bench/bench_optimize.py [--steps 10] [--repeats 5] [--sizes 128 224]

1. Overhead: the same model, input and objective (a class logit, so the whole network runs)
   as a bare ``model(x)`` + ``torch.autograd.grad`` loop, versus ``optimize`` with a pixel image
   (plain, and with all Yosinski regularizers).
2. Feature visualization against Lucent's ``render_vis`` with equivalent settings: Fourier +
   decorrelated parameterization, Lucid's standard transforms, upsampling to 224, Adam 0.05,
   a channel objective and a class objective.

Methods are timed in interleaved rounds (A B C A B C ...) and the median per-step time is
reported, so a machine shared with other jobs affects all methods alike.
"""
import argparse
import statistics
import time
import warnings

import torch

import helpers
from helpers import objectives as O
from helpers import regularizers as R
from helpers.optimize import optimize
from helpers.params import fourier_image, pixel_image

warnings.filterwarnings("ignore")


def raw_loop(model, size, cls, steps):
    x = torch.rand(1, 3, size, size, device=helpers.device())
    opt_x = x.clone().requires_grad_(True)
    opt = torch.optim.Adam([opt_x], lr=0.05)

    def run():
        for _ in range(steps):
            g, = torch.autograd.grad(-model(opt_x)[0, cls], opt_x)
            opt_x.grad = g
            opt.step()
    return run


def engine(model, size, objective, steps, **kw):
    def run():
        optimize(model, pixel_image(size, seed=0), objective, steps=steps, progress=False,
                 seed=0, **kw)
    return run


def engine_fourier(model, size, objective, steps):
    def run():
        optimize(model, fourier_image(size, seed=0), objective,
                 transforms=R.standard_transforms() + [R.Upsample(224)], steps=steps,
                 lr=0.05, progress=False, seed=0)
    return run


def lucent(model, size, layer_channel, steps):
    from lucent.optvis import param, render, transform

    def run():
        render.render_vis(model, layer_channel, lambda: param.image(size, fft=True,
                                                                     decorrelate=True),
                          optimizer=lambda p: torch.optim.Adam(p, lr=0.05),
                          transforms=list(transform.standard_transforms), thresholds=(steps,),
                          preprocess=False, progress=False, show_image=False,
                          fixed_image_size=224)
    return run


def timed(fns, steps, repeats):
    """Median seconds per step of each function, measured in interleaved rounds."""
    for fn in fns.values():  # warm-up
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[k].append((time.perf_counter() - t) / steps)
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    ap.add_argument("--skip-lucent", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (1 is far steadier on a machine shared by many jobs)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = helpers.load_model()
    cls, layer, ch = 130, "blocks.8", 10
    yosinski = dict(transforms=[R.Jitter(4)],
                    post_steps=[R.Decay(0.003), R.BlurEvery(4, 0.5), R.ClipSmallNorm(5),
                                R.ClipSmallContribution(5)])
    print(f"device: {helpers.device()}, torch threads: {torch.get_num_threads()}, "
          f"{args.steps} steps x {args.repeats} interleaved rounds, median ms/step\n")

    print("## Loop overhead (class logit objective, whole network, Adam)\n")
    print("| size | raw forward+grad+Adam | optimize (pixels) | ratio | optimize + Yosinski "
          "regularizers | ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        t = timed({"raw": raw_loop(model, size, cls, args.steps),
                   "engine": engine(model, size, O.class_score(cls), args.steps),
                   "yosinski": engine(model, size, O.class_score(cls), args.steps, **yosinski)},
                  args.steps, args.repeats)
        print(f"| {size} | {t['raw'] * 1e3:.1f} | {t['engine'] * 1e3:.1f} | "
              f"{t['engine'] / t['raw']:.2f}x | {t['yosinski'] * 1e3:.1f} | "
              f"{t['yosinski'] / t['raw']:.2f}x |")

    if args.skip_lucent:
        return
    print("\n## Feature visualization vs Lucent render_vis (Fourier+decorrelated, standard "
          "transforms, upsample to 224, Adam 0.05)\n")
    print("| size | objective | Lucent | helpers.optimize | speed-up |")
    print("|---:|---|---:|---:|---:|")
    for size in args.sizes:
        for label, ours, theirs in [
                (f"channel {layer}:{ch}", O.channel(layer, ch), f"{layer.replace('.', '_')}:{ch}"),
                (f"class {cls} (fc)", O.class_score(cls), f"fc:{cls}")]:
            t = timed({"lucent": lucent(model, size, theirs, args.steps),
                       "ours": engine_fourier(model, size, ours, args.steps)},
                      args.steps, args.repeats)
            print(f"| {size} | {label} | {t['lucent'] * 1e3:.1f} | {t['ours'] * 1e3:.1f} | "
                  f"{t['lucent'] / t['ours']:.2f}x |")


if __name__ == "__main__":
    main()
