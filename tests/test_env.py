"""The environment fingerprint carried by every run record."""
import re

import torch

from tembench import env


def test_fingerprint_parts():
    fp = env.fingerprint("cpu", "bf16")
    sw, hw, st = fp["software"], fp["hardware"], fp["settings"]
    assert sw["torch"] == torch.__version__ and sw["tembench"] and sw["python"]
    assert {"git_commit", "cuda", "cudnn", "driver", "platform"} <= set(sw)
    assert hw["cpu"] and hw["cpu_threads"] >= 1 and hw["cpu_cores"] >= 1 and isinstance(hw["gpus"], list)
    assert st["device"] == "cpu" and st["dtype"] == "bf16" and st["torch_threads"] == torch.get_num_threads()
    assert {"tf32_matmul", "tf32_cudnn", "cudnn_benchmark", "cudnn_deterministic", "float32_matmul_precision"} <= set(st)
    assert re.fullmatch(r"[0-9a-f]{12}", fp["hardware_hash"])
    assert fp["gpu_state"] == {} or torch.cuda.is_available()


def test_settings_follow_the_backend_flags(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    assert env.settings()["cudnn_benchmark"] is True
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert env.settings()["cudnn_benchmark"] is False


def test_hardware_hash_identifies_the_machine_not_the_settings():
    a, b = env.fingerprint("cpu", "fp32"), env.fingerprint("cpu", "fp16")
    assert a["hardware_hash"] == b["hardware_hash"] == env.hardware_hash()
    other = {**env.hardware(), "cpu": "some other CPU"}
    assert env.hardware_hash(other) != env.hardware_hash()


def test_git_commit_is_a_hash_or_none():
    commit = env.software()["git_commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit)
