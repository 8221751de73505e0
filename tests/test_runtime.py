"""Runtime profiling: the timing loop, memory, OOM per case, the batch search, per-module time, scaling."""
import itertools
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tembench.errors import UsageError
from tembench.registry import get_variant
from tembench.results.schema import check_record
from tembench.runtime import Case, RuntimeOptions, TimingConfig, find_max_batch, measure_case, summarize, time_fn
from tembench.runtime import runner
from tembench.runtime.memory import cpu_peak_rss_increase, is_oom
from tembench.runtime.modules import temporal_modules
from tembench.runtime.scaling import fit_growth, scaling_rows

# measures time, or kills and launches processes on a timetable: runs alone (see tests/conftest.py)
pytestmark = pytest.mark.serial

FAST = TimingConfig(warmup_iters=1, warmup_s=0.0, min_reps=3, budget_s=0.05)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")




def tiny_case(variant="tsn/tsn-r18", frames=2, size=32, batch=1, crops=1, clips=1):
    return Case(get_variant(variant), frames, size, crops, clips, batch)


def fast_options(**kw):
    return RuntimeOptions(timing=FAST, module_reps=1, **kw)


class ScriptedClock:
    """Returns the scripted seconds per call, one value per `time` call, cycling."""

    name = "scripted"

    def __init__(self, per_call):
        self.values = itertools.cycle(per_call)
        self.calls = []

    def time(self, fn, number):
        self.calls.append(number)
        dt = next(self.values) * number
        return dt, dt


# ---- timing loop --------------------------------------------------------------------------------

def test_summary_statistics():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["iqr"] == 2.0 and s["spread"] == pytest.approx(2 / 3)
    assert s["p90"] == pytest.approx(61.6) and s["n"] == 5 and s["min"] == 1.0


def test_timing_stops_when_the_spread_is_under_target():
    clock = ScriptedClock([0.010])
    t = time_fn(lambda: None, config=TimingConfig(warmup_iters=4, warmup_s=0, min_reps=5, budget_s=60,
                                                               min_run_s=0), clock=clock)
    assert t.converged and len(t.samples_ms) == 5 and t.warmup_iters == 4
    assert t.median_ms == pytest.approx(10.0) and t.number == 1
    s = t.summary()
    assert s["latency_ms"] == pytest.approx(10.0) and s["latency_iqr_ms"] == 0 and s["reps"] == 5


def test_timing_keeps_sampling_a_noisy_function_until_the_budget_or_max_reps():
    clock = ScriptedClock([0.010, 0.030])
    t = time_fn(lambda: None, config=TimingConfig(warmup_iters=1, warmup_s=0, min_reps=3, max_reps=40,
                                                  budget_s=60), clock=clock)
    assert not t.converged and len(t.samples_ms) == 40
    t = time_fn(lambda: None, config=TimingConfig(warmup_iters=1, warmup_s=0, min_reps=3, budget_s=0),
                clock=ScriptedClock([0.010, 0.030]))
    assert not t.converged and len(t.samples_ms) == 3  # the minimum count beats an empty budget


def test_a_converged_loop_still_samples_for_the_minimum_run_time():
    import time

    t = time_fn(lambda: time.sleep(0.002), config=TimingConfig(warmup_iters=1, warmup_s=0, min_reps=3,
                                                                min_run_s=0.1, budget_s=5, target_spread=1.0))
    assert t.converged and len(t.samples_ms) >= 10


def test_warmup_runs_for_a_minimum_time_as_well_as_a_minimum_count():
    calls = []
    time_fn(lambda: calls.append(1), config=TimingConfig(warmup_iters=1, warmup_s=0.05, min_reps=1, budget_s=0))
    assert len(calls) > 2  # a ~free call warms up for 50 ms, far more than one iteration


def test_short_calls_are_batched_into_samples_above_the_clock_resolution():
    clock = ScriptedClock([1e-5])
    t = time_fn(lambda: None, config=TimingConfig(warmup_iters=2, warmup_s=0, min_reps=3, min_sample_s=0.002),
                clock=clock)
    assert t.number == 200 and clock.calls[-1] == 200 and t.median_ms == pytest.approx(0.01)


def test_real_cpu_timing_records_the_clock_and_threads():
    x = torch.randn(64, 64)
    t = time_fn(lambda: x @ x, "cpu", FAST)
    s = t.summary()
    assert s["clock"] == "perf_counter" and s["threads"] == 1
    assert s["latency_ms"] > 0 and s["reps"] >= 3 and len(s["latency_samples_ms"]) == s["reps"]


