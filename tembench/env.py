"""Environment fingerprint stored with every run record.

``fingerprint(device, dtype)`` returns four parts:

* ``software``: tembench version and git commit, Python, torch, CUDA, cuDNN, the NVIDIA driver, platform;
* ``hardware``: CPU model, physical cores and logical threads, memory, and each visible GPU's name,
  memory and compute capability;
* ``gpu_state``: what NVML reads of the measured GPU's clocks and power limit (empty without NVML);
* ``settings``: what changes the numbers on the same machine: device, dtype, torch threads, TF32 and
  ``cudnn.benchmark`` / ``deterministic`` flags, float32 matmul precision.

``hardware_hash`` is a short hash of the ``hardware`` part only: two records with the same hash come from
"the same machine" and their latencies may be compared. Clocks, power limit, driver and settings are
recorded but not hashed, so a comparison can show them beside the numbers.
"""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty else "")


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per logical CPU (empty off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    cpus = []
    for block in text.strip().split("\n\n"):
        entry = {}
        for line in block.splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                entry[key.strip()] = value.strip()
        if entry:
            cpus.append(entry)
    return cpus


def _cpu_model(cpus: list[dict[str, str]]) -> str:
    for cpu in cpus:
        if cpu.get("model name"):
            return cpu["model name"]
    return platform.processor() or platform.machine()


def _physical_cores(cpus: list[dict[str, str]]) -> int | None:
    pairs = {(c.get("physical id"), c.get("core id")) for c in cpus if "core id" in c}
    if pairs:
        return len(pairs)
    return os.cpu_count()


def _memory_gib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cudnn_version() -> int | None:
    import torch

    try:
        return torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except Exception:  # noqa: BLE001 -- a broken cuDNN install must not stop a run
        return None


@lru_cache(maxsize=1)
def software() -> dict:
    import torch

    from tembench._version import __version__
    from tembench.runtime.nvml import driver_version

    return {
        "tembench": __version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": _cudnn_version(),
        "driver": driver_version(),
        "platform": platform.platform(),
    }


def _gpus() -> list[dict]:
    import torch

    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        gpus.append({"name": p.name, "memory_mib": p.total_memory // 2**20, "capability": f"{p.major}.{p.minor}"})
    return gpus


@lru_cache(maxsize=1)
def hardware() -> dict:
    cpus = _cpuinfo()
    return {
        "cpu": _cpu_model(cpus),
        "cpu_cores": _physical_cores(cpus),
        "cpu_threads": os.cpu_count(),
        "machine": platform.machine(),
        "memory_gib": _memory_gib(),
        "gpus": _gpus(),
    }


def settings(device: str = "cpu", dtype: str = "fp32") -> dict:
    """The switches that change the numbers on the same machine, read now (not cached)."""
    import torch

    out = {
        "device": device,
        "dtype": dtype,
        "torch_threads": torch.get_num_threads(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
    }
    return out


def _device_index(device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    _, _, index = device.partition(":")
    if index:
        return int(index)
    import torch

    return torch.cuda.current_device() if torch.cuda.is_available() else 0


def gpu_state(device: str = "cpu") -> dict:
    """Clocks and power limit of the measured GPU as NVML reads them; {} on CPU or without NVML."""
    from tembench.runtime.nvml import device_state

    index = _device_index(device)
    return {} if index is None else device_state(index)


def hardware_hash(hw: dict | None = None) -> str:
    """Short hash of the hardware part: equal hashes mean "the same machine" for comparisons."""
    hw = hw or hardware()
    text = "|".join(f"{k}={hw[k]}" for k in sorted(hw))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def fingerprint(device: str = "cpu", dtype: str = "fp32") -> dict:
    hw = hardware()
    return {
        "software": software(),
        "hardware": hw,
        "hardware_hash": hardware_hash(hw),
        "gpu_state": gpu_state(device),
        "settings": settings(device, dtype),
    }
