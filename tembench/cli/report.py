"""``tembench report``: the papers' tables measured beside published, plots, one HTML file."""
from __future__ import annotations

import shlex
import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from tembench.cli.app import app


class ReportFormat(str, Enum):
    html = "html"
    markdown = "markdown"
    latex = "latex"
    csv = "csv"


@app.command("report")
def report_cmd(
    paper: Annotated[Optional[str], typer.Option(help="Only this paper's tables (e.g. tam, atm, ila, emim).")] = None,
    table: Annotated[Optional[str], typer.Option(help="Only one paper table, e.g. 'TAM Table 2'.")] = None,
    runs: Annotated[Optional[str], typer.Option(
        help="Stored runs to read accuracy and latency from: 'all' (default), 'none', or key=glob terms "
             "joined by commas, keys dir, run, kind, status, variant, dataset, device "
             "(e.g. kind=accuracy,variant=tam/*).")] = None,
    include_smoke_runs: Annotated[bool, typer.Option(
        "--include-smoke-runs",
        help="Also show accuracy runs that only prove the pipeline runs: random init (no --checkpoint), "
             "weights not recorded, or synthetic data (`tembench data synth`). They are marked and never "
             "compared with a paper's number. Default: left out, and the report says how many.")] = False,
    format: Annotated[ReportFormat, typer.Option("--format", "-f", case_sensitive=False,
                                                 help="html (one self-contained file), markdown, latex or csv.")] = ReportFormat.html,
    out: Annotated[Optional[str], typer.Option(
        help="File or directory (ending in /) to write. Default: tembench-report.html for html, stdout otherwise. "
             "Markdown into a directory writes one file per paper, an index and the plots.")] = None,
) -> None:
    """Every paper table with the measured number beside the published one, mismatches diagnosed.

    Cost is counted here on the meta device; accuracy and latency come from stored runs where they
    exist (accuracy only from trained weights on real data, unless --include-smoke-runs). The HTML report adds plots (top-1 vs GFLOPs, scaling with frames, temporal-module overhead),
    the environment and dataset fingerprints and the command behind every number.
    """
    from tembench.api import report

    command = ["tembench", "report"]
    for flag, value in (("--paper", paper), ("--table", table), ("--runs", runs), ("--format", format.value),
                        ("--out", out)):
        if value is not None:
            command += [flag, value]
    if include_smoke_runs:
        command.append("--include-smoke-runs")
    result = report(format.value, out, paper=paper, table=table, runs=runs, command=shlex.join(command),
                          include_smoke=include_smoke_runs,
                          on_note=lambda text: print(f"note: {text}", file=sys.stderr))
    if isinstance(result, str):
        print(result, end="")
    else:
        shown = result if len(result) <= 4 else [*result[:3], f"... {len(result) - 3} more"]
        print(f"wrote {', '.join(map(str, shown))}", file=sys.stderr)
