"""What a run file and its records hold (schema version :data:`SCHEMA_VERSION`), checked when a record is written.

A run file is one JSON object with the keys of :data:`RUN_FIELDS` (the envelope: :func:`envelope`). Its
``records`` depend on its ``kind`` (:data:`RUN_KINDS`):

* ``cost``: :data:`COST_FIELDS` (``tembench.cost.records.cost_record``; the committed cost baseline adds
  per-module multiply-adds, ``modules``); a case that could not be counted has ``status = "error"``, an
  ``error`` and only :data:`FAILED_COST_FIELDS`;
* ``runtime``: :data:`RUNTIME_FIELDS` and, for what was asked, the fields of :data:`LATENCY_FIELDS`,
  :data:`MEMORY_FIELDS_CPU` / :data:`MEMORY_FIELDS_CUDA` and :data:`MAX_BATCH_FIELDS`;
* ``accuracy``: :data:`ACCURACY_FIELDS` (``tembench eval``, the motion benchmark);
* ``latency``: :data:`CI_LATENCY_FIELDS`, the CI latency gate's baseline (raw samples, also relative to a
  reference workload).

The records of a ``tembench profile`` run also carry :data:`CASE_FIELDS`: ``case``, the key of the grid case
they measured (:func:`case_key`; what ``--resume`` matches them by) and, in a run sharded over processes
or resumed, the ``rank`` of the process that measured them, its ``host`` and that host's
``hardware_hash`` (latency is only compared between records of one hardware hash). Such a run's envelope
adds :data:`RUN_OPTIONAL_FIELDS`: its ``grid`` (every case key, in grid order), its ``workers`` (one entry
per rank per launch: process, host, device, pinned cores, that rank's whole fingerprint, how it stopped),
the cases still ``missing`` when it stopped early, and each ``resumed`` launch.

Optional fields may be absent; a field that is present has the stated type (``None`` allowed where the type
says so). :func:`check_record` and :func:`check_run` list what does not conform;
:meth:`tembench.results.store.RunWriter.add` refuses a record that does not (:class:`RecordError`).
Files written before this check (the committed baselines among them) are read as they are.
"""
from __future__ import annotations

from tembench.errors import RecordError

SCHEMA_VERSION = 1

NUM = (int, float)
OPT_NUM = (int, float, type(None))
OPT_INT = (int, type(None))

RUN_FIELDS = {
    "schema_version": int, "run_id": str, "kind": str, "created": str, "command": list, "params": dict,
    "fingerprint": dict, "status": str, "records": list,
}
RUN_OPTIONAL_FIELDS = {
    "process": dict, "elapsed_s": NUM, "error": str, "grid": list, "workers": list, "missing": list, "resumed": list,
}
RUN_KINDS = ("cost", "runtime", "accuracy", "latency")  # latency: the CI gate's baseline file
RUN_STATUSES = ("running", "complete", "interrupted", "failed")
READ_STATUSES = RUN_STATUSES + ("stale",)  # as read back: "stale" = "running" with its process gone
FINGERPRINT_FIELDS = {"software": dict, "hardware": dict, "hardware_hash": str, "gpu_state": dict, "settings": dict}
RECORD_STATUSES = ("ok", "oom", "error", "skipped")

FAILED_COST_FIELDS = {"variant": str, "frames": int, "input_size": int, "views": str, "convention": str}
COST_FIELDS = {
    **FAILED_COST_FIELDS, "gflops": NUM, "gflops_total": NUM, "params": int, "temporal_gflops": OPT_NUM,
    "temporal_params": OPT_INT,
}
COST_OPTIONAL_FIELDS = {"classes": int, "macs": int, "uncounted_ops": str, "modules": dict}
CASE_FIELDS = {"case": str, "rank": int, "host": str, "hardware_hash": str}
WORKER_FIELDS = {"rank": int, "world_size": int, "host": str, "pid": int, "device": str, "hardware_hash": str,
                 "fingerprint": dict, "status": str}

