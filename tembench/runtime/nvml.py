"""NVML (``import pynvml``, from the ``nvidia-ml-py`` package) with graceful absence.

Every function here returns ``None`` / ``{}`` or an inactive sampler when the module is missing, the
driver is absent or a query is not supported; nothing here raises into a measurement.

:class:`NvmlSampler` polls a GPU's memory in a background thread: device-wide used memory (what
``nvidia-smi`` shows: CUDA context, library workspaces, other processes) and this process's own use.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

MIB = 2**20


class _Nvml:
    """One initialised NVML session (reference-counted ``nvmlInit`` / ``nvmlShutdown``)."""

    def __init__(self):
        self.module: Any = None
        self.reason = ""
        try:
            import pynvml
        except ImportError:
            self.reason = "pynvml (nvidia-ml-py) is not installed"
            return
        try:
            pynvml.nvmlInit()
        except Exception as e:  # noqa: BLE001 -- NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self.reason = f"NVML is not usable here: {e}"
            return
        self.module = pynvml

    def close(self) -> None:
        if self.module is not None:
            try:
                self.module.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass
            self.module = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def available() -> tuple[bool, str]:
    """(True, "") when NVML initialises; otherwise (False, why)."""
    with _Nvml() as nv:
        return nv.module is not None, nv.reason


def _read(fn: Callable[[], Any]) -> Any:
    try:
        value = fn()
    except Exception:  # noqa: BLE001 -- NVMLError_NotSupported, NoPermission, ...
        return None
    return value.decode() if isinstance(value, bytes) else value


def _handle(m: Any, cuda_index: int) -> Any:
    """NVML handle of CUDA device ``cuda_index``: by UUID (right under CUDA_VISIBLE_DEVICES), else by index."""
    try:
        import torch

        uuid = str(torch.cuda.get_device_properties(cuda_index).uuid)
        return m.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception:  # noqa: BLE001 -- no CUDA, old torch, MIG, ...
        return m.nvmlDeviceGetHandleByIndex(cuda_index)


def driver_version() -> str | None:
    with _Nvml() as nv:
        if nv.module is None:
            return None
        return _read(nv.module.nvmlSystemGetDriverVersion)


def device_state(index: int = 0) -> dict:
    """Name, driver, clocks (MHz), power limit (W), temperature and throttle reasons of CUDA device ``index``."""
    with _Nvml() as nv:
        m = nv.module
        if m is None:
            return {}
        h = _read(lambda: _handle(m, index))
        if h is None:
            return {}
        clock = lambda kind, which: _read(lambda: which(h, kind))  # noqa: E731
        power = _read(lambda: m.nvmlDeviceGetPowerManagementLimit(h))
        state = {
            "name": _read(lambda: m.nvmlDeviceGetName(h)),
            "driver": _read(m.nvmlSystemGetDriverVersion),
            "sm_clock_mhz": clock(m.NVML_CLOCK_SM, m.nvmlDeviceGetClockInfo),
            "mem_clock_mhz": clock(m.NVML_CLOCK_MEM, m.nvmlDeviceGetClockInfo),
            "sm_clock_max_mhz": clock(m.NVML_CLOCK_SM, m.nvmlDeviceGetMaxClockInfo),
            "mem_clock_max_mhz": clock(m.NVML_CLOCK_MEM, m.nvmlDeviceGetMaxClockInfo),
            "sm_clock_app_mhz": clock(m.NVML_CLOCK_SM, m.nvmlDeviceGetApplicationsClock),
            "power_limit_w": None if power is None else power / 1000,
            "temperature_c": _read(lambda: m.nvmlDeviceGetTemperature(h, m.NVML_TEMPERATURE_GPU)),
            "throttle_reasons": _read(lambda: m.nvmlDeviceGetCurrentClocksThrottleReasons(h)),
            "persistence_mode": _read(lambda: m.nvmlDeviceGetPersistenceMode(h)),
        }
        return {k: v for k, v in state.items() if v is not None}


class NvmlSampler:
    """Peak GPU memory sampled by a background thread while the ``with`` block runs.

    >>> with NvmlSampler(0) as s:
    ...     model(x)
    >>> s.result()  # {} when NVML is absent; never raises
    {'nvml_device_peak_mib': ..., 'nvml_process_peak_mib': ..., 'nvml_samples': ...}
    """

    def __init__(self, index: int = 0, interval_s: float = 0.005, pid: int | None = None):
        self.index = index
        self.interval_s = interval_s
        self.pid = os.getpid() if pid is None else pid
        self.active = False
        self.reason = ""
        self.device_peak: int | None = None
        self.process_peak: int | None = None
        self.samples = 0
        self._nvml: _Nvml | None = None
        self._handle = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "NvmlSampler":
        self._nvml = _Nvml()
        if self._nvml.module is None:
            self.reason = self._nvml.reason
            return self
        try:
            self._handle = _handle(self._nvml.module, self.index)
        except Exception as e:  # noqa: BLE001
            self.reason = f"NVML has no device {self.index}: {e}"
            self._nvml.close()
            return self
        self.active = True
        self.sample()
        self._thread = threading.Thread(target=self._run, name="tembench-nvml", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        """Read device and process memory once and keep the peaks."""
        m = self._nvml.module if self._nvml else None
        if m is None:
            return
        used = _read(lambda: m.nvmlDeviceGetMemoryInfo(self._handle).used)
        if used is not None:
            self.device_peak = max(self.device_peak or 0, used)
        procs = _read(lambda: m.nvmlDeviceGetComputeRunningProcesses(self._handle)) or []
        mine = [p.usedGpuMemory for p in procs if p.pid == self.pid and p.usedGpuMemory is not None]
        if mine:
            self.process_peak = max(self.process_peak or 0, sum(mine))
        self.samples += 1

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.sample()
        if self._nvml is not None:
            self._nvml.close()
        return None

    def result(self) -> dict:
        if not self.active:
            return {}
        mib = lambda b: None if b is None else round(b / MIB, 1)  # noqa: E731
        return {"nvml_device_peak_mib": mib(self.device_peak), "nvml_process_peak_mib": mib(self.process_peak),
                "nvml_samples": self.samples}
