"""What a run file and its records hold (schema version :data:`~tembench.results.store.SCHEMA_VERSION`).

A run file is one JSON object with the keys of :data:`RUN_FIELDS`. Its ``records`` depend on its ``kind``:
``cost`` records carry :data:`COST_FIELDS`; ``runtime`` records carry :data:`RUNTIME_FIELDS` and, for what
was asked, the fields of :data:`LATENCY_FIELDS`, :data:`MEMORY_FIELDS_CPU` / :data:`MEMORY_FIELDS_CUDA`
and :data:`MAX_BATCH_FIELDS`. Optional fields may be absent; a field that is present has the stated type
(``None`` allowed where the type says so). :func:`check_run` lists what does not conform.
"""
from __future__ import annotations

NUM = (int, float)
OPT_NUM = (int, float, type(None))

RUN_FIELDS = {
    "schema_version": int, "run_id": str, "kind": str, "created": str, "command": list, "params": dict,
    "fingerprint": dict, "status": str, "records": list,
}
RUN_KINDS = ("cost", "runtime", "accuracy", "latency")  # latency: the CI gate's baseline file
RUN_STATUSES = ("running", "complete", "interrupted", "failed")
READ_STATUSES = RUN_STATUSES + ("stale",)  # as read back: "stale" = "running" with its process gone
FINGERPRINT_FIELDS = {"software": dict, "hardware": dict, "hardware_hash": str, "gpu_state": dict, "settings": dict}

COST_FIELDS = {
    "variant": str, "frames": int, "input_size": int, "views": str, "convention": str, "gflops": NUM,
    "gflops_total": NUM, "params": int, "temporal_gflops": OPT_NUM, "temporal_params": (int, type(None)),
}

RECORD_STATUSES = ("ok", "oom", "error", "skipped")
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


def check_record(rec: dict, kind: str, where: str = "record") -> list[str]:
    """Problems with one record of a run of ``kind`` (empty when it conforms)."""
    if kind == "cost":
        return _check(rec, COST_FIELDS, where)
    if kind != "runtime":
        return []
    problems = _check(rec, RUNTIME_FIELDS, where)
    if rec.get("status") not in RECORD_STATUSES:
        problems.append(f"{where}: status {rec.get('status')!r} is not one of {', '.join(RECORD_STATUSES)}")
    if rec.get("status") in ("oom", "error", "skipped") and not isinstance(rec.get("error"), str):
        problems.append(f"{where}: a {rec.get('status')} record needs an 'error' message")
    for fields in (RUNTIME_COST_FIELDS, MODULE_FIELDS, MEMORY_FIELDS_CPU, MEMORY_FIELDS_CUDA, MAX_BATCH_FIELDS):
        problems += _check(rec, fields, where, required=False)
    problems += _check(rec, LATENCY_FIELDS, where, required=rec.get("status") == "ok" and "latency_ms" in rec)
    return problems


def check_run(data: dict) -> list[str]:
    """Problems with a whole run file's content (empty when it conforms)."""
    problems = _check(data, RUN_FIELDS, "run")
    if data.get("status") not in RUN_STATUSES:
        problems.append(f"run: status {data.get('status')!r} is not one of {', '.join(RUN_STATUSES)}")
    if isinstance(data.get("fingerprint"), dict):
        problems += _check(data["fingerprint"], FINGERPRINT_FIELDS, "fingerprint")
    for i, rec in enumerate(data.get("records") or []):
        problems += check_record(rec, data.get("kind", ""), f"records[{i}]")
    return problems
