"""Environment fingerprint stored with every record: software versions, git commit, machine."""
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
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def software() -> dict:
    import torch

    from tembench import __version__

    return {
        "tembench": __version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
    }


@lru_cache(maxsize=1)
def hardware() -> dict:
    return {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "machine": platform.machine()}


def hardware_hash(hw: dict | None = None) -> str:
    """Short hash of the hardware part: equal hashes mean "the same machine" for comparisons."""
    hw = hw or hardware()
    text = "|".join(f"{k}={hw[k]}" for k in sorted(hw))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def fingerprint() -> dict:
    hw = hardware()
    return {"software": software(), "hardware": hw, "hardware_hash": hardware_hash(hw)}