def test_device_defaults_sample_a_cpu_for_longer_and_a_budget_caps_the_window():
    cpu, cuda = TimingConfig.for_device("cpu"), TimingConfig.for_device("cuda:1")
    assert (cpu.min_run_s, cpu.budget_s) == (20.0, 30.0)
    assert (cuda.min_run_s, cuda.budget_s) == (2.0, 10.0)
    quick = TimingConfig.for_device("cpu", 3.0, warmup_s=0.5)
    assert (quick.min_run_s, quick.budget_s, quick.warmup_s) == (3.0, 3.0, 0.5)
    assert RuntimeOptions().timing == cpu  # the options' default follows the device


HEAP_PROBE = """
import resource, sys, torch
from tembench.runtime.memory import hold_heap
held = hold_heap() if sys.argv[1] == "held" else None
faults = []
for _ in range(4):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(48 * 2**20 // 4).sum()  # a 48 MiB temporary, as a large forward's activations
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(held, min(faults[1:]))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists() or platform.libc_ver()[0] != "glibc",
                    reason="glibc on Linux only (mallopt and /proc)")
def test_held_heap_stops_a_repeated_temporary_from_page_faulting():
    """With glibc's defaults a 48 MiB temporary is mmapped and unmapped each time (about 12k page faults
    per call); once the heap is held the second and later calls reuse the same pages."""
    out = {}
    for mode in ("default", "held"):
        res = subprocess.run([sys.executable, "-c", HEAP_PROBE, mode], capture_output=True, text=True, check=True)
        held, faults = res.stdout.split()
        out[mode] = int(faults)
        assert held == ("True" if mode == "held" else "None")
    assert out["default"] > 10_000 and out["held"] < 500, out


def test_cpu_timing_defaults_to_one_thread_whatever_torch_has():
    assert RuntimeOptions().threads == 1 and RuntimeOptions(threads=2).threads == 2
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rec = measure_case(tiny_case(), fast_options())
        assert rec["threads"] == 1 and torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(before)


def test_cpu_records_say_whether_the_heap_was_held():
    assert measure_case(tiny_case(), fast_options())["heap"] == "held"


def test_bad_timing_config_is_a_usage_error():
    with pytest.raises(UsageError):
        TimingConfig(min_reps=0)
    with pytest.raises(UsageError):
        RuntimeOptions(dtype="fp64")
    with pytest.raises(UsageError, match="device must be"):
        RuntimeOptions(device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_usage_error():
    with pytest.raises(UsageError, match="CUDA is not available"):
        RuntimeOptions(device="cuda")


# ---- one case, the record ----------------------------------------------------------------------

def test_runtime_record_has_the_documented_fields():
    rec = measure_case(tiny_case(batch=2, crops=3, clips=1), fast_options(memory=True))
    assert check_record(rec, "runtime") == []
    assert rec["status"] == "ok" and rec["views"] == "2x3x1" and rec["clips_per_forward"] == 6
    assert rec["clips_per_s"] == pytest.approx(6 / (rec["latency_ms"] / 1e3))
    assert rec["videos_per_s"] == pytest.approx(2 / (rec["latency_ms"] / 1e3))
    assert rec["gflops"] > 0 and rec["temporal_gflops"] == 0 and rec["temporal_ms"] == 0
    assert list(rec["module_ms"]) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                      "avgpool", "fc"]
    assert rec["rss_increase_mib"] >= 0 and rec["rss_method"] in ("vmhwm", "sampled", "ru_maxrss")
    json.dumps(rec)  # storable as is


def test_zero_flop_shift_shows_up_as_temporal_time():
    rec = measure_case(tiny_case("tsm/tsm-r18"), fast_options())
    assert rec["temporal_gflops"] == 0 and rec["temporal_ms"] > 0
    assert set(rec["temporal_module_ms"]) == {f"layer{s}.{b}.shift" for s in range(1, 5) for b in range(2)}


def test_outermost_temporal_modules_only():
    from tembench.models.build import build_model

    found = temporal_modules(build_model("tam/tanet-r50", frames=2))
    assert found and all(name.endswith(".temporal") for name in found)


def test_ensembles_are_skipped_with_a_reason():
    rec = measure_case(Case(get_variant("tsm/tsm-r50-en"), None, 32, 1, 1, 1), fast_options())
    assert rec["status"] == "skipped" and "ensemble" in rec["error"] and check_record(rec, "runtime") == []


def test_bf16_and_channels_last_run_on_cpu():
    rec = measure_case(tiny_case(), fast_options(dtype="bf16", channels_last=True, latency=True))
    assert rec["status"] == "ok" and rec["dtype"] == "bf16" and rec["channels_last"] is True


# ---- out of memory -----------------------------------------------------------------------------

def test_oom_is_recognised():
    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"))
    assert is_oom(MemoryError())
    assert not is_oom(RuntimeError("shape mismatch")) and not is_oom(ValueError("out of memory"))


def _oom_above(limit, monkeypatch):
    """Make every forward of more than `limit` clips raise CUDA's out-of-memory error."""
    real = runner.make_forward

    def make_forward(call, x):
        if x.shape[0] > limit:
            def forward():
                raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {x.shape[0]} GiB")
            return forward
        return real(call, x)

    monkeypatch.setattr(runner, "make_forward", make_forward)


