"""The Python API behind every command: each CLI command calls one function here."""
from __future__ import annotations

import re
from typing import Callable

from tembench.errors import UsageError
from tembench.grid import parse_int_list, parse_views, profile_cases  # noqa: F401  (parse_views: part of the API)
from tembench.registry import VariantSpec, registry


def _convention_names() -> tuple[str, ...]:
    from tembench.cost.conventions import CONVENTIONS  # no torch

    return tuple(CONVENTIONS)


CONVENTION_NAMES = _convention_names()
"""The counting conventions (``--convention`` choices): fvcore, fvcore-legacy, flops, ..."""


def checked_registry():
    """The registry, with what only the models and the counter know checked once (option values,
    counting conventions): every command that builds or counts a model starts here."""
    from tembench.cost.conventions import check_claims
    from tembench.models.build import check_variant

    return registry().check((check_variant, check_claims))


def variant_row(v: VariantSpec) -> dict:
    return {
        "variant": v.id,
        "arch": v.arch,
        "backbone": v.backbone,
        "temporal": v.temporal or "",
        "options": ", ".join(f"{k}={v.options[k]}" for k in v.options) if v.options else "",
        "frames": v.frames,
        "input_size": v.input_size,
        "classes": v.classes,
        "claims": len(v.claims),
        "members": " + ".join(f"{m.variant}@{m.frames}" for m in v.members),
        "description": v.description,
        "missing": ", ".join(v.missing),  # packages it needs that are not installed
        "install": v.install_hint if v.missing else "",
    }


def list_variants(patterns: list[str] | None = None) -> list[dict]:
    """Registered variants matching the fnmatch patterns (all when none)."""
    return [variant_row(v) for v in registry().select(patterns)]


def check_cases(cases) -> None:
    """Every case's input fits its model (e.g. a ViT size divisible by the patch), before anything runs."""
    from tembench.models.build import check_input

    seen = set()
    for spec, t, s, *_ in cases:
        key = (spec.id, t, s)
        if key not in seen:
            seen.add(key)
            check_input(spec, t, s)


def profile(patterns: list[str] | None = None, frames: list[int] | str | None = None, size: int | None = None,
            views: str | None = None, convention: str = "fvcore",
            on_record: Callable[[dict], None] | None = None) -> list[dict]:
    """Cost records for every matching variant at each frame count (default: the variant's own).

    A case that cannot be counted gives a record with ``status`` ``error`` and the reason; the others go on."""
    return run_profile(patterns, frames, size, views, convention, save=False, progress=False,
                       on_record=on_record).records


def _split_import_paths(patterns: list[str] | None, kwargs, layout: str | None):
    """(registry patterns, specs of the factories named by import path)."""
    import json

    from tembench.registry import IMPORT_PATH_RE

    paths = [p for p in patterns or [] if IMPORT_PATH_RE.match(p)]
    if (kwargs is not None or layout is not None) and not paths:
        raise UsageError("--kwargs and --layout apply to a factory named by import path, e.g. "
                         "`tembench profile my_pkg.models:build_net --kwargs '{\"depth\": 50}'`")
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError as e:
            raise UsageError(f"--kwargs must be a JSON object, e.g. '{{\"depth\": 50}}', got {kwargs!r} ({e})") from None
    if not paths:
        return patterns, []
    from tembench.models.factory import adhoc_spec

    from tembench.cost import count_spec

    rest = [p for p in patterns if p not in paths]
    specs = [adhoc_spec(p, kwargs, layout or "BCTHW") for p in paths]
    for spec in specs:  # a factory that raises, returns no module or does not take the layout: one line, now
        count_spec(spec, temporal_baseline=False)
    return rest, specs


CPU_CLIPS_WARNING = 16  # clips per forward above which a CPU runtime sweep is announced as slow


