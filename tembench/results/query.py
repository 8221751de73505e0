"""Reading the store back: filter runs and records, flatten them into rows.

Run-level filters pick run files: ``kind``, ``run_status``, ``run`` (id prefix), ``since`` (ISO date or
time, UTC), ``hardware`` (hash prefix; ``"current"`` is this machine), ``last`` (the N newest runs left).
Record-level filters pick records inside them: ``patterns`` (variant ids, families or globs), ``status``,
``device``, ``dtype`` and ``where`` (``KEY=VALUE`` equalities on any field, compared as text).

A record measured on another machine than its run's rank 0 (a rank on another node, a run resumed
elsewhere) carries its own ``hardware_hash``: it replaces the run's in the record's row, and it is what
``hardware`` matches, so rows of one hardware hash are rows of one machine.
"""
from __future__ import annotations

import fnmatch
from datetime import datetime, timezone
from pathlib import Path

from tembench.errors import UsageError
from tembench.results.schema import READ_STATUSES, RECORD_STATUSES, RUN_KINDS
from tembench.results.store import default_runs_dir, load_runs

RUN_COLUMNS = ("run_id", "kind", "run_status", "created", "hardware_hash")


def _parse_since(since: str) -> datetime:
    try:
        t = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since must be an ISO date or time such as 2026-11-21 or 2026-11-21T08:00, got {since!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _parse_where(where: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for w in where or []:
        key, sep, value = w.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--where takes KEY=VALUE (e.g. frames=8), got {w!r}")
        out.append((key.strip(), value.strip()))
    return out


def _choice(option: str, value: str | None, choices) -> None:
    if value is not None and value not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, got {value!r}")


def _text(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def variant_matches(variant: str, patterns: list[str] | None) -> bool:
    """Whether ``variant`` matches any of the patterns (ids, families or globs; all when none)."""
    if not patterns:
        return True
    for p in patterns:
        if fnmatch.fnmatchcase(variant, p) or ("/" not in p and variant.startswith(p + "/")):
            return True
    return False


def select_runs(directory: str | Path | None = None, *, kind: str | None = None, run_status: str | None = None,
                run: str | None = None, since: str | None = None, hardware: str | None = None,
                last: int | None = None) -> list[dict]:
    """Run files passing the run-level filters, oldest first."""
    from tembench.env import hardware_hash

    if last is not None and last <= 0:
        raise UsageError(f"--last must be a positive integer, got {last}")
    _choice("--kind", kind, RUN_KINDS)
    _choice("--run-status", run_status, READ_STATUSES)
    t0 = _parse_since(since) if since else None
    if hardware == "current":
        hardware = hardware_hash()
    runs = []
    for r in load_runs(directory, kind):
        if run_status and r.get("status") != run_status:
            continue
        if run and not r.get("run_id", "").startswith(run):
            continue
        if hardware and not any(h.startswith(hardware) for h in run_hardware(r)):
            continue
        if t0 is not None:
            try:
                created = _parse_since(r.get("created", ""))
            except UsageError:
                continue
            if created < t0:
                continue
        runs.append(r)
    runs.sort(key=lambda r: (r.get("created", ""), r.get("run_id", "")))
    return runs[-last:] if last else runs


def run_hardware(run: dict) -> set[str]:
    """The hardware hashes of the machines a run measured on: its own (rank 0's), and in a run sharded over
    nodes or resumed elsewhere, those of its workers and records."""
    hashes = {(run.get("fingerprint") or {}).get("hardware_hash") or ""}
    hashes |= {w.get("hardware_hash") for w in run.get("workers") or [] if isinstance(w, dict)}
    hashes |= {rec.get("hardware_hash") for rec in run.get("records") or [] if isinstance(rec, dict)}
    return {h for h in hashes if isinstance(h, str) and h}


def run_rows(runs: list[dict]) -> list[dict]:
    """One summary row per run."""
    rows = []
    for r in runs:
        fp = r.get("fingerprint") or {}
        recs = r.get("records") or []
        rows.append({
            "run_id": r.get("run_id"), "kind": r.get("kind"), "run_status": r.get("status"),
            "created": r.get("created"), "records": len(recs),
            "variants": len({x.get("variant") for x in recs}),
            "device": (fp.get("settings") or {}).get("device"), "hardware_hash": fp.get("hardware_hash"),
            "elapsed_s": r.get("elapsed_s"), "command": " ".join(map(str, r.get("command") or [])),
            "path": r.get("path"),
        })
    return rows


def records(directory: str | Path | None = None, *, patterns: list[str] | None = None, kind: str | None = None,
            status: str | None = None, device: str | None = None, dtype: str | None = None,
            where: list[str] | None = None, run_status: str | None = None, run: str | None = None,
            since: str | None = None, hardware: str | None = None, last: int | None = None) -> list[dict]:
    """Every record passing the filters, flattened: run-level columns first, then the record's fields."""
    conditions = _parse_where(where)
    _choice("--status", status, RECORD_STATUSES)
    if hardware == "current":
        from tembench.env import hardware_hash

        hardware = hardware_hash()
    rows = []
    for r in select_runs(directory, kind=kind, run_status=run_status, run=run, since=since, hardware=hardware,
                         last=last):
        fp = r.get("fingerprint") or {}
        head = {"run_id": r.get("run_id"), "kind": r.get("kind"), "run_status": r.get("status"),
                "created": r.get("created"), "hardware_hash": fp.get("hardware_hash")}
        for rec in r.get("records") or []:
            if not variant_matches(str(rec.get("variant", "")), patterns):
                continue
            if status and rec.get("status", "ok") != status:
                continue
            if device and rec.get("device", (fp.get("settings") or {}).get("device")) != device:
                continue
            if dtype and rec.get("dtype") != dtype:
                continue
            if hardware and not str(rec.get("hardware_hash") or head["hardware_hash"] or "").startswith(hardware):
                continue  # a record measured on another machine than its run's rank 0
            if any(key not in rec or _text(rec[key]) != value for key, value in conditions):
                continue
            rows.append({**head, **rec})
    return rows


def load(directory: str | Path | None = None, kind: str | None = None, **filters):
    """Every record of every run as a pandas DataFrame, one row per record.

    Run-level columns come first: ``run_id``, ``kind``, ``run_status``, ``created``, ``hardware_hash``;
    then the record's own fields (a runtime record's ``status`` is ``ok``, ``oom``, ``error`` or ``skipped``).
    ``filters`` are those of :func:`records` (``patterns``, ``status``, ``device``, ``since``, ``last``,
    ``where``, ...).
    """
    import pandas as pd

    return pd.DataFrame(records(directory, kind=kind, **filters))


def check_directory(directory: str | Path | None) -> Path:
    d = Path(directory) if directory is not None else default_runs_dir()
    if not d.is_dir():
        raise UsageError(f"no results directory {d} (measure something with 'tembench profile', or pass --dir / "
                         "set $TEMBENCH_RUNS)")
    return d
