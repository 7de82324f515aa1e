"""Fast style transfer vs optimization, side by side, and the mixing panel's redraw time.

For each size (128, 256, 512 px) and the same photo and painting: the shipped feed-forward
network (one forward pass, inference mode, the median of ``--repeats`` runs after a warm-up)
against one optimization-based stylization (``helpers.style_transfer`` with notebook 12's
defaults: 60 L-BFGS steps, Fourier image, style weight 1 as the network was trained). Then
the time from a slider move in ``StyleMixer`` to the new JPEG in the image widget
(stylize + encode + widget update), at the panel's size (192 px in notebook 12).

Goals (issue 12): 256 px at most 60 ms per image and at least 50x faster than optimization;
slider move to picture well under 0.2 s.

On a shared CPU the wall times grow with the other jobs' load; with ``--threads 1`` the CPU
time columns say what one idle core would take.

Usage: .venv/bin/python bench/bench_fast_style.py [--sizes 128 256 512] [--repeats 5] [--threads 2]
Prints markdown tables.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import load_image, load_model  # noqa: E402
from helpers.fast_style import STYLE_WEIGHT, painting, shipped, stylize  # noqa: E402
from helpers.style import style_transfer  # noqa: E402
from helpers.style_mixer import StyleMixer  # noqa: E402


def median_time(fn, repeats):
    """Median wall time and median CPU time of this process (on one thread, the CPU time
    is what the wall time would be on an idle core) of ``repeats`` calls after a warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[128, 256, 512])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--style", default="starry_night")
    ap.add_argument("--photo", default="chelsea")
    ap.add_argument("--panel-size", type=int, default=192, help="notebook 12's mixer size")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, net = load_model(), shipped()
    style = painting(args.style, 512)

    print(f"threads {args.threads}, photo {args.photo}, style {args.style}, "
          f"optimization: {args.steps} L-BFGS steps\n")
    print("| size | feed-forward wall (ms/image) | CPU (ms) | optimization wall (s) | CPU (s) "
          "| speed-up (wall) | (CPU) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        photo = load_image(args.photo, size)
        fast, fast_cpu = median_time(lambda: stylize(net, photo, args.style), args.repeats)
        start, start_cpu = time.perf_counter(), time.process_time()
        style_transfer(model, photo, style, style_weight=STYLE_WEIGHT, steps=args.steps)
        slow, slow_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        print(f"| {size} | {1000 * fast:.0f} | {1000 * fast_cpu:.0f} | {slow:.1f} | {slow_cpu:.1f} "
              f"| {slow / fast:.0f}x | {slow_cpu / fast_cpu:.0f}x |", flush=True)

    mixer = StyleMixer(net, load_image, size=args.panel_size, a="starry_night", b="great_wave")
    moves = [i / 20 for i in range(21)]
    times, cpu = [], []
    for t in moves[1:]:
        start_cpu = time.process_time()
        mixer.t.value = t  # the observer redraws synchronously, as on a slider move
        times.append(mixer.last_seconds)
        cpu.append(time.process_time() - start_cpu)
    print(f"\n| panel ({args.panel_size} px) | median wall (ms) | max wall (ms) | median CPU (ms) |")
    print("|---|---:|---:|---:|")
    print(f"| slider move -> new picture | {1000 * statistics.median(times):.0f} "
          f"| {1000 * max(times):.0f} | {1000 * statistics.median(cpu):.0f} |")


if __name__ == "__main__":
    main()