RUNTIME_FIELDS = {
    "variant": str, "frames": int, "input_size": int, "views": str, "batch": int, "clips_per_forward": int,
    "device": str, "dtype": str, "channels_last": bool, "compile": bool, "status": str,
}
RUNTIME_COST_FIELDS = {"gflops": NUM, "gflops_total": NUM, "params": int, "temporal_gflops": OPT_NUM}
LATENCY_FIELDS = {
    "latency_ms": NUM, "latency_p90_ms": NUM, "latency_iqr_ms": NUM, "latency_mean_ms": NUM, "latency_min_ms": NUM,
    "latency_spread": NUM, "reps": int, "calls_per_rep": int, "warmup_iters": int, "warmup_s": NUM,
    "converged": bool, "clock": str, "threads": int, "latency_samples_ms": list,
    "clips_per_s": NUM, "videos_per_s": NUM,
}
MODULE_FIELDS = {"module_ms": dict, "temporal_module_ms": dict, "temporal_ms": NUM}
MEMORY_FIELDS_CPU = {"rss_increase_mib": NUM, "rss_method": str}
MEMORY_FIELDS_CUDA = {
    "mem_peak_alloc_mib": NUM, "mem_peak_reserved_mib": NUM, "mem_forward_mib": NUM, "alloc_retries": int,
}
MAX_BATCH_FIELDS = {"max_batch": int, "max_batch_bound": str, "max_batch_trials": int}

ACCURACY_FIELDS = {"variant": str}
ACCURACY_OPTIONAL_FIELDS = {
    "frames": int, "input_size": int, "views": str, "dataset": (str, dict), "top1": OPT_NUM, "top5": OPT_NUM,
    "mean_class_acc": OPT_NUM, "map": OPT_NUM, "correct": (list, type(None)), "randomly_initialised": bool,
}

CI_LATENCY_FIELDS = {
    "variant": str, "frames": int, "input_size": int, "batch": int, "threads": int, "status": str,
    "samples_ms": list,
}
CI_LATENCY_OPTIONAL_FIELDS = {"relative": list, "reference_ms": list, "latency_ms": OPT_NUM, "latency_spread": OPT_NUM}


def envelope(kind: str, run_id: str, created: str, command: list, params: dict, fingerprint: dict,
             status: str = "running", **extra) -> dict:
    """The run-level fields of a run file (:data:`RUN_FIELDS`, ``extra`` before the status), its records
    still empty."""
    if kind not in RUN_KINDS:
        raise RecordError(f"unknown run kind {kind!r}; one of {', '.join(RUN_KINDS)}")
    return {"schema_version": SCHEMA_VERSION, "run_id": run_id, "kind": kind, "created": created,
            "command": list(command), "params": params, "fingerprint": fingerprint, **extra, "status": status,
            "records": []}


def _check(obj: dict, fields: dict, where: str, required: bool = True) -> list[str]:
    problems = []
    for key, types in fields.items():
        if key not in obj:
            if required:
                problems.append(f"{where}: missing {key!r}")
            continue
        value = obj[key]
        ok_types = types if isinstance(types, tuple) else (types,)
        if isinstance(value, bool) and bool not in ok_types:
            problems.append(f"{where}: {key!r} is a bool")
        elif not isinstance(value, ok_types):
            problems.append(f"{where}: {key!r} is {type(value).__name__}, expected "
                            f"{' or '.join(t.__name__ for t in ok_types)}")
    return problems


def _check_status(rec: dict, where: str, default: str | None = None) -> list[str]:
    """``status`` one of :data:`RECORD_STATUSES` (``default`` when absent; None: required) and an ``error``
    message on a record that is not ``ok``."""
    status = rec.get("status", default)
    if status not in RECORD_STATUSES:
        return [f"{where}: status {status!r} is not one of {', '.join(RECORD_STATUSES)}"]
    if status != "ok" and not isinstance(rec.get("error"), str):
        return [f"{where}: a {status} record needs an 'error' message"]
    return []


