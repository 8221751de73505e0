"""``tembench results``: read the results store back, filtered, as a table, JSON or CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tembench.cli import FormatOpt, PatternsArg, app
from tembench.report.render import OutputFormat, print_rows

RECORD_COLUMNS = ["run_id", "variant", "frames", "input_size", "batch", "device", "dtype", "gflops", "latency_ms",
                  "latency_p90_ms", "clips_per_s", "temporal_ms", "rss_increase_mib", "mem_peak_alloc_mib", "max_batch",
                  "status", "run_status"]
RUN_COLUMNS = ["run_id", "kind", "run_status", "created", "records", "variants", "device", "hardware_hash",
               "elapsed_s"]


@app.command("results")
def results_cmd(
    patterns: PatternsArg = None,
    kind: Annotated[Optional[str], typer.Option(help="Only runs of this kind: cost, runtime, ...")] = None,
    status: Annotated[Optional[str], typer.Option(help="Only records with this status: ok, oom, error, skipped.")] = None,
    run_status: Annotated[Optional[str], typer.Option(help="Only runs with this status: complete, running, interrupted, failed.")] = None,
    device: Annotated[Optional[str], typer.Option(help="Only records measured on this device (cpu, cuda, cuda:1).")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="Only records in this dtype (fp32, fp16, bf16).")] = None,
    run: Annotated[Optional[str], typer.Option(help="Only the run whose id starts with this.")] = None,
    since: Annotated[Optional[str], typer.Option(help="Only runs created at or after this UTC date or time, e.g. 2026-11-21.")] = None,
    hardware: Annotated[Optional[str], typer.Option(help="Only runs whose hardware hash starts with this; 'current' is this machine.")] = None,
    last: Annotated[Optional[int], typer.Option(help="Only the N newest runs (after the other run filters).")] = None,
    where: Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE on any record field, e.g. --where frames=8; repeatable.")] = None,
    runs: Annotated[bool, typer.Option("--runs", help="One row per run instead of one per record.")] = False,
    dir: Annotated[Optional[Path], typer.Option("--dir", help="Results directory. Default: $TEMBENCH_RUNS or results/runs.")] = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Records from the results store (incomplete runs included), filtered.

    Table columns are a summary; --format json or csv gives every field of every record.
    """
    from tembench.api import results

    rows = results(dir, runs=runs, patterns=patterns, kind=kind, status=status, run_status=run_status,
                   device=device, dtype=dtype, run=run, since=since, hardware=hardware, last=last, where=where)
    cols = None
    if format is OutputFormat.table:
        wanted = RUN_COLUMNS if runs else RECORD_COLUMNS
        cols = [c for c in wanted if any(r.get(c) is not None for r in rows)] or None
    what = "runs" if runs else "records"
    print_rows(rows, format, columns=cols, title=f"{len(rows)} {what} (GFLOPs per view, fvcore; latency in ms)")
