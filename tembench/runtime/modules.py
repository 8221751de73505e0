"""Time per module, measured with forward hooks, and named profiler ranges for traces.

The modules of interest are the model's **top-level children** (``conv1``, ``layer1``, ..., ``fc``) and its
**temporal modules**, outermost only: every module whose class is defined in :mod:`tembench.models.temporal`
(TSM's shift, TAM, ATM, EMIM attention, ...) or that the temporal-module protocol placed (a module of
one's own in a tembench host), or, for a network of one's own, the modules its registry entry's
module-name globs match (``temporal = "*.tsm"``). Hooks time them in a real forward, so costs with no
multiply-adds (a shift, a window gather) show up; their sum is ``temporal_ms``.

On CPU a hook reads the monotonic clock; on CUDA it records an event on the current stream, and the events
are read after the forward, so the hooks add no synchronisation. A ``--compile``'d model runs as one
graph, so it gets no per-module times (hooks would break the graph).
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch.nn as nn

TEMPORAL_PACKAGE = "tembench.models.temporal"


def is_temporal(module: nn.Module) -> bool:
    return type(module).__module__.startswith(TEMPORAL_PACKAGE) or hasattr(module, "tembench_temporal")


def temporal_modules(model: nn.Module, globs: tuple[str, ...] = ()) -> dict[str, nn.Module]:
    """Outermost temporal modules by qualified name, e.g. ``layer1.0.shift``; with ``globs``, the modules
    whose names match one of them."""
    from fnmatch import fnmatchcase

    found: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        hit = any(fnmatchcase(name, g) for g in globs) if globs else is_temporal(module)
        if name and hit and not any(name.startswith(p + ".") for p in found):
            found[name] = module
    return found


def top_level_modules(model: nn.Module) -> dict[str, nn.Module]:
    return dict(model.named_children())


class ModuleTimer:
    """Accumulates the time spent inside chosen modules during ``with timer:`` forwards."""

    def __init__(self, modules: dict[str, nn.Module], device: str = "cpu"):
        self.modules = modules
        self.cuda = str(device).startswith("cuda")
        self._handles: list = []
        self._open: dict[str, list] = defaultdict(list)
        self._spans: dict[str, list] = defaultdict(list)

    def _now(self):
        if self.cuda:
            import torch

            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def _pre(self, name):
        def hook(module, args):
            self._open[name].append(self._now())
        return hook

    def _post(self, name):
        def hook(module, args, output):
            if self._open[name]:
                self._spans[name].append((self._open[name].pop(), self._now()))
        return hook

    def __enter__(self) -> "ModuleTimer":
        self._spans.clear()
        for name, m in self.modules.items():
            self._handles.append(m.register_forward_pre_hook(self._pre(name)))
            self._handles.append(m.register_forward_hook(self._post(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._open.clear()

    def totals_ms(self) -> dict[str, float]:
        """Milliseconds per module summed over every call since ``__enter__``."""
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            return {n: sum(a.elapsed_time(b) for a, b in spans) for n, spans in self._spans.items()}
        return {n: sum(b - a for a, b in spans) * 1e3 for n, spans in self._spans.items()}


def module_times(model: nn.Module, fn: Callable[[], object], device: str = "cpu", reps: int = 3,
                 globs: tuple[str, ...] = ()) -> dict:
    """Median over ``reps`` forwards of the time per top-level module and per temporal module.

    Returns ``module_ms`` (top-level name -> ms), ``temporal_module_ms`` (qualified name -> ms) and
    ``temporal_ms`` (their sum; 0.0 for a model without temporal modules).
    """
    top = top_level_modules(model)
    temporal = temporal_modules(model, globs)
    watched = {**{f"top:{n}": m for n, m in top.items()}, **{f"temporal:{n}": m for n, m in temporal.items()}}
    per_rep: dict[str, list[float]] = defaultdict(list)
    for _ in range(max(1, reps)):
        with ModuleTimer(watched, device) as timer:
            fn()
            totals = timer.totals_ms()
        for key in watched:
            per_rep[key].append(totals.get(key, 0.0))
    med = {k: float(np.median(v)) for k, v in per_rep.items()}
    module_ms = {n: round(med[f"top:{n}"], 4) for n in top}
    temporal_ms = {n: round(med[f"temporal:{n}"], 4) for n in temporal}
    return {"module_ms": module_ms, "temporal_module_ms": temporal_ms,
            "temporal_ms": round(sum(temporal_ms.values()), 4)}


@contextmanager
def named_ranges(model: nn.Module) -> Iterator[None]:
    """Open a profiler range ``module:<name>`` around every top-level module and ``temporal:<name>``
    around every temporal module, so traces show them by name."""
    from torch.autograd.profiler import record_function

    watched = {**{f"module:{n}": m for n, m in top_level_modules(model).items()},
               **{f"temporal:{n}": m for n, m in temporal_modules(model).items()}}
    stacks: dict[str, list] = defaultdict(list)
    handles = []

    def pre(label):
        def hook(module, args):
            rf = record_function(label)
            rf.__enter__()
            stacks[label].append(rf)
        return hook

    def post(label):
        def hook(module, args, output):
            if stacks[label]:
                stacks[label].pop().__exit__(None, None, None)
        return hook

    for label, m in watched.items():
        handles.append(m.register_forward_pre_hook(pre(label)))
        handles.append(m.register_forward_hook(post(label)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for stack in stacks.values():  # a forward that raised leaves ranges open
            while stack:
                stack.pop().__exit__(None, None, None)


def module_rows(record: dict) -> list[dict]:
    """One row per top-level and temporal module of a runtime record, with its share (%) of the forward."""
    base = {k: record.get(k) for k in ("variant", "frames", "batch", "device", "dtype")}
    total = sum((record.get("module_ms") or {}).values()) or None
    rows = []
    for kind, key in (("top-level", "module_ms"), ("temporal", "temporal_module_ms")):
        for name, ms in (record.get(key) or {}).items():
            rows.append({**base, "module": name, "kind": kind, "ms": ms,
                         "share_pct": None if not total else round(100 * ms / total, 2)})
    return rows
