"""NVML: the background memory sampler, and its absence, which must never stop a run."""
import os
import sys
import types

import pytest

from tembench.runtime import nvml
from tembench.runtime.memory import measure_memory

# measures time, or kills and launches processes on a timetable: runs alone (see tests/conftest.py)
pytestmark = pytest.mark.serial

NVML_OK, NVML_WHY = nvml.available()


def fake_pynvml(used_steps=(100, 300, 200), pid=None):
    """A stand-in for nvidia-ml-py: device memory rises then falls; this process holds 64 MiB."""
    m = types.ModuleType("pynvml")
    state = {"i": 0, "init": 0}
    mib = 2**20

    class Mem:
        def __init__(self, used):
            self.used, self.total, self.free = used, 80_000 * mib, 80_000 * mib - used

    def memory_info(handle):
        used = used_steps[min(state["i"], len(used_steps) - 1)] * mib
        state["i"] += 1
        return Mem(used)

    m.nvmlInit = lambda: state.__setitem__("init", state["init"] + 1)
    m.nvmlShutdown = lambda: state.__setitem__("init", state["init"] - 1)
    m.nvmlDeviceGetHandleByIndex = lambda i: f"handle{i}"
    m.nvmlDeviceGetHandleByUUID = lambda u: (_ for _ in ()).throw(RuntimeError("no uuid"))
    m.nvmlDeviceGetMemoryInfo = memory_info
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=pid or os.getpid(), usedGpuMemory=64 * mib),
        types.SimpleNamespace(pid=1, usedGpuMemory=999 * mib)]
    m.nvmlSystemGetDriverVersion = lambda: b"555.42"
    m.nvmlDeviceGetName = lambda h: "Fake GPU"
    m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM, m.NVML_TEMPERATURE_GPU = 1, 2, 0
    m.nvmlDeviceGetClockInfo = lambda h, kind: {1: 1755, 2: 2619}[kind]
    m.nvmlDeviceGetMaxClockInfo = lambda h, kind: {1: 1980, 2: 2619}[kind]
    m.nvmlDeviceGetPowerManagementLimit = lambda h: 700_000
    m.nvmlDeviceGetTemperature = lambda h, kind: 41

    def not_supported(*a):
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    m.nvmlDeviceGetApplicationsClock = not_supported
    m.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: 0
    m.nvmlDeviceGetPersistenceMode = lambda h: 1
    m.state = state
    return m


def test_sampler_keeps_device_and_process_peaks(monkeypatch):
    fake = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with nvml.NvmlSampler(0, interval_s=0.001) as s:
        assert s.active
        import time

        time.sleep(0.05)
    r = s.result()
    assert r["nvml_device_peak_mib"] == 300 and r["nvml_process_peak_mib"] == 64 and r["nvml_samples"] >= 3
    assert fake.state["init"] == 0  # every nvmlInit was shut down


def test_device_state_reads_what_it_can(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    st = nvml.device_state(0)
    assert st["name"] == "Fake GPU" and st["driver"] == "555.42" and st["power_limit_w"] == 700
    assert st["sm_clock_max_mhz"] == 1980 and "sm_clock_app_mhz" not in st  # unsupported query left out
    assert nvml.driver_version() == "555.42"


def test_absent_nvml_never_crashes(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    with nvml.NvmlSampler(0) as s:
        pass
    assert not s.active and "not installed" in s.reason and s.result() == {}
    assert nvml.available() == (False, "pynvml (nvidia-ml-py) is not installed")
    assert nvml.device_state(0) == {} and nvml.driver_version() is None
    assert measure_memory(lambda: None, "cpu")["rss_increase_mib"] >= 0


def test_nvml_without_a_driver_never_crashes(monkeypatch):
    broken = types.ModuleType("pynvml")

    def init():
        raise RuntimeError("NVML Shared Library Not Found")

    broken.nvmlInit = init
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    with nvml.NvmlSampler(0) as s:
        pass
    assert not s.active and "not usable" in s.reason and s.result() == {}


def test_fingerprint_without_nvml(monkeypatch):
    from tembench import env

    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert env.gpu_state("cpu") == {} and env.gpu_state("cuda:0") == {}


@pytest.mark.skipif(not NVML_OK, reason=f"NVML is absent here ({NVML_WHY})")
def test_sampler_on_a_real_gpu():
    with nvml.NvmlSampler(0, interval_s=0.001) as s:
        pass
    r = s.result()
    assert s.active and r["nvml_device_peak_mib"] > 0 and r["nvml_samples"] >= 1
    assert nvml.device_state(0).get("name")
