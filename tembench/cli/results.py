"""``tembench results``: read the results store back, filtered, as a table, JSON or CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tembench.cli.app import ColumnsOpt, FormatOpt, PatternsArg, app, print_table
from tembench.report.render import OutputFormat, plural

RECORD_COLUMNS = ["variant", "frames", "input_size", "batch", "device", "gflops", "latency_ms", "clips_per_s", "top1",
                  "status", "run_status"]
RUN_COLUMNS = ["run_id", "kind", "run_status", "records", "variants", "device", "hardware_hash", "elapsed_s"]


@app.command("results")
def results_cmd(
    patterns: PatternsArg = None,
    kind: Annotated[Optional[str], typer.Option(help="Only runs of this kind: cost, runtime, accuracy, latency.")] = None,
    status: Annotated[Optional[str], typer.Option(help="Only records with this status: ok, oom, error, skipped.")] = None,
    run_status: Annotated[Optional[str], typer.Option(help="Only runs with this status: complete, running, interrupted, failed, stale (running, but its process is gone).")] = None,
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
    columns: ColumnsOpt = None,
) -> None:
    """Records from the results store (incomplete runs included), filtered.

    Table columns are a summary (--columns all for every field); --format json or csv gives every field
    of every record. A run still marked running whose process is gone shows as 'stale'.
    """
    from tembench.api import results

    rows = results(dir, runs=runs, patterns=patterns, kind=kind, status=status, run_status=run_status,
                   device=device, dtype=dtype, run=run, since=since, hardware=hardware, last=last, where=where)
    print_table(rows, format, RUN_COLUMNS if runs else RECORD_COLUMNS, columns,
                 f"{plural(len(rows), 'run' if runs else 'record')} (GFLOPs per view, fvcore; latency in ms)")
