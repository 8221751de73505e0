"""Cost of every registered variant at 8, 16 and 32 frames, with wall time and peak memory.

Target (issue 2): under 60 s wall and under 2 GiB peak RSS on the 2-core machine. Also prints the
speed of the meta-device counter against fvcore's real-forward FlopCountAnalysis for ResNet-50,
8 frames, 224x224, measured side by side in this process.

    python benchmarks/cost_all.py [--frames 8,16,32]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", default="8,16,32")
    args = ap.parse_args()
    t_start = time.perf_counter()
    import torch

    torch.set_num_threads(2)
    from tembench.api import parse_int_list
    from tembench.cost import count_spec
    from tembench.registry import registry

    frames = parse_int_list(args.frames)
    variants = registry().select()
    n, failures = 0, []
    for spec in variants:
        for t in ([None] if spec.is_ensemble else frames):
            try:
                count_spec(spec, frames=t)
            except Exception as e:  # report, keep going
                failures.append(f"{spec.id}@{t}: {type(e).__name__}: {e}")
            n += 1
    wall = time.perf_counter() - t_start
    print(f"counted {n} cases ({len(variants)} variants x frames {args.frames}) in {wall:.1f} s wall "
          f"(including import), peak RSS {peak_rss_mib():.0f} MiB")
    for f in failures:
        print("FAILED", f)

    # fvcore's real forward vs the meta-device count, ResNet-50 TSN, 8 frames, 224x224
    import logging

    from fvcore.nn import FlopCountAnalysis

    from tembench.cost.counter import count_ops, meta_build
    from tembench.models.resnet_video import build

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    model = build("resnet50", None, {}, 8, 1000).eval()
    x = torch.randn(1, 3, 8, 224, 224)
    t0 = time.perf_counter()
    with torch.no_grad():
        fv = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()
    t_fv = time.perf_counter() - t0
    t0 = time.perf_counter()
    with meta_build():
        meta_model = build("resnet50", None, {}, 8, 1000)
    ours = count_ops(meta_model, torch.empty(1, 3, 8, 224, 224, device="meta"))
    t_ours = time.perf_counter() - t0
    ours_total = sum(n for *_, n in ours.items())
    print(f"ResNet-50 8x224: fvcore real forward {t_fv:.3f} s ({fv:,}), meta count incl. build {t_ours:.3f} s "
          f"({ours_total:,}); speed ratio fvcore/meta = {t_fv / t_ours:.1f}x; equal: {fv == ours_total}")
    ok = wall < 60 and peak_rss_mib() < 2048 and not failures
    print("PASS" if ok else "FAIL", f"(targets: < 60 s wall, < 2048 MiB peak RSS; wall {wall:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