def check_record(rec: dict, kind: str, where: str = "record") -> list[str]:
    """Problems with one record of a run of ``kind`` (empty when it conforms)."""
    if not isinstance(rec, dict):
        return [f"{where}: is {type(rec).__name__}, expected a JSON object"]
    if kind == "cost":
        problems = _check_status(rec, where, default="ok")
        if rec.get("status", "ok") != "ok":
            return problems + _check(rec, FAILED_COST_FIELDS, where)
        return (problems + _check(rec, COST_FIELDS, where) + _check(rec, COST_OPTIONAL_FIELDS, where, required=False)
                + _check(rec, CASE_FIELDS, where, required=False))
    if kind == "runtime":
        problems = _check(rec, RUNTIME_FIELDS, where)
        if "status" in rec:
            problems += _check_status(rec, where)
        for fields in (RUNTIME_COST_FIELDS, MODULE_FIELDS, MEMORY_FIELDS_CPU, MEMORY_FIELDS_CUDA, MAX_BATCH_FIELDS,
                       CASE_FIELDS):
            problems += _check(rec, fields, where, required=False)
        return problems + _check(rec, LATENCY_FIELDS, where, required=rec.get("status") == "ok" and "latency_ms" in rec)
    if kind == "accuracy":
        return _check(rec, ACCURACY_FIELDS, where) + _check(rec, ACCURACY_OPTIONAL_FIELDS, where, required=False)
    if kind == "latency":
        problems = _check(rec, CI_LATENCY_FIELDS, where) + _check_status(rec, where)
        return problems + _check(rec, CI_LATENCY_OPTIONAL_FIELDS, where, required=False)
    return [f"{where}: unknown run kind {kind!r}; one of {', '.join(RUN_KINDS)}"]


def refuse_malformed(rec: dict, kind: str) -> None:
    """Raise :class:`RecordError` (one line: the kind, the field, what is wrong) unless ``rec`` conforms."""
    problems = check_record(rec, kind, "record")
    if problems:
        variant = rec.get("variant") if isinstance(rec, dict) else None
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RecordError(f"refused a malformed {kind} record" + (f" of {variant}" if isinstance(variant, str) else "")
                          + f": {problems[0].removeprefix('record: ')}{more}")


def case_key(variant: str, frames: int, size: int, crops: int, clips: int, batch: int | None = None) -> str:
    """The key of one case of a profile grid, e.g. ``tsm/tsm-r50-t8-s224-v1x1`` (cost) or
    ``tsm/tsm-r50-t8-s224-v3x10-b2`` (runtime): frames and size resolved to numbers."""
    return f"{variant}-t{frames}-s{size}-v{crops}x{clips}" + ("" if batch is None else f"-b{batch}")


def record_case_key(rec: dict, kind: str) -> str | None:
    """The :func:`case_key` of the case a profile record measured: its ``case``, or for a record written
    before records carried it, the key rebuilt from its variant, frames, size, views (and batch); None when
    the record says too little."""
    if isinstance(rec.get("case"), str):
        return rec["case"]
    try:
        crops, clips = (int(x) for x in str(rec["views"]).split("x")[-2:])
        return case_key(rec["variant"], int(rec["frames"]), int(rec["input_size"]), crops, clips,
                        int(rec["batch"]) if kind == "runtime" else None)
    except (KeyError, TypeError, ValueError):
        return None


def check_run(data: dict) -> list[str]:
    """Problems with a whole run file's content (empty when it conforms)."""
    problems = _check(data, RUN_FIELDS, "run")
    problems += _check(data, RUN_OPTIONAL_FIELDS, "run", required=False)
    for i, worker in enumerate(data.get("workers") or []):
        problems += (_check(worker, WORKER_FIELDS, f"workers[{i}]", required=False) if isinstance(worker, dict)
                     else [f"workers[{i}]: is {type(worker).__name__}, expected a JSON object"])
    if data.get("status") not in RUN_STATUSES:
        problems.append(f"run: status {data.get('status')!r} is not one of {', '.join(RUN_STATUSES)}")
    if isinstance(data.get("fingerprint"), dict):
        problems += _check(data["fingerprint"], FINGERPRINT_FIELDS, "fingerprint")
    for i, rec in enumerate(data.get("records") or []):
        problems += check_record(rec, data.get("kind", ""), f"records[{i}]")
    return problems
