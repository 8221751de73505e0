"""The one run driver behind every sweep (cost, runtime): measure each case, keep each record.

:func:`run_cases` measures a list of cases with a progress bar, appends every record to the run file as
soon as it exists, and never lets one case end the sweep: a case whose measurement raises becomes a
failed record (``status = "error"`` and a one-line ``error``) and the next case runs. It stops early
only when asked to (Ctrl-C, SIGTERM) or when the run file cannot be written (disk full); either way the
records measured so far are returned, the file keeps everything it could, and :attr:`RunResult.note`
says how much.

Given each case's key (``key``), a sweep also:

* records the key in every record (``case``) and the whole grid in the run file (``grid``), and, when it
  stops early, the cases still ``missing``;
* resumes (``resume``, a run file that stopped early): only the cases of the run's grid that have no
  record yet are measured, into the same file;
* runs sharded over the ranks of a torchrun launch (``launch``, :mod:`tembench.runtime.shard`): rank 0
  plans (the units of work, largest counted cost first), every rank claims units from a shared counter
  and hands each record to rank 0 as it is measured, and rank 0 alone writes the run file and shows the
  one progress bar (cases done over all ranks, time left). A rank that dies leaves its case missing and is
  named in the run file (``workers``); the run can then be completed with ``--resume``.

>>> result = run_cases("cost", cases, measure=lambda c: {...}, failed_record=lambda c, err: {...},
...                    describe=lambda c: c.label)
>>> result.records, result.path, result.failed, result.stopped
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Sequence

from tembench.errors import ResultsWriteError, UsageError, one_line
from tembench.results.schema import record_case_key
from tembench.results.store import RunWriter, process_alive
from tembench.signals import raise_if_stopped, sigterm_as_interrupt

OK_STATUSES = ("ok", "oom", "skipped")  # what a sweep may end with and still exit 0
GRACE_S = 10.0  # how long rank 0, stopped, waits for the other ranks to hand over their last records


@dataclass
class RunResult:
    """What a sweep measured and where it is kept."""

    records: list[dict]
    total: int
    path: Path | None = None
    written: int = 0
    stopped: str | None = None  # None (ran to the end), "interrupted", "write-error" or "incomplete" (a rank stopped)
    error: str | None = None  # why it stopped early (the write error), one line
    statuses: dict[str, int] = field(default_factory=dict)  # of the records measured now
    notes: list[str] = field(default_factory=list)  # what the grid left out, and why
    run_id: str | None = None
    before: int = 0  # cases of a resumed run that had records already
    measured: int | None = None  # records measured now (default: all of ``records``)
    rank: int = 0
    world: int = 1
    missing: list[str] = field(default_factory=list)  # keys of the grid's cases without a record
    ranks: list[str] = field(default_factory=list)  # one line per rank that stopped early
    kind: str = ""  # the run's kind: cost, runtime

    @property
    def failed(self) -> int:
        """Records whose case failed (status ``error``)."""
        return sum(n for s, n in self.statuses.items() if s not in OK_STATUSES)

    @property
    def note(self) -> str:
        """One line: how many cases were measured, failed and kept where, and what is missing."""
        done = len(self.records) if self.measured is None else self.measured
        todo = self.total - self.before
        line = f"{done} of {todo} {'case' if todo == 1 else 'cases'} measured"
        if self.world > 1:
            line += f" over {self.world} ranks"
        if self.before:
            line += f" (resumed: {self.before} of {self.total} had records)"
        if self.failed:
            line += f", {self.failed} failed"
        if self.path is not None:
            kept = len(self.records)
            line += f"; {self.written} kept in {self.path}" if self.written < kept else f"; kept in {self.path}"
            if self.written < kept:
                line += f" ({kept - self.written} not written: printed above)"
        for r in self.ranks:
            line += f"; {r}"
        if self.missing:
            line += f"; {len(self.missing)} {'case' if len(self.missing) == 1 else 'cases'} missing"
            if self.path is not None and self.run_id:
                line += f": complete them with `tembench profile --resume {self.run_id}`"
        return line


def _progress(verb: str, show: bool):
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True, markup=False, emoji=False, highlight=False)
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), transient=True, console=console,
                    disable=not (show and sys.stderr.isatty()))


def run_cases(kind: str, cases: Sequence[Any], measure: Callable[[Any], dict],
              failed_record: Callable[[Any, str], dict], describe: Callable[[Any], str] = str, *,
              out: str | Path | None = None, save: bool = True, params: dict | None = None,
              fingerprint: dict | None = None, summary: Callable[[list[dict]], dict] | None = None,
              on_record: Callable[[dict], None] | None = None, verb: str = "measuring",
              progress: bool = True, key: Callable[[Any], str] | None = None,
              weight: Callable[[Any], float] | None = None, group: Callable[[Any], Hashable] | None = None,
              resume: dict | None = None, launch=None, worker: dict | None = None) -> RunResult:
    """Measure every case and keep every record (see the module docstring).

    ``measure(case)`` returns the case's record; when it raises, ``failed_record(case, reason)`` gives the
    record of the failure instead. ``summary(records)`` adds run-level results when the run completes.
    With ``save`` the records go to a new run file of ``kind`` in ``out`` (default: the runs directory).

    ``key(case)`` names each case (:func:`tembench.results.schema.case_key`): it is needed to ``resume`` a
    run (the run file as :func:`~tembench.results.store.find_run` reads it; on rank 0 only) and to shard
    over a ``launch`` (:class:`tembench.runtime.shard.Launch`). Sharded, ``weight(case)`` (the counted
    cost) orders the units of work, largest first, and cases with the same ``group(case)`` form one unit
    (measured by one rank, in grid order). ``worker`` (this rank's device, cores) goes into the run file.
    """
    if key is None:
        if resume is not None or (launch is not None and launch.sharded):
            raise ValueError("run_cases: resuming or sharding a sweep needs the cases' key")
        return _run_plain(kind, cases, measure, failed_record, describe, out=out, save=save, params=params,
                          fingerprint=fingerprint, summary=summary, on_record=on_record, verb=verb, progress=progress)
    from tembench.runtime import shard

    launch = launch if launch is not None else shard.Launch()
    return _Sweep(kind, cases, measure, failed_record, describe, key, weight, group, launch, out=out, save=save,
                  params=params, fingerprint=fingerprint, summary=summary, on_record=on_record, verb=verb,
                  progress=progress, resume=resume, worker=worker or {}).run()


def _run_plain(kind, cases, measure, failed_record, describe, *, out, save, params, fingerprint, summary, on_record,
               verb, progress) -> RunResult:
    """One process, no case keys: measure the cases in order."""
    writer = RunWriter(kind, out, params=params, fingerprint=fingerprint) if save else None
    result = RunResult([], len(cases), path=writer.path if writer else None, kind=kind)
    try:
        with sigterm_as_interrupt(), _progress(verb, progress) as bar:
            task = bar.add_task(verb, total=len(cases))
            for case in cases:
                bar.update(task, description=describe(case))
                rec = _measure(case, measure, failed_record)
                result.records.append(rec)
                _count(result, rec)
                if on_record is not None:
                    on_record(rec)
                if writer:
                    writer.add(rec)
                bar.advance(task)
    except KeyboardInterrupt:
        result.stopped = "interrupted"
    except ResultsWriteError as e:
        result.stopped, result.error = "write-error", str(e)
    except BaseException as e:  # not a case's failure (those are records): close the file, then raise
        _close_failed(writer, e)
        raise
    if writer:
        _close(writer, result, summary, result.records)
    return result


def _measure(case, measure, failed_record) -> dict:
    """The case's record, or its failure's. A stop (SIGTERM, Ctrl-C) that the measured code swallowed or
    turned into another error stops the sweep here, and that case is left unmeasured (``missing``):
    a measurement cut short is not recorded as a result or as a failure."""
    try:
        rec = measure(case)
    except Exception as e:  # noqa: BLE001 -- recorded; the sweep goes on
        raise_if_stopped()
        return failed_record(case, one_line(e))
    raise_if_stopped()
    return rec


def _count(result: RunResult, rec: dict) -> None:
    status = rec.get("status", "ok")
    result.statuses[status] = result.statuses.get(status, 0) + 1


def _close_failed(writer: RunWriter | None, e: BaseException) -> None:
    if writer:
        try:
            writer.close("failed", error=one_line(e))
        except ResultsWriteError:
            pass


def _close(writer: RunWriter, result: RunResult, summary, records: list[dict]) -> None:
    try:
        if result.stopped is None:
            writer.close("complete", **(summary(records) if summary else {}))
        elif result.stopped == "interrupted":
            writer.close("interrupted", error=result.error)
        else:
            writer.close("failed", error=result.error)
    except ResultsWriteError as e:
        result.stopped = result.stopped or "write-error"
        result.error = result.error or str(e)
    result.written = writer.written


class _Sweep:
    """A sweep whose cases have keys: resumable, and sharded over a launch's ranks."""

    def __init__(self, kind, cases, measure, failed_record, describe, key, weight, group, launch, *, out, save,
                 params, fingerprint, summary, on_record, verb, progress, resume, worker):
        self.kind, self.measure, self.failed_record, self.describe = kind, measure, failed_record, describe
        self.weight, self.group, self.launch = weight, group, launch
        self.out, self.save, self.params, self.summary = out, save, params, summary
        self.on_record, self.verb, self.progress, self.resume, self.worker = on_record, verb, progress, resume, worker
        self.by_key: dict[str, Any] = {}
        for case in cases:  # a case listed twice (--frames 8,8) is measured once
            self.by_key.setdefault(key(case), case)
        self.fingerprint = fingerprint
        self.writer: RunWriter | None = None
        self.lock = threading.Lock()
        self.records: list[dict] = []  # rank 0: the run's records (a resumed run's first); others: their own
        self.plan_units: list[list[str]] = []
        self.statuses: dict[str, int] = {}  # of the records measured now (rank 0: by every rank)
        self.new = 0  # records measured now (rank 0: by every rank)
        self.hellos: dict[int, dict] = {}  # rank 0: what each rank said about itself
        self.workers_before: list[dict] = list((resume or {}).get("workers") or [])  # a resumed run's launches

    # ---- rank 0 plans ------------------------------------------------------------------------------

    def _plan(self) -> dict:
        launch, kind = self.launch, self.kind
        grid = list(self.by_key)
        old: list[dict] = []
        if self.resume is not None:
            grid = self.resume.get("grid") or grid
            gone = [k for k in grid if k not in self.by_key]
            if gone:
                raise UsageError(f"{len(gone)} of the {len(grid)} cases of run {self.resume.get('run_id')} are not in "
                                 f"the grid its parameters give now (first: {gone[0]}): the registry changed; start "
                                 "a new run")
            old = list(self.resume.get("records") or [])
            for rec in old:  # records from before records carried their case key
                if isinstance(rec, dict) and "case" not in rec and (k := record_case_key(rec, kind)):
                    rec["case"] = k
        done = {record_case_key(r, kind) for r in old if isinstance(r, dict)}
        pending = [k for k in grid if k not in done]
        units: dict[Hashable, list[str]] = {}
        for k in pending:
            g = self.group(self.by_key[k]) if self.group is not None else k
            units.setdefault(("group", g) if self.group is not None else k, []).append(k)
        plan_units = list(units.values())
        if launch.sharded and pending:
            if len(plan_units) < launch.world:
                n = len(plan_units)
                what = ("case" if n == 1 else "cases") if self.group is None else (
                    "unit of work" if n == 1 else "units of work") + " (a variant's batch sizes go together)"
                raise UsageError(f"{launch.world} ranks for {n} {what}"
                                 f"{' left to resume' if self.resume is not None else ''}: start at most "
                                 f"{n} {'process' if n == 1 else 'processes'} (--nproc-per-node x --nnodes)")
            weights = self._weights(plan_units)
            plan_units = [plan_units[i] for i in _largest_first(weights)]
        if self.save and (pending or self.resume is None):
            if self.resume is not None:
                self.writer = RunWriter.reopen(self.resume, world_size=launch.world, cases=len(pending))
            else:
                extra = {"grid": grid}
                self.writer = RunWriter(kind, self.out, params=self.params, fingerprint=self.fingerprint, **extra)
        self.records = old
        return {"units": plan_units, "grid": grid, "before": len(grid) - len(pending),
                "path": str(self.writer.path) if self.writer else (self.resume or {}).get("path"),
                "run_id": self.writer.run_id if self.writer else (self.resume or {}).get("run_id")}

    def _weights(self, units: list[list[str]]) -> list[float]:
        if self.weight is None:
            return [float(len(u)) for u in units]
        weights = []
        for unit in units:
            try:
                weights.append(sum(float(self.weight(self.by_key[k])) for k in unit))
            except Exception:  # noqa: BLE001 -- a case that cannot be counted: scheduled early, as if large
                weights.append(float("inf"))
        return weights

    # ---- every rank --------------------------------------------------------------------------------

    def run(self) -> RunResult:
        launch = self.launch
        plan = launch.share("plan", self._plan)
        unknown = [k for unit in plan["units"] for k in unit if k not in self.by_key]
        if unknown:
            if launch.sharded:
                _quietly(launch.end, "failed")
            raise UsageError(f"rank {launch.rank} on {launch.host}: case {unknown[0]} of rank 0's plan is not in this "
                             "rank's grid; every node needs the same tembench, registry and options")
        units, grid = plan["units"], plan["grid"]
        self.plan_units = units
        result = RunResult([], len(grid), path=Path(plan["path"]) if plan["path"] else None, before=plan["before"],
                           run_id=plan["run_id"], rank=launch.rank, world=launch.world, kind=self.kind)
        if not units:  # a resumed run whose every case has a record
            result.records, result.measured = list(self.records), 0
            result.written = len(self.records)
            return result
        if launch.sharded:
            launch.hello(self._hello())
            launch.start_heartbeat()
        measured, in_flight = 0, None
        show = self.progress and launch.is_main
        try:
            with sigterm_as_interrupt(), _progress(self.verb, show) as bar:
                task = bar.add_task(self.verb, total=len(grid), completed=plan["before"])
                merger = _Merger(self, bar, task, plan["before"]) if launch.sharded and launch.is_main else None
                if merger:
                    bar.update(task, description=f"{self.verb} on {launch.world} ranks")
                    merger.start()
                try:
                    for unit in self._units(len(units)):
                        for k in units[unit]:
                            case = self.by_key[k]
                            in_flight = k
                            if not launch.sharded:
                                bar.update(task, description=self.describe(case))
                            rec = _measure(case, self.measure, self.failed_record)
                            rec = {**rec, "case": k}
                            if launch.sharded or self.resume is not None:
                                rec.update(rank=launch.rank, host=launch.host,
                                           hardware_hash=(self.fingerprint or {}).get("hardware_hash") or _hw_hash())
                            measured += 1
                            self._keep(rec)
                            in_flight = None
                            if launch.sharded:
                                launch.finished_case()
                            else:
                                bar.advance(task)
                            if merger and merger.error:
                                raise merger.error
                finally:
                    if merger:
                        merger.stop()
                if merger and not merger.error:
                    self._wait_for_ranks(merger)
                if merger and merger.error:
                    raise merger.error
        except KeyboardInterrupt:
            result.stopped = "interrupted"
        except ResultsWriteError as e:
            result.stopped, result.error = "write-error", str(e)
        except BaseException as e:
            if launch.sharded:
                _quietly(launch.end, "failed", in_flight, measured)
                launch.stop_heartbeat()
            _close_failed(self.writer, e)
            raise
        if launch.sharded:
            _quietly(launch.end, result.stopped or "complete", in_flight, measured)
            launch.stop_heartbeat()
        result.measured, result.statuses = self.new, self.statuses
        if not launch.is_main:
            result.records = self.records
            return result
        if launch.sharded and result.stopped == "interrupted":
            self._grace()
        if launch.sharded:
            result.ranks = self._workers()
            if result.ranks and result.stopped is None:
                result.stopped = "incomplete"
        self._finish(result, grid)
        return result

    def _units(self, n: int) -> Iterator[int]:
        if not self.launch.sharded:
            yield from range(n)
            return
        while (i := self.launch.claim(n)) is not None:
            yield i

    def _keep(self, rec: dict) -> None:
        """Rank 0 (or a single process): into the run file; another rank: handed to rank 0."""
        if self.launch.is_main:
            self._merge([rec])
        else:
            self._tally(rec)
            self.records.append(rec)
            if self.on_record is not None:
                self.on_record(rec)
            self.launch.post(rec)

    def _merge(self, recs: list[dict]) -> None:
        with self.lock:
            for rec in recs:
                self._tally(rec)
                self.records.append(rec)
                if self.on_record is not None:
                    self.on_record(rec)
            if self.writer:
                self.writer.extend(recs)

    def _tally(self, rec: dict) -> None:
        status = rec.get("status", "ok")
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.new += 1

    def _hello(self) -> dict:
        from tembench.results.store import this_process

        return {**this_process(), "rank": self.launch.rank, "world_size": self.launch.world,
                "local_rank": self.launch.local_rank, **self.worker,
                "hardware_hash": (self.fingerprint or {}).get("hardware_hash") or _hw_hash(),
                "fingerprint": self.fingerprint or _current_fingerprint()}

    # ---- rank 0 waits for the others and closes the run --------------------------------------------

    def _wait_for_ranks(self, merger: "_Merger") -> None:
        """Collect the other ranks' records until each has ended or is lost."""
        launch = self.launch
        watch = _Watch(launch)
        while True:
            merger.poll()
            if watch.all_ended():
                merger.poll()
                return
            time.sleep(0.2)

    def _grace(self) -> None:
        """Stopped (Ctrl-C, or torchrun stopping every rank because one died): take what the other ranks
        hand over in their last seconds."""
        launch = self.launch
        watch = _Watch(launch)
        deadline = time.monotonic() + GRACE_S
        try:
            with sigterm_as_interrupt():
                while time.monotonic() < deadline and not watch.all_ended():
                    time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        try:
            self._merge(launch.collect())
        except ResultsWriteError:
            pass
        except Exception:  # noqa: BLE001 -- the store went with the launch: keep what is already written
            pass

    def _announce(self) -> None:
        """Rank 0: put the ranks that said hello into the run file's ``workers`` (status ``running``), so
        that which process measures where can be read while the sweep runs."""
        launch = self.launch
        for r in range(launch.world):
            if r not in self.hellos and (hello := launch.read("hello", r)) is not None:
                self.hellos[r] = hello
                if self.writer:
                    with self.lock:
                        entries = [{**self.hellos[i], "status": "running"} for i in sorted(self.hellos)]
                        self.writer.update(workers=[*self.workers_before, *entries], write=True)

    def _workers(self) -> list[str]:
        """The run file's ``workers`` entries of this launch; one line per rank that stopped early."""
        launch = self.launch
        recorded = {r.get("case") for r in self.records}
        entries, lines = [], []
        for r in range(launch.world):
            hello = self.hellos.get(r) or _quietly(launch.read, "hello", r) or {"rank": r, "world_size": launch.world}
            end = _quietly(launch.read, "end", r)
            entry = {**hello, "rank": r, "world_size": launch.world, "measured": (end or {}).get("measured")}
            if end is None:
                entry["status"] = "lost"
                claimed = _quietly(launch.claimed, r)
                units = self.plan_units
                flight = [k for k in units[claimed] if k not in recorded] if claimed is not None and claimed < len(
                    units) else []
                entry["in_flight"] = flight[0] if flight else None
            else:
                entry["status"] = end["status"]
                entry["in_flight"] = end.get("in_flight")
            entries.append(entry)
            if r != 0 and entry["status"] != "complete":
                what = "was lost (killed, or its node went away)" if entry["status"] == "lost" else f"stopped ({entry['status']})"
                where = f" while measuring {entry['in_flight']}" if entry.get("in_flight") else ""
                lines.append(f"rank {r} on {entry.get('host', '?')} {what}{where}")
        if self.writer:
            self.writer.update(workers=[*self.workers_before, *entries])
        return lines

    def _finish(self, result: RunResult, grid: list[str]) -> None:
        index = {k: i for i, k in enumerate(grid)}
        order = lambda rec: index.get(rec.get("case"), len(index))  # noqa: E731
        self.records.sort(key=order)
        recorded = {r.get("case") for r in self.records}
        result.missing = [k for k in grid if k not in recorded]
        result.records, result.measured = self.records, self.new
        if self.writer is None:
            return
        self.writer.order(order)
        if result.missing:
            self.writer.update(missing=result.missing)
        if result.ranks and result.stopped in ("incomplete", "interrupted"):
            result.error = "; ".join(result.ranks)
        _close(self.writer, result, self.summary, self.records)


def _largest_first(weights: list[float]) -> list[int]:
    from tembench.runtime.shard import largest_first

    return largest_first(weights)


def _hw_hash() -> str:
    from tembench.env import hardware_hash

    return hardware_hash()


def _current_fingerprint() -> dict:
    from tembench.env import fingerprint

    return fingerprint()


def _quietly(fn, *args):
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 -- the store went with the launch
        return None


class _Watch:
    """Which of the other ranks have ended (posted ``end``) or are lost: their process is gone (same host)
    or their heartbeat stood still for :data:`tembench.runtime.shard.LOST_AFTER_S`."""

    def __init__(self, launch):
        self.launch = launch
        self.beats: dict[int, tuple[int, float]] = {}

    def all_ended(self) -> bool:
        from tembench.runtime.shard import LOST_AFTER_S

        launch, now = self.launch, time.monotonic()
        for r in range(1, launch.world):
            if launch.store.check([launch.key("end", r)]):
                continue
            hello = launch.read("hello", r)
            if hello is not None and process_alive(hello) is False:
                continue
            beats = launch.beats(r)
            last = self.beats.get(r)
            if last is None or last[0] != beats:
                self.beats[r] = (beats, now)
            elif now - last[1] > LOST_AFTER_S:
                continue
            return False
        return True


class _Merger:
    """Rank 0's helper thread: moves the records other ranks hand over into the run file and keeps the
    progress bar at the cases done over all ranks."""

    def __init__(self, sweep: _Sweep, bar, task, before: int):
        self.sweep, self.bar, self.task, self.before = sweep, bar, task, before
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tembench-merge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def poll(self) -> None:
        if len(self.sweep.hellos) < self.sweep.launch.world:
            self.sweep._announce()
        self.sweep._merge(self.sweep.launch.collect())
        self.bar.update(self.task, completed=self.before + self.sweep.launch.done())

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.poll()
            except BaseException as e:  # noqa: BLE001 -- raised by the main thread at its next case
                self.error = e
                return