def run_profile(patterns: list[str] | str | None = None, frames: list[int] | str | None = None,
                size: int | None = None, views: str | None = None, convention: str | None = None, *,
                batches: list[int] | str | None = None, runtime=None, out: str | None = None, save: bool = True,
                progress: bool = True, on_record: Callable[[dict], None] | None = None,
                on_note: Callable[[str], None] | None = None, kwargs: dict | str | None = None,
                layout: str | None = None, resume: str | None = None, changes: dict | None = None):
    """``tembench profile``: a cost sweep, or with ``runtime`` (a :class:`~tembench.runtime.RuntimeOptions`,
    see :func:`runtime_options`) a runtime sweep, over the grid of matching variants x frames (x batches).

    A pattern may also be an import path ``package.module:callable`` of a factory of one's own (no
    registry entry needed): ``kwargs`` (a dict, or its JSON text) go to it, ``layout`` (``BCTHW`` or
    ``BTCHW``) says what its model takes. Every record is written to a run file as it comes (``save``); a failing case is recorded and the
    sweep goes on; Ctrl-C, SIGTERM or a full disk stop it with everything measured kept. Returns a
    :class:`~tembench.results.driver.RunResult` (``records``, ``path``, ``failed``, ``stopped``, ``note``,
    ``notes``, ``missing``).

    Started by ``torchrun`` (``WORLD_SIZE`` > 1), every rank calls this and the grid is shared out over the
    ranks (:mod:`tembench.runtime.shard`): each measures on ``cuda:LOCAL_RANK`` (``device="cuda"``) or on
    its own share of the node's cores (CPU), and rank 0 writes the one run file; on the other ranks the
    result holds only their own records (``result.rank`` says which).

    ``resume`` (a run id, or a run file's path) measures only the cases of that run's grid that have no
    record yet, into its file, with its parameters: any of ``patterns`` ... ``batches``, ``kwargs``,
    ``layout`` given, and ``changes`` (other parameters by their name in the run file's ``params``, e.g.
    ``{"budget_s": 3}``), must equal the run's, or a one-line error says which differ.

    >>> result = run_profile("tsm/tsm-r50", frames="8,16", save=False)
    >>> [r["gflops"] for r in result.records]
    """
    from tembench.runtime import shard

    launch = shard.join()
    try:
        return _run_profile(launch, patterns, frames, size, views, convention, batches=batches, runtime=runtime,
                            out=out, save=save, progress=progress, on_record=on_record, on_note=on_note,
                            kwargs=kwargs, layout=layout, resume=resume, changes=changes)
    finally:
        launch.finish()


