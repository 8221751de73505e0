"""One runtime case: build the model, then time it, measure its memory, trace it, find its largest batch.

A case is (variant, frames, input size, views, batch). Views are batched the way evaluation does it:
the ``crops x clips`` views of each video go through the network together, so one forward takes
``batch * crops * clips`` clips, and throughput is reported both per clip and per video.

Each pass runs apart from the others (timing; per-module time with hooks; memory; trace; batch search),
so the hooks, the profiler and the memory probes never sit inside the timed loop. An out-of-memory error
ends the case with ``status = "oom"`` and the next case runs on a cleaned-up device; any other error
ends it with ``status = "error"`` and its message. ``KeyboardInterrupt`` is never caught here.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from tembench.errors import UsageError, one_line
from tembench.registry import VariantSpec
from tembench.runtime.memory import cpu_peak_rss_increase, free_memory, hold_heap, is_oom, measure_memory
from tembench.runtime.modules import module_times
from tembench.runtime.timing import TimingConfig, time_fn
from tembench.runtime.trace import write_trace

DTYPES = ("fp32", "fp16", "bf16")
CPU_DEFAULT_THREADS = 1


@dataclass
class RuntimeOptions:
    """What a runtime profile measures and how. Defaults: latency only, CPU, fp32, batch 1.

    ``timing`` defaults to :meth:`TimingConfig.for_device`. ``threads`` (torch intra-op threads) defaults
    to 1 on a CPU, as ``torch.utils.benchmark.Timer`` does: a parallel forward waits at every operator for
    its slowest thread, so on a shared machine any other runnable task stalls it, and five 2-thread runs of
    TSM-R50 8x224 on the 2-core VM varied by 3.4-7.8% (coefficient of variation) against 1.5% with one
    thread. Give the core count to measure the whole CPU; on CUDA the default is torch's own. ``steady_heap`` (CPU only): before measuring,
    glibc is told to keep freed memory in the process (:func:`~tembench.runtime.memory.hold_heap`), so a
    forward reuses the pages of the previous one instead of faulting in fresh zeroed pages from the kernel
    (50-90 thousand page faults per TSM-R50 8x224 forward with glibc's defaults, a number that changes from
    process to process). It is process-wide and stays on; each record says ``heap`` = ``held`` or ``default``.
    The memory pass is unaffected: it returns free memory to the kernel before it measures.
    """

    latency: bool = True
    memory: bool = False
    device: str = "cpu"
    dtype: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    trace_dir: str | Path | None = None
    find_max_batch: bool = False
    modules: bool = True
    module_reps: int = 3
    timing: TimingConfig | None = None
    max_batch_limit: int = 4096
    max_batch_trial_s: float = 60.0
    threads: int | None = None
    seed: int = 0
    steady_heap: bool = True

    def __post_init__(self):
        self.device = check_device(self.device)
        if self.timing is None:
            self.timing = TimingConfig.for_device(self.device)
        if self.threads is None and self.device == "cpu":
            self.threads = CPU_DEFAULT_THREADS
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads <= 0):
            raise UsageError(f"threads must be a positive integer, got {self.threads!r}")
        if self.dtype not in DTYPES:
            raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")


@dataclass(frozen=True)
class Case:
    spec: VariantSpec
    frames: int | None
    size: int | None
    crops: int
    clips: int
    batch: int

    @property
    def t(self) -> int:
        return self.spec.frames if self.frames is None else self.frames

    @property
    def s(self) -> int:
        return self.spec.input_size if self.size is None else self.size

    @property
    def clips_per_forward(self) -> int:
        return self.batch * self.crops * self.clips

    @property
    def label(self) -> str:
        return f"{self.spec.id}-t{self.t}-s{self.s}-v{self.crops}x{self.clips}-b{self.batch}"


def check_device(device: str) -> str:
    import torch

    device = str(device).strip().lower()
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r}: CUDA is not available on this machine (torch {torch.__version__}); "
                             "use --device cpu")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return device
    raise UsageError(f"device must be cpu, cuda or cuda:N, got {device!r}")


def torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def prepare_model(spec: VariantSpec, frames: int, opts: RuntimeOptions, model=None):
    """(model, callable): the model (built from ``spec``, or the given ``model``) in eval mode on the
    options' device, dtype and memory format, and what to call (the compiled model with ``--compile``)."""
    import torch

    from tembench.models.build import build_model

    torch.manual_seed(opts.seed)
    model = build_model(spec, frames=frames) if model is None else model
    model = model.eval().to(device=opts.device, dtype=torch_dtype(opts.dtype))
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, torch.compile(model) if opts.compile else model