def test_a_simulated_oom_case_is_recorded_and_the_run_goes_on(monkeypatch):
    from tembench.api import runtime_profile

    _oom_above(2, monkeypatch)
    seen = []
    recs = runtime_profile(["tsn/tsn-r18"], frames=[2], size=32, batches="4,1", options=fast_options(memory=True),
                           on_record=seen.append)
    assert [r["status"] for r in recs] == ["oom", "ok"] and seen == recs
    assert "out of memory" in recs[0]["error"] and "latency_ms" not in recs[0]
    assert recs[1]["latency_ms"] > 0
    assert all(check_record(r, "runtime") == [] for r in recs)


def test_find_max_batch_doubles_then_bisects():
    tried = []

    def try_batch(b):
        tried.append(b)
        if b > 37:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return b * 1e6, 0.01

    out = find_max_batch(try_batch, limit=4096)
    assert out == {"max_batch": 37, "max_batch_bound": "oom", "max_batch_trials": len(tried)}
    assert tried[:7] == [1, 2, 4, 8, 16, 32, 64] and len(tried) <= 12


def test_find_max_batch_guards_cpu_memory_and_time_and_passes_other_errors():
    out = find_max_batch(lambda b: (b * 1e9, 0.01), limit=4096, available_bytes=10e9)
    assert out["max_batch"] == 10 and out["max_batch_bound"] == "memory-estimate"
    out = find_max_batch(lambda b: (1.0, b * 1.0), limit=4096, trial_s=20)
    assert out["max_batch"] == 20 and out["max_batch_bound"] == "time-estimate"
    assert find_max_batch(lambda b: (1.0, 0.0), limit=6)["max_batch"] == 4
    with pytest.raises(ValueError):
        find_max_batch(lambda b: (_ for _ in ()).throw(ValueError("bug")))


def test_find_max_batch_leaves_the_case_measurements_alone(monkeypatch):
    _oom_above(3, monkeypatch)
    opts = fast_options(find_max_batch=True)
    cache = {}
    recs = [measure_case(tiny_case(batch=b), opts, cache) for b in (1, 2)]
    assert [r["batch"] for r in recs] == [1, 2] and [r["clips_per_forward"] for r in recs] == [1, 2]
    assert all(r["max_batch"] == 3 and r["max_batch_bound"] == "oom" for r in recs)
    assert len(cache) == 1  # searched once per (variant, frames, size, views)


# ---- memory ------------------------------------------------------------------------------------

def test_cpu_peak_rss_increase_sees_a_large_temporary():
    small = cpu_peak_rss_increase(lambda: None)["rss_increase_mib"]
    big = cpu_peak_rss_increase(lambda: torch.ones(64 * 2**20 // 4).sum())
    assert big["rss_increase_mib"] >= 48 > small


@needs_cuda
def test_cuda_latency_and_memory():
    rec = measure_case(tiny_case(), fast_options(device="cuda", memory=True))
    assert rec["status"] == "ok" and rec["clock"] == "cuda_event" and rec["latency_wall_ms"] > 0
    assert rec["mem_peak_alloc_mib"] > 0 and rec["mem_peak_reserved_mib"] >= rec["mem_peak_alloc_mib"]
    assert check_record(rec, "runtime") == []


@needs_cuda
def test_cuda_find_max_batch_hits_a_real_oom():
    opts = fast_options(device="cuda", latency=False, find_max_batch=True)
    opts.max_batch_limit = 2**20
    rec = measure_case(tiny_case(size=224, frames=8), opts)
    assert rec["max_batch"] > 1 and rec["max_batch_bound"] == "oom"


# ---- scaling -----------------------------------------------------------------------------------

def test_growth_exponent():
    assert fit_growth([8, 16, 32], [3 * t**2 for t in (8, 16, 32)])["exponent"] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        fit_growth([8, 8], [1.0, 2.0])


def test_scaling_rows_flag_faster_than_linear_growth():
    recs = [{"variant": "x/y", "frames": t, "input_size": 224, "batch": 1, "views": f"{t}x1x1", "device": "cpu",
             "dtype": "fp32", "status": "ok", "gflops": 2.0 * t, "latency_ms": 0.5 * t**1.5} for t in (8, 16, 32)]
    rows = {r["metric"]: r for r in scaling_rows(recs)}
    assert rows["gflops"]["exponent"] == pytest.approx(1.0) and rows["gflops"]["growth"] == "linear or slower"
    assert rows["latency_ms"]["exponent"] == pytest.approx(1.5) and rows["latency_ms"]["growth"] == "faster than linear"
    assert rows["latency_ms"]["frames"] == "8,16,32"
    assert scaling_rows(recs[:1]) == []
