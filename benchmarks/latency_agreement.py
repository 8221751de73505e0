"""tembench's timing loop against torch.utils.benchmark, in the same process, on the same forward.

Target (issue 6): TSN-R18, 8 frames, 112x112, batch 1, CPU, fp32: tembench's median latency and
``torch.utils.benchmark.Timer(...).blocked_autorange()`` agree within 5%. Both time the same callable
(the forward under ``inference_mode``) with the same number of torch threads (1 by default, the default
of both tools). The two are measured
back to back in each of ``--rounds`` rounds, in alternating order, so that a change in machine load hits
both alike; the result is the median over rounds of each round's ratio (the ratio of the two medians
over all rounds is printed too). Many short rounds (15 x 1 s each) beat a few long ones: this machine's
speed drifts in phases of tens of seconds, and a short round puts both timers in the same phase (with
5 rounds of 3 s, single rounds' ratios ranged 0.93-1.18 on the same code).

    python benchmarks/latency_agreement.py [--variant tsn/tsn-r18] [--frames 8] [--size 112] [--rounds 15]
"""
from __future__ import annotations

import argparse
import statistics
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="tsn/tsn-r18")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--seconds", type=float, default=1.0, help="time budget of each measurement")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: tembench's CPU default and Timer's own)")
    ap.add_argument("--tolerance", type=float, default=0.05)
    args = ap.parse_args()

    import torch
    from torch.utils.benchmark import Timer

    from tembench.registry import get_variant
    from tembench.runtime import RuntimeOptions, TimingConfig, time_fn
    from tembench.runtime.runner import prepare

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    opts = RuntimeOptions()
    _, _, forward = prepare(get_variant(args.variant), args.frames, args.size, 1, opts)
    config = TimingConfig(budget_s=args.seconds)
    timer = Timer(stmt="forward()", globals={"forward": forward}, num_threads=threads)
    print(f"{args.variant}, {args.frames} frames, {args.size}x{args.size}, batch 1, CPU fp32, {threads} threads")
    ours, theirs, ratios = [], [], []
    for i in range(args.rounds):
        if i % 2:
            m = timer.blocked_autorange(min_run_time=args.seconds)
            t = time_fn(forward, "cpu", config)
        else:
            t = time_fn(forward, "cpu", config)
            m = timer.blocked_autorange(min_run_time=args.seconds)
        ratios.append(t.median_ms / (m.median * 1e3))
        ours.append(t.median_ms)
        theirs.append(m.median * 1e3)
        print(f"round {i + 1}: tembench {t.median_ms:8.2f} ms (n={len(t.samples_ms)}, spread "
              f"{t.summary()['latency_spread']:.3f})   blocked_autorange {m.median * 1e3:8.2f} ms "
              f"(blocks={len(m.times)}, x{m.number_per_run})   ratio {t.median_ms / (m.median * 1e3):.4f}")
    a, b = statistics.median(ours), statistics.median(theirs)
    ratio = statistics.median(ratios)
    ok = abs(ratio - 1) <= args.tolerance
    print(f"median over rounds: tembench {a:.2f} ms, torch.utils.benchmark {b:.2f} ms (ratio {a / b:.4f})")
    print(f"ratio tembench / torch.utils.benchmark = {ratio:.4f} (median of the rounds' ratios; "
          f"{'within' if ok else 'OUTSIDE'} {100 * args.tolerance:.0f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