def make_input(clips: int, frames: int, size: int, opts: RuntimeOptions, spec: VariantSpec | None = None):
    """A seeded random clip batch (clips, 3, frames, size, size) for tembench's models; for a network of
    one's own, what its ``layout`` or ``example_input`` says, as (args, kwargs), floating tensors in the
    options' dtype on its device."""
    import torch

    if spec is not None and spec.is_python:
        from tembench.models.factory import example_inputs

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(opts.seed)
            args, kwargs = example_inputs(spec, clips, frames, size)
        move = lambda t: (t.to(device=opts.device, dtype=torch_dtype(opts.dtype)) if t.is_floating_point()  # noqa: E731
                          else t.to(opts.device)) if isinstance(t, torch.Tensor) else t
        return tuple(move(a) for a in args), {k: move(v) for k, v in kwargs.items()}
    x = torch.randn(clips, 3, frames, size, size, generator=torch.Generator().manual_seed(opts.seed))
    x = x.to(device=opts.device, dtype=torch_dtype(opts.dtype))
    return x.contiguous(memory_format=torch.channels_last_3d) if opts.channels_last else x


def make_forward(call, x) -> Callable[[], object]:
    """A no-grad forward of ``call`` on ``x``: a tensor, or (args, kwargs) from :func:`make_input`."""
    import torch

    args, kwargs = x if isinstance(x, tuple) else ((x,), {})

    def forward():
        with torch.inference_mode():
            return call(*args, **kwargs)

    return forward


def prepare(spec: VariantSpec, frames: int, size: int, clips: int, opts: RuntimeOptions, model=None):
    """(model, input, forward) for one case."""
    model, call = prepare_model(spec, frames, opts, model)
    x = make_input(clips, frames, size, opts, spec)
    return model, x, make_forward(call, x)


def base_record(case: Case, opts: RuntimeOptions) -> dict:
    return {
        "variant": case.spec.id,
        "frames": case.t,
        "input_size": case.s,
        "views": f"{case.t}x{case.crops}x{case.clips}",
        "batch": case.batch,
        "clips_per_forward": case.clips_per_forward,
        "device": opts.device,
        "dtype": opts.dtype,
        "channels_last": opts.channels_last,
        "compile": opts.compile,
        "status": "ok",
    }


def cost_fields(case: Case) -> dict:
    """GFLOPs per view (fvcore) and params, so that ``temporal_ms`` sits beside ``temporal_gflops``.

    A model the counter cannot count is still timed: the record then says why in ``cost_error``."""
    from tembench.cost.records import cost_record

    try:
        r = cost_record(case.spec, case.frames, case.size, case.crops, case.clips, "fvcore")
    except Exception as e:  # noqa: BLE001
        return {"cost_error": one_line(e)}
    return {k: r[k] for k in ("classes", "gflops", "gflops_total", "params", "temporal_gflops", "temporal_params")}


def measure_case(case: Case, opts: RuntimeOptions, max_batch_cache: dict | None = None) -> dict:
    """Every requested measurement of one case as one record (see :mod:`tembench.results.schema`)."""
    with torch_threads(opts.threads):
        return _measure_case(case, opts, max_batch_cache)


