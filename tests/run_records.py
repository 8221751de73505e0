"""Records and run files for the tests of the store and the report.

``runtime_rec`` is a complete runtime record (what ``tembench profile --latency`` writes), accepted by the
writer's schema check; ``write_legacy_run`` writes a run file as it is, without that check, the way a run
written before the check (or by another tool) lies on disk, so that reading such files stays tested.
"""
from pathlib import Path

from tembench.results.store import atomic_write_json, new_run


def runtime_rec(variant="tsm/tsm-r50", frames=8, status="ok", device="cpu", dtype="fp32", latency=100.0, **extra):
    rec = {"variant": variant, "frames": frames, "input_size": 224, "views": f"{frames}x1x1", "batch": 1,
           "clips_per_forward": 1, "device": device, "dtype": dtype, "channels_last": False, "compile": False,
           "status": status}
    if status == "ok":
        rec.update(latency_ms=latency, latency_p90_ms=latency * 1.1, latency_iqr_ms=1.0, latency_mean_ms=latency,
                   latency_min_ms=latency * 0.9, latency_spread=0.01, reps=5, calls_per_rep=1, warmup_iters=3,
                   warmup_s=1.0, converged=True, clock="perf_counter", threads=2, latency_samples_ms=[latency] * 5,
                   clips_per_s=1e3 / latency, videos_per_s=1e3 / latency)
    else:
        rec["error"] = "OutOfMemoryError: CUDA out of memory"
    return {**rec, **extra}


def write_legacy_run(directory, kind: str, records: list[dict], command: list[str]) -> Path:
    """A complete run file holding ``records`` as they are (no schema check)."""
    data = {**new_run(kind, command), "status": "complete", "records": records}
    path = Path(directory) / f"{data['run_id']}.json"
    atomic_write_json(path, data)
    return path
