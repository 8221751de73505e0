"""The one run driver behind every sweep (cost, runtime): measure each case, keep each record.

:func:`run_cases` measures a list of cases with a progress bar, appends every record to the run file as
soon as it exists, and never lets one case end the sweep: a case whose measurement raises becomes a
failed record (``status = "error"`` and a one-line ``error``) and the next case runs. It stops early
only when asked to (Ctrl-C, SIGTERM) or when the run file cannot be written (disk full); either way the
records measured so far are returned, the file keeps everything it could, and :attr:`RunResult.note`
says how much.

>>> result = run_cases("cost", cases, measure=lambda c: {...}, failed_record=lambda c, err: {...},
...                    describe=lambda c: c.label)
>>> result.records, result.path, result.failed, result.stopped
"""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tembench.errors import ResultsWriteError, one_line
from tembench.results.store import RunWriter

OK_STATUSES = ("ok", "oom", "skipped")  # what a sweep may end with and still exit 0


@dataclass
class RunResult:
    """What a sweep measured and where it is kept."""

    records: list[dict]
    total: int
    path: Path | None = None
    written: int = 0
    stopped: str | None = None  # None (ran to the end), "interrupted" or "write-error"
    error: str | None = None  # why it stopped early (the write error), one line
    statuses: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the grid left out, and why

    @property
    def failed(self) -> int:
        """Records whose case failed (status ``error``)."""
        return sum(n for s, n in self.statuses.items() if s not in OK_STATUSES)

    @property
    def note(self) -> str:
        """One line: how many cases were measured, failed and kept where."""
        done = len(self.records)
        line = f"{done} of {self.total} {'case' if self.total == 1 else 'cases'} measured"
        if self.failed:
            line += f", {self.failed} failed"
        if self.path is not None:
            line += f"; {self.written} kept in {self.path}" if self.written < done else f"; kept in {self.path}"
            if self.written < done:
                line += f" ({done - self.written} not written: printed above)"
        return line


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises KeyboardInterrupt (as Ctrl-C does), so a killed run closes cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
              progress: bool = True) -> RunResult:
    """Measure every case and keep every record (see the module docstring).

    ``measure(case)`` returns the case's record; when it raises, ``failed_record(case, reason)`` gives the
    record of the failure instead. ``summary(records)`` adds run-level results when the run completes.
    With ``save`` the records go to a new run file of ``kind`` in ``out`` (default: the runs directory).
    """
    writer = RunWriter(kind, out, params=params, fingerprint=fingerprint) if save else None
    result = RunResult([], len(cases), path=writer.path if writer else None)
    try:
        with sigterm_as_interrupt(), _progress(verb, progress) as bar:
            task = bar.add_task(verb, total=len(cases))
            for case in cases:
                bar.update(task, description=describe(case))
                try:
                    rec = measure(case)
                except Exception as e:  # noqa: BLE001 -- recorded; the sweep goes on
                    rec = failed_record(case, one_line(e))
                result.records.append(rec)
                status = rec.get("status", "ok")
                result.statuses[status] = result.statuses.get(status, 0) + 1
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
        if writer:
            try:
                writer.close("failed", error=one_line(e))
            except ResultsWriteError:
                pass
        raise
    if writer:
        try:
            if result.stopped is None:
                writer.close("complete", **(summary(result.records) if summary else {}))
            else:
                writer.close("interrupted" if result.stopped == "interrupted" else "failed", error=result.error)
        except ResultsWriteError as e:
            result.stopped = result.stopped or "write-error"
            result.error = result.error or str(e)
        result.written = writer.written
    return result
