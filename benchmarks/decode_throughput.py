"""Data-loading throughput of `tembench eval` on Kinetics-400-format synthetic MP4s.

Writes a synthetic K400 dataset (H.264 MP4 clips, official CSV) into a temporary directory, then
loads every video of the split through the evaluation's view loader (PyAV decode -> sampling ->
resize -> crops -> normalise; no model) with 0, 1 and 2 data-loader worker processes, and prints
clips/s (temporal clips) and videos/s for each.

    python benchmarks/decode_throughput.py                       # defaults below
    python benchmarks/decode_throughput.py --protocol tsm-dense-10x3 --workers 0,2 --frames 300
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from tembench.data.decode import decoder_info  # noqa: E402
from tembench.data.formats import read_dataset  # noqa: E402
from tembench.data.loader import ViewDataset, collate_one  # noqa: E402
from tembench.data.protocols import get_protocol  # noqa: E402
from tembench.data.synth import write_synthetic  # noqa: E402


def measure(items, protocol, frames: int, workers: int, repeat: int) -> dict:
    best = None
    for _ in range(repeat):
        ds = ViewDataset(items, protocol, frames)
        loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=workers, collate_fn=collate_one)
        t0 = time.perf_counter()
        n = failed = 0
        for sample in loader:
            n += 1
            failed += sample.error is not None
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return {"workers": workers, "videos": n, "failed": failed, "seconds": best,
            "videos_per_s": n / best, "clips_per_s": n * protocol.clips / best,
            "views_per_s": n * protocol.clips * protocol.crops / best}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos-per-class", type=int, default=4, help="validation videos per class (8 classes)")
    ap.add_argument("--frames", default="250-300", help="video length, N or MIN-MAX frames (even)")
    ap.add_argument("--size", default="340x256", help="frame size WxH (K400 copies are often short side 256)")
    ap.add_argument("--protocol", default="tsn-1x1", help="protocol preset (sampling, resize, crops)")
    ap.add_argument("--clip-frames", type=int, default=8, help="frames per clip")
    ap.add_argument("--workers", default="0,1,2", help="data-loader worker counts to measure")
    ap.add_argument("--repeat", type=int, default=2, help="runs per setting; the fastest is reported")
    ap.add_argument("--data", default=None, help="use this existing K400-format root instead of writing one")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    lo, _, hi = args.frames.partition("-")
    w, h = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="tembench-decode-") as tmp:
        root = Path(args.data) if args.data else Path(tmp) / "k400"
        if not args.data:
            t0 = time.perf_counter()
            write_synthetic("k400", root, train_per_class=0, val_per_class=args.videos_per_class, size=(w, h),
                            frames=(int(lo), int(hi or lo)))
            print(f"wrote {8 * args.videos_per_class} K400-format mp4s ({w}x{h}, {args.frames} frames) "
                  f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        ds = read_dataset(root, "val", "k400")
        protocol = get_protocol(args.protocol)
        info = decoder_info()
        print(f"# K400-format synthetic mp4, {len(ds.items)} videos, {w}x{h}; protocol {protocol.name} "
              f"({protocol.views(args.clip_frames)} views, {protocol.sampler} sampling, crop {protocol.crop_size}); "
              f"PyAV {info['pyav']} (libavcodec {info['libavcodec']}); {os.cpu_count()} CPUs")
        print(f"{'workers':>7} {'videos':>6} {'seconds':>8} {'videos/s':>9} {'clips/s':>8} {'views/s':>8}")
        for workers in (int(x) for x in args.workers.split(",")):
            r = measure(ds.items, protocol, args.clip_frames, workers, args.repeat)
            print(f"{r['workers']:>7} {r['videos']:>6} {r['seconds']:>8.2f} {r['videos_per_s']:>9.2f} "
                  f"{r['clips_per_s']:>8.2f} {r['views_per_s']:>8.2f}" + (f"  ({r['failed']} failed)" if r["failed"] else ""))


if __name__ == "__main__":
    main()