def _run_profile(launch, patterns, frames, size, views, convention, *, batches, runtime, out, save, progress,
                 on_record, on_note, kwargs, layout, resume, changes):
    from tembench.cost.conventions import get_convention
    from tembench.results.driver import run_cases
    from tembench.results.schema import case_key
    from tembench.runtime import shard

    if isinstance(patterns, str):
        patterns = [patterns]
    if isinstance(frames, str):
        frames = parse_int_list(frames)
    if isinstance(batches, str):
        batches = parse_int_list(batches, "batch sizes")
    resumed = None
    if resume is not None:
        if not save:
            raise UsageError("--resume adds to the run's own file: leave out --no-save")
        if runtime is not None:
            raise UsageError("resuming a run uses its own runtime options: leave them out (or give them in "
                             "`changes` by name, to check that they are the run's)")
        given = {name: value for name, value in (("patterns", patterns), ("frames", frames), ("size", size),
                                                 ("views", views), ("convention", convention), ("batch", batches),
                                                 ("kwargs", kwargs), ("layout", layout)) if value is not None}
        found: dict = {}

        def decide() -> dict:
            found["run"] = _resume_run(resume, out, {**given, **(changes or {})})
            return {"kind": found["run"]["kind"], "params": found["run"]["params"]}

        shared = launch.share("resume", decide)
        resumed, params = found.get("run"), shared["params"]
        patterns = list(params.get("patterns") or []) + list(params.get("factories") or [])
        frames, size, views = params.get("frames"), params.get("size"), params.get("views")
        kwargs, layout = params.get("kwargs"), params.get("layout")
        convention = params.get("convention") or "fvcore"
        batches = params.get("batch")
        runtime = _runtime_from_params(params) if shared["kind"] == "runtime" else None
    convention = convention or "fvcore"
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise UsageError(f"size must be a positive integer, got {size!r}")
    get_convention(convention)
    checked_registry()
    patterns, specs = _split_import_paths(patterns, kwargs, layout)
    factories = {"factories": [s.id for s in specs], "kwargs": kwargs, "layout": layout} if specs else {}
    notes: list[str] = []
    if runtime is None:
        if batches:
            raise UsageError("batch sizes only apply to runtime profiling; add --latency, --memory, --trace or "
                             "--find-max-batch")
        cases = profile_cases(patterns, frames, size, views, notes, specs)
        check_cases(cases)
        params = {"patterns": patterns, "frames": frames, "size": size, "views": views, "convention": convention,
                  **factories}
        from tembench.cost import records as cost_records

        cores = shard.pin_cores(launch)
        result = run_cases("cost", cases, lambda c: cost_records.cost_record(*c, convention),
                           lambda c, why: cost_records.failed_cost_record(c, convention, why),
                           lambda c: f"{c[0].id} @{c[1] or c[0].frames}", out=out, save=save, params=params,
                           on_record=on_record, verb="counting", progress=progress,
                           key=lambda c: case_key(c[0].id, c[1] or c[0].frames, c[2] or c[0].input_size, c[3], c[4]),
                           resume=resumed, launch=launch, worker={"device": "meta", "cores": cores})
        result.notes = notes
        return result
    import dataclasses

    from tembench import runtime as rt
    from tembench.env import fingerprint

    opts = runtime
    cases = rt.runtime_cases(profile_cases(patterns, frames, size, views, notes, specs), batches)
    check_cases([(c.spec, c.frames, c.size) for c in cases])
    heavy = max(cases, key=lambda c: c.clips_per_forward * c.t)
    if (opts.device == "cpu" and heavy.clips_per_forward > CPU_CLIPS_WARNING and on_note is not None
            and launch.is_main):
        on_note(f"{heavy.spec.id} at batch {heavy.batch} x {heavy.crops * heavy.clips} views is "
                f"{heavy.clips_per_forward} clips of {heavy.t} frames per forward on a CPU, and every case runs "
                "at least 9 forwards: expect minutes per case (fewer views or batch, or --device cuda)")
    params = {"patterns": patterns, "frames": frames, "size": size, "views": views, "batch": batches,
              "latency": opts.latency, "memory": opts.memory, "device": opts.device, "dtype": opts.dtype,
              "channels_last": opts.channels_last, "compile": opts.compile,
              "trace": None if opts.trace_dir is None else str(opts.trace_dir), "find_max_batch": opts.find_max_batch,
              "budget_s": opts.timing.budget_s, "min_run_s": opts.timing.min_run_s, "warmup_s": opts.timing.warmup_s,
              "threads": opts.threads, "steady_heap": opts.steady_heap, **factories}
    device = shard.rank_device(opts.device, launch)  # cuda -> cuda:LOCAL_RANK in a sharded sweep
    cores = shard.pin_cores(launch, opts.threads) if device == "cpu" else None
    if device != opts.device:
        opts = dataclasses.replace(opts, device=device)
    cache: dict = {}
    with rt.torch_threads(opts.threads):
        result = run_cases("runtime", cases, lambda c: rt.measure_case(c, opts, cache),
                           lambda c, why: rt.failed_runtime_record(c, opts, why),
                           lambda c: f"{c.spec.id} @{c.t} x{c.batch}", out=out, save=save, params=params,
                           fingerprint=fingerprint(opts.device, opts.dtype),
                           summary=lambda recs: {"scaling": rt.scaling_rows(recs)}, on_record=on_record,
                           progress=progress,
                           key=lambda c: case_key(c.spec.id, c.t, c.s, c.crops, c.clips, c.batch),
                           weight=_counted_cost(), resume=resumed, launch=launch,
                           group=(lambda c: (c.spec.id, c.t, c.s, c.crops, c.clips)) if opts.find_max_batch else None,
                           worker={"device": opts.device, "cores": cores})
    result.notes = notes
    return result


def _counted_cost() -> Callable:
    """A runtime case's counted cost, the weight that shares a sweep out over ranks: GFLOPs per view
    (fvcore, on the meta device, once per variant, frames and size) x clips per forward."""
    per_view: dict = {}

    def weight(case) -> float:
        from tembench.cost.records import cost_record

        k = (case.spec.id, case.t, case.s)
        if k not in per_view:
            per_view[k] = cost_record(case.spec, case.t, case.s, 1, 1, "fvcore")["gflops"]
        return per_view[k] * case.clips_per_forward

    return weight


