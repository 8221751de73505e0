"""torch.profiler traces in the TensorBoard plugin's layout, which Perfetto also opens.

``write_trace`` profiles a few forwards and writes ``DIR/<run>/<worker>.pt.trace.json``: one *run* per
measured case (variant, frames, size, batch, dtype, device) and one *worker* per process, as
``tensorboard --logdir DIR`` (``pip install tembench[tb]``) expects. The file is plain Chrome-trace JSON:
https://ui.perfetto.dev and ``chrome://tracing`` open it as well. Each top-level module of the model
appears as a range named ``module:<name>`` and each temporal module as ``temporal:<name>``.
"""
from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Callable

import torch.nn as nn

from tembench.runtime.modules import named_ranges


def safe_name(text: str) -> str:
    """A file-system-safe name: ``tsm/tsm-r50`` -> ``tsm_tsm-r50``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def default_worker() -> str:
    return safe_name(f"{socket.gethostname()}_{os.getpid()}")


def write_trace(model: nn.Module, fn: Callable[[], object], out_dir: str | Path, run: str,
                device: str = "cpu", worker: str | None = None, warmup: int = 1, active: int = 2,
                module_ranges: bool = True) -> Path:
    """Profile ``warmup + active`` calls of ``fn`` (the ``active`` ones are recorded); return the trace path.

    ``module_ranges=False`` leaves the module hooks out (a compiled model runs as one graph)."""
    from contextlib import nullcontext

    from torch.profiler import ProfilerActivity, profile, schedule

    path = Path(out_dir) / safe_name(run) / f"{worker or default_worker()}.pt.trace.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    activities = [ProfilerActivity.CPU]
    if str(device).startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    with named_ranges(model) if module_ranges else nullcontext(), profile(
        activities=activities,
        schedule=schedule(wait=0, warmup=warmup, active=active, repeat=1),
        on_trace_ready=lambda prof: prof.export_chrome_trace(str(path)),
        record_shapes=True,
    ) as prof:
        for _ in range(warmup + active):
            fn()
            prof.step()
    return path
