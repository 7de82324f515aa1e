"""Feature extraction vs the raw model's batched forward, and t-SNE: scikit-learn vs openTSNE.

Run: .venv/bin/python bench/bench_embedding.py [--images 128] [--tsne-points 2000] [--repeats 3]
     [--threads N]

Prints two markdown tables:
1. throughput (images/s) of ``helpers.extract_features`` (penultimate layer "pool", cache off,
   progress bar off) against the raw model called on the same batches under
   ``torch.inference_mode`` (contiguous tensors, and channels-last), at 128 and 224 px,
   batch 8; the issue asks for the helper to be within 1.2x of the raw forward;
2. t-SNE of ``--tsne-points`` real feature vectors (1280-d, offline photo crops): the
   helper (scikit-learn after PCA to 50-d), scikit-learn on the raw 1280-d features, and
   openTSNE (when installed) on the same 50-d input; time and 5-NN accuracy in the map.
Timings are medians of ``--repeats`` runs taken in rotation; every contender gets the same
number of threads (see ``--threads``); other work on the machine shows up as noise.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import data, embedding, load_model
from helpers.device import cpu_threads


def raw_forward(model, images, batch_size, channels_last):
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size]
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            model(x)


def interleaved(fns, repeats, warm_up=True):
    """Median time of each function, run in rotation so that load from other work hits all alike."""
    for fn in fns if warm_up else []:
        fn()  # warm-up (allocator, oneDNN primitives)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def extraction_table(model, n_images, repeats, batch_size=8):
    print(f"### Feature extraction, {n_images} images, batch {batch_size}, "
          f"{torch.get_num_threads()} threads\n")
    print("| size | raw forward (images/s) | raw, channels-last | helpers.extract_features | helper time / raw |")
    print("|---|---|---|---|---|")
    for size in (128, 224):
        ds = data.photos(n_per_class=-(-n_images // 11), size=size).subset(range(n_images))
        feats = data.extract_features(model, ds, batch_size=batch_size, cache=False, progress=False)
        assert feats.shape == (n_images, 1280)
        raw_t, raw_cl_t, ours_t = interleaved([
            lambda ds=ds: raw_forward(model, ds.images, batch_size, False),
            lambda ds=ds: raw_forward(model, ds.images, batch_size, True),
            lambda ds=ds: data.extract_features(model, ds, batch_size=batch_size, cache=False,
                                        progress=False)],
            repeats)
        print(f"| {size} | {n_images / raw_t:.1f} | {n_images / raw_cl_t:.1f} | "
              f"{n_images / ours_t:.1f} | {ours_t / raw_t:.2f}x (vs channels-last "
              f"{ours_t / raw_cl_t:.2f}x) |")
    print()


def tsne_table(model, n_points, repeats):
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    ds = data.photos(n_per_class=-(-n_points // 11), size=128).subset(range(n_points))
    start = time.perf_counter()
    feats = data.extract_features(model, ds, progress=False)  # cached in data/cache after the first run
    print(f"### t-SNE of {n_points} x {feats.shape[1]} features "
          f"(features took {time.perf_counter() - start:.1f} s, cache on)\n")
    x50 = PCA(n_components=50, random_state=0).fit_transform(feats.numpy())
    runs = [("helpers.tsne_2d (sklearn, PCA-50 first)", lambda: embedding.tsne_2d(feats)),
            ("sklearn TSNE on raw 1280-d", lambda: TSNE(
                init="pca", learning_rate="auto", random_state=0).fit_transform(feats.numpy()))]
    try:
        from openTSNE import TSNE as OpenTSNE
        runs.append(("openTSNE on the same PCA-50 input", lambda: np.asarray(OpenTSNE(
            perplexity=30, random_state=0, n_jobs=torch.get_num_threads()).fit(x50))))
    except ImportError:
        runs.append(("openTSNE", None))
    print("| method | time (s) | 5-NN accuracy in the map |")
    print("|---|---|---|")
    ready = [(name, fn) for name, fn in runs if fn is not None]
    maps = {name: fn() for name, fn in ready}  # warm-up, and the maps to score
    times = interleaved([fn for _, fn in ready], repeats, warm_up=False)
    for (name, _), t in zip(ready, times):
        print(f"| {name} | {t:.2f} | {embedding.knn_accuracy(maps[name], ds.labels):.3f} |")
    for name, fn in runs:
        if fn is None:
            print(f"| {name} | not installed (pip install openTSNE) | - |")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--tsne-points", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-tsne", action="store_true")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every contender (default: helpers.device.cpu_threads)")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits
    model = load_model()
    # Every contender gets the same threads: --threads, else what helpers.device.cpu_threads
    # picks (1 when other jobs already keep every core busy, else torch's default).
    with cpu_threads(args.threads) as n, threadpool_limits(n):
        print(f"torch {torch.__version__}, offline model {model.name}, {n} thread(s) for torch, "
              f"OpenMP and openTSNE (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
              f"cores)\n")
        extraction_table(model, args.images, args.repeats)
        if not args.skip_tsne:
            tsne_table(model, args.tsne_points, args.repeats)


if __name__ == "__main__":
    main()
