"""The timing loop: warm up, then sample until the spread is small or the time budget is spent.

One *sample* is the mean time of ``number`` back-to-back calls (``number`` is 1 unless a call is shorter
than ``min_sample_s``, as for tiny models, where the clock's resolution and overhead would dominate).

* **Warm-up** runs until both ``warmup_iters`` calls and ``warmup_s`` seconds are done (the first calls of
  a new shape allocate, pick kernels and, with ``cudnn.benchmark``, autotune).
* **CPU**: a monotonic clock (``time.perf_counter``) around the calls; the torch thread count is recorded.
* **CUDA**: a pair of CUDA events around each sample, read after synchronising on the end event, so the
  device time is measured without a host synchronisation inside the timed region; the host wall time of
  the same samples (with synchronisation) is kept beside it.
* **Stopping**: after at least ``min_reps`` samples and ``min_run_s`` seconds (or the whole budget, if
  smaller), stop when IQR / median <= ``target_spread``; otherwise stop when ``budget_s`` is spent or
  ``max_reps`` samples are taken (``converged`` says which). ``min_reps`` is taken even past the budget.
* **Defaults per device** (:meth:`TimingConfig.for_device`): on a CPU the samples span at least 20 s
  (budget 30 s); on CUDA at least 2 s (budget 10 s). A shared or virtual CPU changes speed in phases of
  tens of seconds (the neighbours' load, the host's clocks): a median over a few seconds reports the phase
  it happened to fall in, and five separate ``tembench profile`` runs of TSM-R50 8x224 differed by 8%
  (coefficient of variation) with 8 s windows and by under 3% with 20 s windows. The spread inside a short
  window does not reveal this, so the window has a minimum length rather than only a spread target.

The statistics follow ``torch.utils.benchmark``: median, IQR and the spread IQR / median, plus p90.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np


@dataclass
class TimingConfig:
    warmup_iters: int = 3
    warmup_s: float = 1.0
    min_reps: int = 5
    max_reps: int = 1000
    target_spread: float = 0.05
    budget_s: float = 10.0
    min_run_s: float = 2.0
    min_sample_s: float = 0.002

    #: (min_run_s, budget_s) by device kind; see the module docstring
    DEVICE_DEFAULTS = {"cpu": (20.0, 30.0), "cuda": (2.0, 10.0)}

    @classmethod
    def for_device(cls, device: str = "cpu", budget_s: float | None = None, **overrides) -> "TimingConfig":
        """The defaults for ``device`` (``cpu`` or ``cuda[:N]``). A ``budget_s`` also caps the minimum
        window, so ``budget_s=3`` gives quick (and less repeatable) numbers."""
        min_run_s, default_budget = cls.DEVICE_DEFAULTS["cuda" if str(device).startswith("cuda") else "cpu"]
        budget = default_budget if budget_s is None else budget_s
        overrides.setdefault("min_run_s", min(min_run_s, budget))
        return cls(budget_s=budget, **overrides)

    def __post_init__(self):
        from tembench.errors import UsageError

        for name in ("warmup_iters", "min_reps", "max_reps"):
            if getattr(self, name) < (0 if name == "warmup_iters" else 1):
                raise UsageError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("warmup_s", "budget_s", "min_run_s", "min_sample_s", "target_spread"):
            if not getattr(self, name) >= 0:
                raise UsageError(f"{name} must be a non-negative number, got {getattr(self, name)!r}")


@dataclass
class Timing:
    """Per-call times in milliseconds and their summary."""

    samples_ms: list[float]
    number: int
    warmup_iters: int
    warmup_s: float
    converged: bool
    threads: int
    clock: str
    wall_samples_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.samples_ms))

    def summary(self) -> dict:
        s = summarize(self.samples_ms)
        out = {
            "latency_ms": s["median"],
            "latency_p90_ms": s["p90"],
            "latency_iqr_ms": s["iqr"],
            "latency_mean_ms": s["mean"],
            "latency_min_ms": s["min"],
            "latency_spread": s["spread"],
            "reps": len(self.samples_ms),
            "calls_per_rep": self.number,
            "warmup_iters": self.warmup_iters,
            "warmup_s": round(self.warmup_s, 3),
            "converged": self.converged,
            "clock": self.clock,
            "threads": self.threads,
            "latency_samples_ms": [round(x, 4) for x in self.samples_ms],
        }
        if self.wall_samples_ms:
            out["latency_wall_ms"] = float(np.median(self.wall_samples_ms))
        return out

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(samples: list[float]) -> dict:
    """median, p90, IQR (p75 - p25), spread = IQR / median, mean, min, max, n."""
    if not samples:
        raise ValueError("no samples")
    a = np.asarray(samples, dtype=float)
    q25, median, q75, p90 = np.percentile(a, [25, 50, 75, 90])
    return {"median": float(median), "p90": float(p90), "iqr": float(q75 - q25),
            "spread": float((q75 - q25) / median) if median > 0 else math.inf,
            "mean": float(a.mean()), "min": float(a.min()), "max": float(a.max()), "n": int(a.size)}


class CpuClock:
    """Seconds for ``number`` calls of ``fn`` by the monotonic clock."""

    name = "perf_counter"

    def time(self, fn: Callable[[], object], number: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        return dt, dt


class CudaClock:
    """Seconds for ``number`` calls by CUDA events (device time) and by the host clock with synchronisation."""

    name = "cuda_event"

    def __init__(self, device):
        import torch

        self.torch = torch
        self.device = torch.device(device)

    def time(self, fn: Callable[[], object], number: int) -> tuple[float, float]:
        torch = self.torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        wall = time.perf_counter() - t0
        return start.elapsed_time(end) / 1e3, wall


def make_clock(device: str = "cpu"):
    return CudaClock(device) if str(device).startswith("cuda") else CpuClock()


def time_fn(fn: Callable[[], object], device: str = "cpu", config: TimingConfig | None = None,
            clock=None) -> Timing:
    """Warm up ``fn`` and time it; see the module docstring for the rules."""
    import torch

    cfg = config or TimingConfig()
    clock = clock or make_clock(device)
    # warm-up: a minimum count and a minimum time
    t_start = time.perf_counter()
    warm: list[float] = []
    while len(warm) < cfg.warmup_iters or time.perf_counter() - t_start < cfg.warmup_s:
        warm.append(clock.time(fn, 1)[0])
        if len(warm) >= 1000 * max(cfg.warmup_iters, 1):
            break
    warmup_s = time.perf_counter() - t_start
    per_call = float(np.median(warm[1:] or warm)) if warm else clock.time(fn, 1)[0]
    number = max(1, math.ceil(cfg.min_sample_s / per_call)) if per_call > 0 else 1

    samples: list[float] = []
    walls: list[float] = []
    converged = False
    min_run_s = min(cfg.min_run_s, cfg.budget_s)
    t0 = time.perf_counter()
    while True:
        dt, wall = clock.time(fn, number)
        samples.append(dt / number * 1e3)
        walls.append(wall / number * 1e3)
        n, elapsed = len(samples), time.perf_counter() - t0
        if n >= cfg.min_reps and elapsed >= min_run_s and summarize(samples)["spread"] <= cfg.target_spread:
            converged = True
            break
        if n >= cfg.max_reps or (n >= cfg.min_reps and elapsed >= cfg.budget_s):
            break
    return Timing(samples_ms=samples, number=number, warmup_iters=len(warm), warmup_s=warmup_s,
                  converged=converged, threads=torch.get_num_threads(), clock=clock.name,
                  wall_samples_ms=walls if isinstance(clock, CudaClock) else [])
