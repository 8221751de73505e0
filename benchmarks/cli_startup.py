"""Wall time of `tembench list` beside `tembench --help`, measured side by side in one run.

Target (issue 16): listing the registry is data only, so `tembench list` costs about what `--help`
costs (no torch import; it took 3.1 s when the registry imported the models). Each command runs
``--rounds`` times, interleaved (help, list, help, list, ...) so that the machine's slow and fast
phases fall on both; the medians and their ratio are printed.

    python benchmarks/cli_startup.py [--rounds 7]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {"tembench --help": ["--help"], "tembench list": ["list"],
            "tembench claims --help": ["claims", "--help"]}


def wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tembench", *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"cli_startup.py: error: tembench {' '.join(args)} exited {done.returncode}: "
                         f"{done.stderr.strip().splitlines()[-1:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    if args.rounds <= 0:
        ap.error(f"--rounds must be positive, got {args.rounds}")
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, argv in COMMANDS.items():
            times[name].append(wall(argv))
    base = statistics.median(times["tembench --help"])
    for name, samples in times.items():
        med = statistics.median(samples)
        print(f"{name:24s} median {med:.3f} s  (min {min(samples):.3f}, max {max(samples):.3f})  "
              f"ratio to --help {med / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
