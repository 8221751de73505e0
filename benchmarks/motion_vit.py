"""The motion-direction task (tembench/sanity.py) on a 4-layer, 64-wide CLIP ViT ("vit-tiny", 32x32
input, 8x8 patches), side by side in one run: the frame-mean ViT (order-blind control), token shift,
and ILA (released code's fusion, and the paper's token fusion).

Why a script and not ``registry/motion.toml``: ILA does not learn this task from scratch within the
benchmark's budget, so a ``motion/ila`` entry would fail ``tembench check`` on every commit. This
script keeps that finding reproducible; a change to ILA that makes it learn shows here first.

    python benchmarks/motion_vit.py [--epochs 10] [--lr 2e-3] [--only ila]
"""
from __future__ import annotations

import argparse
import json

CASES = {
    "frame-mean": (None, {}),
    "tshift": ("tshift", {}),
    "ila": ("ila", {}),
    "ila-token": ("ila", {"fusion": "token"}),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--only", default="", help="comma-separated cases (default: all of %s)" % ", ".join(CASES))
    args = ap.parse_args()
    if args.epochs <= 0:
        ap.error(f"--epochs must be a positive integer, got {args.epochs}")
    if not args.lr > 0:
        ap.error(f"--lr must be a positive number, got {args.lr}")
    names = [n for n in args.only.split(",") if n] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    import torch

    from tembench import sanity
    from tembench.models import clip_video

    torch.set_num_threads(2)
    cfg = sanity.MotionConfig(epochs=args.epochs, lr=args.lr)
    data = (sanity.training_data(cfg), sanity.held_out_data(cfg))
    print(f"motion task: {cfg.frames} frames, {cfg.size}px, {cfg.epochs} epochs, lr {cfg.lr}, chance {sanity.CHANCE:.0f}%")
    for name in names:
        temporal, options = CASES[name]
        torch.manual_seed(cfg.seed)
        model = clip_video.build("vit-tiny", temporal, options, cfg.frames, 2)
        blind = sanity.is_order_blind(model, cfg)
        result = sanity.train_and_evaluate(model, cfg, data)
        row = {"case": name, "params": sum(p.numel() for p in model.parameters()), "order_blind": blind,
               "top1": result["top1"], "final_loss": result["final_loss"], "train_s": result["train_s"]}
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