def measure_module(model, opts: RuntimeOptions, *, name: str | None = None, frames: int = 8, size: int = 224,
                   batch: int = 1, layout: str = "BCTHW", example_input=None, temporal: tuple[str, ...] = ()) -> dict:
    """The runtime record of any ``nn.Module`` (moved to the options' device and dtype, in eval mode): its
    input is a random clip in ``layout`` (``BCTHW`` or ``BTCHW``), or ``example_input(batch, frames,
    size) -> (args, kwargs)``; ``temporal``: module-name globs timed as its temporal modules."""
    from tembench.cost.counting import count

    spec = VariantSpec(id=name or type(model).__name__, arch="python", backbone="", temporal=", ".join(temporal) or None,
                       options={}, classes=0, frames=frames, input_size=size, paper="", layout=layout,
                       example_input=example_input or "", temporal_globs=tuple(temporal))

    def cost() -> dict:
        try:
            r = count(model, frames, size, layout=layout, example_input=example_input, temporal=list(temporal) or None)
        except Exception as e:  # noqa: BLE001 -- still timed
            return {"cost_error": one_line(e)}
        return {"gflops": r.macs / 1e9, "gflops_total": r.macs * batch / 1e9, "params": r.params,
                "temporal_gflops": None if r.temporal_macs is None else r.temporal_macs / 1e9}

    with torch_threads(opts.threads):
        return _measure_case(Case(spec, frames, size, 1, 1, batch), opts, None, model=model, cost=cost)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (unchanged when None)."""
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _measure_case(case: Case, opts: RuntimeOptions, max_batch_cache: dict | None, model=None, cost=None) -> dict:
    rec = base_record(case, opts)
    if opts.device == "cpu":
        rec["heap"] = "held" if opts.steady_heap and hold_heap() else "default"
    if case.spec.is_ensemble:
        rec.update(status="skipped", error=f"{case.spec.id} is an ensemble; profile its members "
                                           f"({', '.join(m.variant + '@' + str(m.frames) for m in case.spec.members)})")
        return rec
    rec.update(cost_fields(case) if cost is None else cost())
    given, model, x, forward = model, None, None, None
    try:
        model, x, forward = prepare(case.spec, case.t, case.s, case.clips_per_forward, opts, given)
        if opts.latency:
            timing = time_fn(forward, opts.device, opts.timing)
            rec.update(timing.summary())
            seconds = rec["latency_ms"] / 1e3
            rec["clips_per_s"] = case.clips_per_forward / seconds
            rec["videos_per_s"] = case.batch / seconds
            if opts.modules and not opts.compile:  # hooks would break a compiled graph (and recompile it)
                rec.update(module_times(model, forward, opts.device, opts.module_reps, case.spec.temporal_globs))
        if opts.memory:
            if not opts.latency:
                forward()  # first call: lazy initialisation, compilation, kernel selection
            rec.update(measure_memory(forward, opts.device))
        if opts.trace_dir is not None:
            rec["trace"] = str(write_trace(model, forward, opts.trace_dir, f"{case.label}-{opts.dtype}-{opts.device}",
                                           device=opts.device, module_ranges=not opts.compile))
    except Exception as e:  # noqa: BLE001 -- recorded per case; the run goes on
        rec.update(status="oom" if is_oom(e) else "error", error=one_line(e))
    finally:
        del model, x, forward
        free_memory(opts.device, collect=rec["status"] != "ok")
    if opts.find_max_batch and rec["status"] in ("ok", "oom"):
        key = (case.spec.id, case.t, case.s, case.crops, case.clips)
        cache = max_batch_cache if max_batch_cache is not None else {}
        if key not in cache:
            cache[key] = search_max_batch(case, opts, given)
            free_memory(opts.device)
        rec.update(cache[key])
    return rec


def failed_runtime_record(case: Case, opts: RuntimeOptions, reason: str) -> dict:
    """The record of a case whose measurement failed outside the per-pass handling."""
    return {**base_record(case, opts), "status": "error", "error": reason}


# ---- largest batch ------------------------------------------------------------------------------

def find_max_batch(try_batch: Callable[[int], tuple[float, float]], limit: int = 4096,
                   available_bytes: float | None = None, trial_s: float | None = None) -> dict:
    """The largest batch for which ``try_batch(batch)`` does not run out of memory.

    ``try_batch`` runs one forward and returns (bytes it needed, seconds it took); an out-of-memory error
    means "does not fit". Batches double from 1 until one does not fit, then a bisection finds the edge.
    A trial is skipped as "does not fit" when the bytes (``available_bytes``) or seconds (``trial_s``)
    extrapolated linearly from the largest fitting batch exceed the limit: on a CPU, running out of memory
    ends the process rather than raising. ``max_batch_bound`` says what ended the search:
    ``oom`` (a real out-of-memory error), ``memory-estimate``, ``time-estimate`` or ``limit``.
    """
    fit, fail, bound = 0, None, "limit"
    used: dict[int, tuple[float, float]] = {}
    trials = 0

    def fits(b: int) -> bool:
        nonlocal bound, trials
        if fit:
            need, took = used[fit]
            if available_bytes is not None and need * b / fit > available_bytes:
                bound = "memory-estimate"
                return False
            if trial_s is not None and took * b / fit > trial_s:
                bound = "time-estimate"
                return False
        trials += 1
        try:
            used[b] = try_batch(b)
        except Exception as e:  # noqa: BLE001
            if not is_oom(e):
                raise
            bound = "oom"
            return False
        return True

    b = 1
    while fail is None:
        if b > limit:
            break
        if fits(b):
            fit, b = b, b * 2
        else:
            fail = b
    while fail is not None and fail - fit > 1:
        mid = (fit + fail) // 2
        if fits(mid):
            fit = mid
        else:
            fail = mid
    return {"max_batch": fit, "max_batch_bound": bound, "max_batch_trials": trials}


def _available_bytes() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 * 0.8
    except (OSError, ValueError, IndexError):
        pass
    return None


def search_max_batch(case: Case, opts: RuntimeOptions, model=None) -> dict:
    """``find_max_batch`` for one case: one model, a new input per trial, the device cleaned after each."""
    import time

    import torch

    cuda = opts.device.startswith("cuda")
    model, call = prepare_model(case.spec, case.t, opts, model)

    def try_batch(b: int) -> tuple[float, float]:
        failed = True
        x = forward = None
        try:
            x = make_input(b * case.crops * case.clips, case.t, case.s, opts, case.spec)
            forward = make_forward(call, x)
            t0 = time.perf_counter()
            if cuda:
                torch.cuda.reset_peak_memory_stats(opts.device)
                forward()
                torch.cuda.synchronize(opts.device)
                need = torch.cuda.max_memory_allocated(opts.device)
            else:
                need = cpu_peak_rss_increase(forward)["rss_increase_mib"] * 2**20
            failed = False
            return need, time.perf_counter() - t0
        finally:
            del x, forward
            free_memory(opts.device, collect=failed)

    del model  # `call` (the same weights) goes with `try_batch` when this returns
    return find_max_batch(try_batch, opts.max_batch_limit, available_bytes=None if cuda else _available_bytes(),
                          trial_s=opts.max_batch_trial_s)


# ---- grid and signals -----------------------------------------------------------------------------

def runtime_cases(grid, batches: list[int] | None = None) -> list[Case]:
    """The runtime grid: each (variant, frames, size, crops, clips) case of ``grid`` x each batch size."""
    return [Case(spec, t, s, crops, clips, b) for spec, t, s, crops, clips in grid for b in batches or [1]]