# what `tembench profile` calls each parameter of a run file's params, for the one-line resume error
_RESUME_OPTIONS = {
    "patterns": "PATTERNS", "frames": "--frames", "size": "--size", "views": "--views", "convention": "--convention",
    "batch": "--batch", "latency": "--latency", "memory": "--memory", "device": "--device", "dtype": "--dtype",
    "channels_last": "--channels-last", "compile": "--compile", "trace": "--trace",
    "find_max_batch": "--find-max-batch", "budget_s": "--budget", "warmup_s": "--warmup", "threads": "--threads",
    "steady_heap": "--steady-heap", "kwargs": "--kwargs", "layout": "--layout",
}


def _resume_run(ref: str, out: str | None, given: dict) -> dict:
    """The run file ``--resume`` names (run id or path; looked up in ``out`` or the runs directory), checked:
    a profile run, not corrupt, not still running, measured with the ``given`` parameters."""
    import json

    from tembench.registry import IMPORT_PATH_RE
    from tembench.results.schema import check_run
    from tembench.results.store import effective_status, find_run

    run = find_run(ref, out)
    path, kind, params = run["path"], run.get("kind"), run.get("params")
    if kind not in ("cost", "runtime") or not isinstance(params, dict) or "patterns" not in params:
        what = {"accuracy": "an accuracy run (tembench eval or sanity)", "latency": "a CI latency baseline"}.get(
            kind, f"a {kind} run that `tembench profile` did not write (a baseline?)")
        raise UsageError(f"--resume {ref}: {path} is {what}; --resume takes a run of `tembench profile`")
    problems = check_run({k: v for k, v in run.items() if k != "path"})
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise UsageError(f"--resume {ref}: {path} is corrupt ({problems[0]}{more}); start a new run")
    if effective_status(run) == "running":
        proc = run.get("process") or {}
        raise UsageError(f"--resume {ref}: the run is still running (pid {proc.get('pid')} on {proc.get('host')}); "
                         "resume it after it stops")
    stored = dict(params)
    if "patterns" in given:  # factories named by import path are kept apart in the run's params
        given = dict(given)
        pats = list(given.pop("patterns"))
        given["patterns"] = [p for p in pats if not IMPORT_PATH_RE.match(p)]
        if any(IMPORT_PATH_RE.match(p) for p in pats) or stored.get("factories"):
            given["factories"] = [p for p in pats if IMPORT_PATH_RE.match(p)]
    if isinstance(given.get("kwargs"), str):
        try:
            given["kwargs"] = json.loads(given["kwargs"])
        except json.JSONDecodeError:
            pass

    def same(a, b) -> bool:
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            return float(a) == float(b)
        if a in (None, False, [], {}) and b in (None, False, [], {}):
            return True
        return a == b

    def show(name, v) -> str:
        if isinstance(v, bool) or v is None:
            return "on" if v else "off"
        if isinstance(v, list):
            return ",".join(map(str, v)) if v else "none"
        return json.dumps(v) if isinstance(v, dict) else str(v)

    differ = [f"{_RESUME_OPTIONS.get(name, name)} {show(name, v)} (the run's: {show(name, stored.get(name))})"
              for name, v in given.items() if not same(v, stored.get(name))]
    if differ:
        raise UsageError(f"--resume {run['run_id']}: {'; '.join(differ)}: leave these out to resume the run with "
                         "its own parameters, or start a new run")
    return run


def _runtime_from_params(p: dict):
    """The runtime options a runtime run's ``params`` record."""
    opts = runtime_options(latency=p.get("latency", True), memory=p.get("memory", False),
                           device=p.get("device") or "cpu", dtype=p.get("dtype") or "fp32",
                           channels_last=bool(p.get("channels_last")), compile=bool(p.get("compile")),
                           trace=p.get("trace"), find_max_batch=bool(p.get("find_max_batch")),
                           budget=p.get("budget_s"), warmup=p.get("warmup_s", 1.0), threads=p.get("threads"),
                           steady_heap=p.get("steady_heap", True))
    if p.get("min_run_s") is not None:
        opts.timing.min_run_s = p["min_run_s"]
    return opts


