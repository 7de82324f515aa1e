"""Train the conditional fast-style network shipped in helpers/weights/fast_style.pt.

Reproduces the shipped weights (docs/fast_style_weights.md records the run):

    OMP_NUM_THREADS=2 .venv/bin/python scripts/train_fast_style.py --steps 2400 --threads 2

Content: the shared ImageNet photos (../shared/imagenet-samples/, 100 photos) plus the
shipped sample photos of ``helpers.PHOTOS``. Styles: the six public-domain paintings of
../shared/paintings/ (never copied into the repository). Loss network: the offline
EfficientNet-Lite0 with the layers of ``helpers.style.preset``.
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from helpers import PHOTOS, imagenet_samples, load_image, load_model  # noqa: E402
from helpers.fast_style import WEIGHTS, load, save, train  # noqa: E402
from helpers.images import save_image  # noqa: E402

SHARED = ROOT.parent / "shared"
PAINTINGS = ["starry_night", "great_wave", "the_scream", "udnie", "woman_with_a_hat",
             "shipwreck_of_the_minotaur"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--styles", nargs="*", default=PAINTINGS)
    ap.add_argument("--init", default=None,
                    help="continue from these weights (a second phase, e.g. with a lower lr)")
    ap.add_argument("--out", default=str(WEIGHTS))
    ap.add_argument("--checkpoint", default=None, help="checkpoint path (default: --out)")
    ap.add_argument("--previews", default=None, help="folder for preview PNGs")
    ap.add_argument("--every", type=int, default=200)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model = load_model()
    photos, _, _ = imagenet_samples(SHARED / "imagenet-samples", size=256)
    contents = list(photos) + [load_image(p, 256) for p in PHOTOS]
    styles = [load_image(SHARED / "paintings" / f"{n}.jpg", 512) for n in args.styles]
    probe = torch.stack([load_image(p, 192) for p in ["chelsea", "astronaut", "coffee"]])
    log = sys.stdout

    def preview(step, net, history):
        k = args.every
        msg = {key: sum(v[-k:]) / len(v[-k:]) for key, v in history.items()}
        print(f"step {step} " + " ".join(f"{key}={v:.4f}" for key, v in msg.items()),
              f"t={time.perf_counter() - t0:.0f}s", file=log, flush=True)
        if args.previews:
            net.eval()
            with torch.inference_mode():
                rows = [net(probe, torch.eye(len(args.styles))[i].expand(len(probe), -1))
                        for i in range(len(args.styles))]
            net.train()
            grid = torch.cat([torch.cat(list(r), -1) for r in [probe] + rows], -2)
            Path(args.previews).mkdir(parents=True, exist_ok=True)
            save_image(grid, Path(args.previews) / f"step_{step:05d}.png")

    net, phases = None, []
    if args.init:
        net = load(args.init).requires_grad_(True)
        old = net.record
        phases = old.get("phases") or [{k: v for k, v in old.items()
                                        if k not in ("content", "styles")}]
    t0 = time.perf_counter()
    res = train(model, contents, styles, names=args.styles, net=net, steps=args.steps,
                batch=args.batch,
                size=args.size, lr=args.lr, seed=args.seed, progress=False, callback=preview,
                every=args.every, checkpoint=args.checkpoint or args.out,
                threads=args.threads)
    phase = {"steps": res.steps, "seconds": round(res.seconds), "seed": args.seed,
             "batch": args.batch, "size": args.size, "lr": args.lr,
             "init": Path(args.init).name if args.init else None,
             "interrupted": res.interrupted}
    record = {"phases": phases + [phase], "styles": args.styles,
              "content": f"{len(photos)} photos of ../shared/imagenet-samples + {PHOTOS}"}
    save(res.net, args.out, **record)
    print("done", record, file=log, flush=True)


if __name__ == "__main__":
    main()
