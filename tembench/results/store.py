"""The results store.

Every run writes one JSON file ``<runs dir>/<UTC time>-<kind>-<id>.json`` holding the schema
version, the environment fingerprint, the command line, the process that writes it (``process``: pid,
host, start time), a status (``running``, ``complete``, ``interrupted``, ``failed``) and the records
measured so far. The file is rewritten atomically (temporary file + rename) after every record, so a
run stopped part-way leaves a readable file with everything measured until then. Every record is
checked against the schema of the run's kind before it is added (:mod:`tembench.results.schema`);
:func:`write_run` writes a whole run file (a baseline) in the same envelope.

A run that stopped before measuring its whole grid can be completed in place: :meth:`RunWriter.reopen`
opens its file again (status ``running``, the process that resumes it, one more ``resumed`` entry) and
later records are added to it. A run sharded over processes has one writer, rank 0, which adds the
records the other ranks hand it (:meth:`RunWriter.extend`).

A run still marked ``running`` whose process is gone (killed with SIGKILL, a crashed machine) is read
back as ``stale`` (:func:`effective_status`), never as ``running``.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tembench.errors import ResultsWriteError, UsageError
from tembench.results.schema import SCHEMA_VERSION, envelope, refuse_malformed


def default_runs_dir() -> Path:
    """``$TEMBENCH_RUNS`` or ``results/runs`` under the current directory."""
    return Path(os.environ.get("TEMBENCH_RUNS", "results/runs"))


def atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; records are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def new_run(kind: str, command: list[str] | None = None, params: dict | None = None,
            fingerprint: dict | None = None, **extra) -> dict:
    """The envelope of a new run file of ``kind`` (:func:`tembench.results.schema.envelope`): a fresh run
    id, the creation time, the command line (default ``sys.argv``) and the environment fingerprint
    (default: this machine's); ``extra`` run-level fields and the status go with it. An unknown kind
    raises :class:`~tembench.errors.RecordError`."""
    from tembench.env import fingerprint as current_fingerprint

    now = datetime.now(timezone.utc)
    return envelope(kind, f"{now.strftime('%Y%m%dT%H%M%SZ')}-{kind}-{secrets.token_hex(3)}",
                    now.isoformat(timespec="seconds"), command if command is not None else sys.argv, params or {},
                    fingerprint if fingerprint is not None else current_fingerprint(), **extra)


def write_run(path: str | Path, kind: str, records: list[dict], status: str = "complete",
              command: list[str] | None = None, params: dict | None = None, fingerprint: dict | None = None) -> Path:
    """A whole run file at ``path`` in one atomic write (a baseline, for instance): the envelope of
    :func:`new_run` and ``records``, each checked against the schema of ``kind`` first, so nothing is
    written when one is malformed (:class:`~tembench.errors.RecordError`)."""
    for rec in records:
        refuse_malformed(rec, kind)
    data = {**new_run(kind, command, params, fingerprint, status=status), "records": list(records)}
    _write_run_file(Path(path), data)
    return Path(path)


def _write_run_file(path: Path, data: dict, hint: str = "") -> None:
    try:
        atomic_write_json(path, data)
    except OSError as e:
        raise ResultsWriteError(f"cannot write the run file {path}: {e.strerror or e} "
                                f"(errno {e.errno}){hint}") from None


class RunWriter:
    """Collects the records of one run and keeps them on disk after every ``add``; a record that does not
    conform to the schema of the run's kind is refused (:class:`~tembench.errors.RecordError`)."""

    def __init__(self, kind: str, out_dir: str | Path | None = None, command: list[str] | None = None,
                 params: dict | None = None, fingerprint: dict | None = None, **extra):
        data = new_run(kind, command, params, fingerprint, process=this_process(), **extra)
        out_dir = Path(out_dir) if out_dir is not None else default_runs_dir()
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create the results directory {out_dir}: {e.strerror}") from None
        self.kind = kind
        self.run_id = data["run_id"]
        self.path = out_dir / f"{self.run_id}.json"
        self.data = data
        self._t0 = time.monotonic()
        self._written = 0
        self._flush()

    @classmethod
    def reopen(cls, run: dict, command: list[str] | None = None, **resumed) -> "RunWriter":
        """A writer that adds to the existing run file ``run`` (as :func:`find_run` returns it, with its
        ``path``): its status is ``running`` again, its ``process`` this one, and a ``resumed`` entry (time,
        command line, process, ``resumed`` fields) says so; what it said about how it stopped goes."""
        self = cls.__new__(cls)
        data = {k: v for k, v in run.items() if k not in ("path", "missing", "error")}
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        data["resumed"] = [*(data.get("resumed") or []),
                           {"at": now, "command": list(command if command is not None else sys.argv),
                            "process": this_process(), **resumed}]
        data["process"] = this_process()
        data["status"] = "running"
        self.kind = data["kind"]
        self.run_id = data["run_id"]
        self.path = Path(run["path"])
        self.data = data
        self._t0 = time.monotonic() - float(data.get("elapsed_s") or 0)
        self._written = len(data["records"])
        self._flush()
        return self

    def add(self, record: dict) -> None:
        """Append ``record`` and rewrite the file; a malformed record raises
        :class:`~tembench.errors.RecordError` and is not added."""
        self.extend([record])

    def extend(self, records: list[dict]) -> None:
        """Append ``records`` and rewrite the file once; the records before the first malformed one are kept
        and it raises :class:`~tembench.errors.RecordError`."""
        try:
            for record in records:
                refuse_malformed(record, self.kind)
                self.data["records"].append(record)
        finally:
            if len(self.data["records"]) != self._written:
                self._flush()

    def update(self, write: bool = False, **fields) -> None:
        """Set run-level fields, written now with ``write``, else with the next record or at :meth:`close`."""
        self.data.update(fields)
        if write:
            self._flush()

    def order(self, key) -> None:
        """Sort the records by ``key(record)`` (stable; written with the next record or at :meth:`close`)."""
        self.data["records"].sort(key=key)

    @property
    def written(self) -> int:
        """How many records the file on disk holds."""
        return self._written

    def close(self, status: str = "complete", error: str | None = None, **summary) -> Path:
        """Final status (``complete``, ``interrupted``, ``failed``); ``summary`` adds run-level results.

        Raises :class:`~tembench.errors.ResultsWriteError` when the file cannot be written."""
        self.data["status"] = status
        self.data["elapsed_s"] = round(time.monotonic() - self._t0, 3)
        if error:
            self.data["error"] = error
        else:
            self.data.pop("error", None)
        self.data.update(summary)
        self._flush()
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close("complete")
            return False
        try:  # the error on its way out says more than a second failure to write would
            if issubclass(exc_type, KeyboardInterrupt):
                self.close("interrupted")
            else:
                self.close("failed", error=f"{exc_type.__name__}: {exc}")
        except ResultsWriteError:
            pass
        return False

    def _flush(self) -> None:
        _write_run_file(self.path, self.data, "; free space or pass --out DIR")
        self._written = len(self.data["records"])


def this_process() -> dict:
    """What identifies the process writing a run: pid, host and (Linux) its start time."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "start": _process_start(os.getpid())}


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not mistaken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(process: dict) -> bool | None:
    """Whether the process that wrote a run is still running: None when it cannot be told from here
    (another host, or a run file without ``process``)."""
    pid = process.get("pid")
    if not isinstance(pid, int) or process.get("host") != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = process.get("start")
    return start is None or _process_start(pid) in (None, start)


def effective_status(run: dict) -> str:
    """The run's status as a reader should see it: ``stale`` for a ``running`` run whose process is gone."""
    status = run.get("status")
    if status == "running" and process_alive(run.get("process") or {}) is False:
        return "stale"
    return status


def load_run(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read run record {path}: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a tembench run record (a JSON object with 'schema_version' and 'records')")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UsageError(f"{path}: schema version {version!r} is not {SCHEMA_VERSION}; re-run the measurement")
    return data


def load_runs(directory: str | Path | None = None, kind: str | None = None) -> list[dict]:
    """All readable run files in ``directory`` (oldest first), incomplete ones included (their ``status``
    says ``running``, ``interrupted``, ``failed`` or, for a run whose process is gone, ``stale``);
    unreadable files are skipped with a warning."""
    directory = Path(directory) if directory is not None else default_runs_dir()
    runs = []
    for path in sorted(directory.glob("*.json")):
        try:
            run = load_run(path)
        except UsageError as e:
            print(f"warning: {e}", file=sys.stderr)
            continue
        if kind is None or run.get("kind") == kind:
            run["path"] = str(path)
            run["status"] = effective_status(run)
            runs.append(run)
    return runs


def find_run(ref: str | Path, runs_dir: str | Path | None = None) -> dict:
    """A run file given its path, or its run id (or a unique prefix) in the runs directory; the
    returned run carries its ``path``."""
    p = Path(ref)
    if p.suffix == ".json" or p.is_file():
        if not p.is_file():
            raise UsageError(f"no run file {p}; give an existing run file's path or a run id (see `tembench results --runs`)")
        run = load_run(p)
        run["path"] = str(p)
        return run
    directory = Path(runs_dir) if runs_dir else default_runs_dir()
    hits = sorted(directory.glob(f"{ref}*.json"))
    if len(hits) != 1:
        what = "no run" if not hits else f"{len(hits)} runs"
        raise UsageError(f"{what} in {directory} match {str(ref)!r}; give the run file's path or a unique run id")
    run = load_run(hits[0])
    run["path"] = str(hits[0])
    return run