def cross_check(patterns: list[str] | str | None = None, frames: list[int] | str | None = None,
                size: int | None = None, counter: str = "fvcore",
                on_record: Callable[[dict], None] | None = None) -> list[dict]:
    """``tembench profile --cross-check fvcore``: for every matching (non-ensemble) variant, tembench's meta
    count under ``fvcore-legacy`` beside fvcore's ``FlopCountAnalysis`` of a real forward at a small
    input (default: the variant's frames, 64x64), and the operators that differ."""
    from tembench.cost.crosscheck import fvcore_crosscheck

    if counter != "fvcore":
        raise UsageError(f"--cross-check: the only counter to cross-check against is fvcore, got {counter!r}")
    if isinstance(patterns, str):
        patterns = [patterns]
    if isinstance(frames, str):
        frames = parse_int_list(frames)
    checked_registry()
    rows = []
    for spec, t, s, _, _ in profile_cases(patterns, frames, size):
        if spec.is_ensemble:
            continue
        check_cases([(spec, t, s)])
        row = fvcore_crosscheck(spec, t, s)
        rows.append(row)
        if on_record is not None:
            on_record(row)
    return rows


def claims(paper: str | None = None, source: str | None = None) -> list[dict]:
    """Every claim (of one paper / table) beside the value measured under its own protocol."""
    from tembench.report.claims import evaluate_claims

    checked_registry()
    return [r.as_dict() for r in evaluate_claims(paper=paper, source=source)]




# ---- runtime: latency, memory, per-module time, traces ---------------------------------------------

def runtime_options(latency: bool = True, memory: bool = False, device: str = "cpu", dtype: str = "fp32",
                    channels_last: bool = False, compile: bool = False, trace: str | None = None,
                    find_max_batch: bool = False, budget: float | None = None, warmup: float = 1.0,
                    min_reps: int = 5, target_spread: float = 0.05, threads: int | None = None,
                    steady_heap: bool = True):
    """Validated :class:`~tembench.runtime.RuntimeOptions` (one-line :class:`UsageError` on bad input).

    ``budget`` (seconds of timed samples per case) defaults by device, see
    :meth:`~tembench.runtime.TimingConfig.for_device`; ``steady_heap`` see
    :class:`~tembench.runtime.RuntimeOptions`."""
    from tembench.runtime import RuntimeOptions, TimingConfig

    if budget is not None and not budget > 0:
        raise UsageError(f"budget must be a positive number of seconds, got {budget}")
    if not warmup >= 0:
        raise UsageError(f"warmup must be a non-negative number of seconds, got {warmup}")
    return RuntimeOptions(latency=latency, memory=memory, device=device, dtype=dtype, channels_last=channels_last,
                          compile=compile, trace_dir=trace, find_max_batch=find_max_batch, threads=threads,
                          steady_heap=steady_heap,
                          timing=TimingConfig.for_device(device, budget, warmup_s=warmup, min_reps=min_reps,
                                                         target_spread=target_spread))


def profile_runtime(model, frames: int = 8, size: int = 224, batch: int = 1, *, layout: str = "BCTHW",
                    example_input=None, temporal: list[str] | tuple[str, ...] = (), name: str | None = None,
                    options=None, **option_kwargs) -> dict:
    """The latency / memory record of any ``nn.Module`` (moved to the device and dtype of the options, in
    eval mode), e.g. ``profile_runtime(my_model, frames=16, layout="BTCHW", memory=True, budget=5)``.

    ``options`` is a :class:`~tembench.runtime.RuntimeOptions`, or give :func:`runtime_options`' keywords.
    The input is a random clip in ``layout`` or ``example_input(batch, frames, size) -> (args, kwargs)``;
    ``temporal``: module-name globs whose time is ``temporal_ms`` (and multiply-adds ``temporal_gflops``)."""
    from tembench.runtime.runner import measure_module

    opts = options if options is not None else runtime_options(**option_kwargs)
    return measure_module(model, opts, name=name, frames=frames, size=size, batch=batch, layout=layout,
                          example_input=example_input, temporal=tuple(temporal))


