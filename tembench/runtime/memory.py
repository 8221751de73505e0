"""The memory pass: one forward measured on its own, never inside the timing loop.

* **CUDA**: after ``empty_cache()`` and ``reset_peak_memory_stats()``, the peak bytes held by tensors
  (``max_memory_allocated``) and by the caching allocator (``max_memory_reserved``), the part above what was
  allocated before the forward (weights and input), allocator retries, and NVML's device-wide and
  per-process peaks sampled by a background thread (:class:`~tembench.runtime.nvml.NvmlSampler`; absent
  NVML leaves those fields out).
* **CPU**: the peak resident set size (RSS) during the forward minus the RSS just before it. On Linux the
  kernel's high-water mark is reset first (``/proc/self/clear_refs``) and free heap is returned with
  ``malloc_trim`` so memory kept by the allocator from earlier forwards does not hide the increase;
  elsewhere a background thread samples the RSS.

Out-of-memory errors are recognised by :func:`is_oom` so the caller can record them per case.
"""
from __future__ import annotations

import ctypes
import gc
import os
import threading
from pathlib import Path
from typing import Callable

MIB = 2**20


def is_oom(exc: BaseException) -> bool:
    """True for CUDA out-of-memory and for a CPU allocation failure."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    if isinstance(exc, (RuntimeError, MemoryError)):
        text = str(exc).lower()
        return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text \
            or "cannot allocate memory" in text
    return False


def free_memory(device: str = "cpu", collect: bool = False) -> None:
    """Drop what an earlier case left behind: the CUDA cache, or free heap returned to the OS.

    ``collect`` also runs the garbage collector (after an error, whose traceback may hold tensors);
    on CUDA it always runs, since cached blocks held by garbage would count as used.
    """
    cuda = str(device).startswith("cuda")
    if collect or cuda:
        gc.collect()
    if cuda:
        import torch

        torch.cuda.empty_cache()
    else:
        malloc_trim()


#: glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
HELD_HEAP_BYTES = 1 << 30


def hold_heap() -> bool:
    """Keep freed memory in the process: glibc serves blocks up to 1 GiB from its heap (not from fresh
    ``mmap`` regions that are unmapped when freed) and does not hand the heap's free top back to the kernel.

    With glibc's defaults, the activations of a large forward are unmapped when freed and the next forward
    faults them in again, zeroed page by page; how many depends on the heap's layout, which varies between
    processes. True when glibc accepted both settings (False elsewhere: nothing is changed). Process-wide
    and not undone; :func:`malloc_trim` (used by the memory pass) still returns free memory on request.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, HELD_HEAP_BYTES)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, 2 * HELD_HEAP_BYTES))
    except (OSError, AttributeError):
        return False


def malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# ---- CPU ---------------------------------------------------------------------------------------

def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def current_rss() -> int | None:
    """Resident set size in bytes (None where /proc is not available)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _RssSampler:
    def __init__(self, interval_s: float = 0.001):
        self.interval_s = interval_s
        self.peak = current_rss() or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tembench-rss", daemon=True)

    def _run(self):
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, current_rss() or 0)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss() or 0)


def cpu_peak_rss_increase(fn: Callable[[], object]) -> dict:
    """Run ``fn`` once; the peak RSS increase over the RSS just before it, in MiB, and how it was read."""
    malloc_trim()
    before = current_rss()
    if before is None:  # no /proc: ru_maxrss only grows, so the increase is a lower bound
        import resource

        peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn()
        peak1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scale = 1 if os.uname().sysname == "Darwin" else 1024
        return {"rss_increase_mib": round((peak1 - peak0) * scale / MIB, 1), "rss_method": "ru_maxrss"}
    if _reset_peak_rss():
        fn()
        hwm = _status_kib("VmHWM")
        if hwm is not None:
            return {"rss_increase_mib": round(max(0, hwm * 1024 - before) / MIB, 1), "rss_method": "vmhwm"}
    with _RssSampler() as s:
        fn()
    return {"rss_increase_mib": round(max(0, s.peak - before) / MIB, 1), "rss_method": "sampled"}


# ---- CUDA --------------------------------------------------------------------------------------

def cuda_memory(fn: Callable[[], object], device: str, nvml_interval_s: float = 0.005) -> dict:
    """Run ``fn`` once on ``device``; peak allocated / reserved, the increase and NVML peaks, in MiB."""
    import torch

    from tembench.runtime.nvml import NvmlSampler

    dev = torch.device(device)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    torch.cuda.synchronize(dev)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    base_alloc = torch.cuda.memory_allocated(dev)
    base_reserved = torch.cuda.memory_reserved(dev)
    retries0 = torch.cuda.memory_stats(dev).get("num_alloc_retries", 0)
    with NvmlSampler(index, interval_s=nvml_interval_s) as sampler:
        fn()
        torch.cuda.synchronize(dev)
    peak_alloc = torch.cuda.max_memory_allocated(dev)
    peak_reserved = torch.cuda.max_memory_reserved(dev)
    mib = lambda b: round(b / MIB, 1)  # noqa: E731
    out = {
        "mem_peak_alloc_mib": mib(peak_alloc),
        "mem_peak_reserved_mib": mib(peak_reserved),
        "mem_forward_mib": mib(peak_alloc - base_alloc),
        "mem_baseline_alloc_mib": mib(base_alloc),
        "mem_baseline_reserved_mib": mib(base_reserved),
        "alloc_retries": torch.cuda.memory_stats(dev).get("num_alloc_retries", 0) - retries0,
    }
    out.update(sampler.result())
    if not sampler.active:
        out["nvml"] = sampler.reason
    return out


def measure_memory(fn: Callable[[], object], device: str = "cpu") -> dict:
    """The memory fields of a record for one call of ``fn`` on ``device``."""
    if str(device).startswith("cuda"):
        return cuda_memory(fn, device)
    return cpu_peak_rss_increase(fn)

