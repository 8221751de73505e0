"""Runtime profiling: latency and throughput, memory, time per module, traces, growth with frames.

Measurements happen in separate passes over one built model (see :mod:`tembench.runtime.runner`):

* :mod:`~tembench.runtime.timing`: warm-up, then samples until the spread is small or the budget is spent;
* :mod:`~tembench.runtime.memory`: CUDA peak allocated / reserved and NVML, or the CPU peak RSS increase;
* :mod:`~tembench.runtime.modules`: time per top-level and per temporal module (``temporal_ms``);
* :mod:`~tembench.runtime.trace`: torch.profiler traces for TensorBoard and Perfetto;
* :mod:`~tembench.runtime.scaling`: the growth exponent of cost and latency with frames;
* :mod:`~tembench.runtime.nvml`: NVML, absent without harm.
"""
from tembench.runtime.runner import (Case, RuntimeOptions, failed_runtime_record, find_max_batch, measure_case,
                                     runtime_cases, torch_threads)
from tembench.runtime.scaling import fit_growth, scaling_rows
from tembench.runtime.timing import Timing, TimingConfig, summarize, time_fn

__all__ = ["Case", "RuntimeOptions", "Timing", "TimingConfig", "failed_runtime_record", "find_max_batch", "fit_growth",
           "measure_case", "runtime_cases", "scaling_rows", "summarize", "time_fn", "torch_threads"]