def runtime_profile(patterns: list[str] | None = None, frames: list[int] | str | None = None,
                    size: int | None = None, views: str | None = None, batches: list[int] | str | None = None,
                    options=None, on_record: Callable[[dict], None] | None = None, **option_kwargs) -> list[dict]:
    """Latency / memory records for every matching variant, frame count and batch size.

    ``options`` is a :class:`~tembench.runtime.RuntimeOptions`, or give :func:`runtime_options`' keywords,
    e.g. ``runtime_profile("tsm/tsm-r50", frames="8,16", memory=True, budget=5)``.
    """
    opts = options if options is not None else runtime_options(**option_kwargs)
    return run_profile(patterns, frames, size, views, batches=batches, runtime=opts, save=False, progress=False,
                       on_record=on_record).records


def check(baseline: str | None = None, gates: list[str] | tuple[str, ...] | None = None, accept: bool = False,
          patterns: list[str] | None = None, progress: Callable[[str], None] | None = None,
          base: str | None = None, latency_budget: float | None = None) -> list:
    """``tembench check``: measure now and judge against the committed baselines (see
    :func:`tembench.check.run_check`); with ``base`` (a commit, branch or tag) the latency gate measures
    that commit and the current tree side by side on this machine instead, in ``latency_budget`` seconds.
    Returns the verdicts (:class:`tembench.gates.Verdict`); :func:`tembench.gates.outcome` judges them."""
    from tembench.check import DEFAULT_BASELINE, GATES, run_check

    checked_registry()
    return run_check(baseline or DEFAULT_BASELINE, gates or GATES, accept=accept, progress=progress,
                     patterns=patterns, base=base, latency_budget=latency_budget)


def compare(a: str, b: str) -> list:
    """``tembench compare``: two run files (paths or run ids) of the same kind, A the baseline."""
    from tembench.check import compare_files

    return compare_files(a, b)


def sanity(patterns: list[str] | None = None, epochs: int | None = None, out: str | None = None,
           on_record: Callable[[dict], None] | None = None) -> tuple[list[dict], str]:
    """The motion-sensitivity benchmark (``tembench sanity``): (records, path of the run file)."""
    from tembench.results.store import RunWriter
    from tembench.sanity import MotionConfig, run_benchmark

    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0):
        raise UsageError(f"--epochs must be a positive integer, got {epochs!r}")
    checked_registry()
    cfg = MotionConfig() if epochs is None else MotionConfig(epochs=epochs)
    with RunWriter("accuracy", out, params={"benchmark": "motion", "config": cfg.__dict__}) as writer:
        def keep(rec: dict) -> None:
            writer.add(rec)
            if on_record is not None:
                on_record(rec)

        records = run_benchmark(patterns, cfg, on_record=keep)
    return records, str(writer.path)


def report(format: str = "html", out: str | None = None, **kwargs):
    """``tembench report``: the papers' tables (and, for html, plots) written in ``format``; see
    :func:`tembench.report.html.write_report`."""
    from tembench.report.html import write_report

    checked_registry()
    return write_report(format, out, **kwargs)


def scaling(records: list[dict]) -> list[dict]:
    """Growth exponent of cost and latency with frames for each frame sweep in ``records``."""
    from tembench.runtime import scaling_rows

    return scaling_rows(records)


def module_table(records: list[dict]) -> list[dict]:
    """Time per top-level and per temporal module, one row per module per record."""
    from tembench.runtime.modules import module_rows

    return [row for r in records for row in module_rows(r)]


def results(directory=None, runs: bool = False, **filters) -> list[dict]:
    """Rows of the results store: records (or, with ``runs=True``, one row per run) passing ``filters``."""
    from tembench.results.query import check_directory, records, run_rows, select_runs

    directory = check_directory(directory)
    if not runs:
        return records(directory, **filters)
    run_keys = ("kind", "run_status", "run", "since", "hardware", "last")
    selected = select_runs(directory, **{k: v for k, v in filters.items() if k in run_keys})
    if any(v for k, v in filters.items() if k not in run_keys):  # record filters: runs holding a match
        ids = {r["run_id"] for r in records(directory, **filters)}
        selected = [r for r in selected if r.get("run_id") in ids]
    return run_rows(selected)


# ------------------------------------------------------------------------------------------------
# Accuracy evaluation (tembench eval / metrics / data)
# ------------------------------------------------------------------------------------------------

def evaluate(variant: str, data: str, out: str | None = None, save: bool = True, **kwargs) -> dict | None:
    """Accuracy of ``variant`` on a dataset split under a protocol preset; returns the saved record
    (``None`` on non-zero ranks of a torchrun launch). The run file goes to ``out`` (default: the runs
    directory) unless ``save`` is false. See :func:`tembench.evaluate.runner.evaluate` for the rest."""
    from pathlib import Path

    from tembench.evaluate.runner import evaluate as _evaluate
    from tembench.results.store import RunWriter, default_runs_dir

    checked_registry()
    out_dir = Path(out) if out is not None else default_runs_dir()

    def open_run(params: dict, command: list | None) -> RunWriter:
        return RunWriter("accuracy", out_dir, command=command, params=params)

    return _evaluate(variant, data, out=out_dir, open_run=open_run if save else None, **kwargs)


def find_run(ref: str, runs_dir: str | None = None) -> dict:
    """A run file given its path, or its run id (or a unique prefix) in the runs directory."""
    from tembench.results.store import find_run as _find_run

    return _find_run(ref, runs_dir)


def recompute_metrics(refs: list[str], fusion: str | None = None, allow_mismatch: bool = False,
                      runs_dir: str | None = None) -> list[dict]:
    """Fusion and metrics recomputed from the per-view logits stored with accuracy runs (no model run).
    Several runs are only compared when their dataset fingerprints match (unless ``allow_mismatch``)."""
    from tembench.evaluate.fingerprint import require_same
    from tembench.evaluate.runner import recompute

    rows = []
    for ref in refs:
        rows.extend(recompute(find_run(ref, runs_dir), fusion))
    if not allow_mismatch:
        for r in rows[1:]:
            require_same(rows[0]["dataset_fingerprint"], r["dataset_fingerprint"],
                         (f"{rows[0]['run_id']} ({rows[0]['variant']})", f"{r['run_id']} ({r['variant']})"))
    return rows


def synth_dataset(fmt: str, out: str, train_per_class: int = 12, val_per_class: int = 4,
                  size: str = "96x72", frames: str = "24-40", seed: int = 0) -> dict:
    """Write a synthetic dataset in a real on-disk format (``tembench data synth``)."""
    from tembench.data.synth import write_synthetic

    m = re.fullmatch(r"(\d+)x(\d+)", size.strip())
    if not m:
        raise UsageError(f"--size must be WIDTHxHEIGHT (e.g. 96x72), got {size!r}")
    f = re.fullmatch(r"(\d+)(?:-(\d+))?", frames.strip())
    if not f:
        raise UsageError(f"--frames must be N or MIN-MAX (e.g. 24-40), got {frames!r}")
    lo = int(f.group(1))
    hi = int(f.group(2)) if f.group(2) else lo
    return write_synthetic(fmt, out, train_per_class, val_per_class, (int(m.group(1)), int(m.group(2))), (lo, hi), seed)


def protocols() -> list[dict]:
    """The named test-protocol presets."""
    from tembench.data.protocols import list_protocols

    return list_protocols()


def dataset_info(data: str, split: str = "val", dataset_format: str | None = None, list_file: str | None = None,
                 label_order: str | None = None) -> dict:
    """What a dataset reader finds in a data root (format, classes, videos, missing media)."""
    import os

    from tembench.data.formats import read_dataset

    ds = read_dataset(data, split, dataset_format, list_file, label_order)
    missing = [it.id for it in ds.items if not os.path.exists(it.path)]
    return {"format": ds.format, "split": ds.split, "classes": ds.num_classes, "videos": len(ds.items),
            "missing_media": len(missing), "multilabel": ds.multilabel, "label_order": ds.label_order,
            "annotation_sha256": ds.annotation_hash()[:16], "first_missing": missing[:5]}
