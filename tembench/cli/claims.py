"""``tembench claims``: every published number beside the measured one."""
from __future__ import annotations

import textwrap
from typing import Annotated, Optional

import typer

from tembench.cli.app import ColumnsOpt, FormatOpt, app, err, print_table
from tembench.report.render import TABLE_WIDTH, OutputFormat, fmt_value, print_rows


CLAIM_COLUMNS = ["source", "row", "metric", "claimed", "measured", "rel_err", "status"]


@app.command("claims")
def claims_cmd(
    paper: Annotated[Optional[str], typer.Option(help="Only this paper's claims (e.g. tam, atm, ila, emim).")] = None,
    table: Annotated[Optional[str], typer.Option(help="Only one paper table, e.g. 'TAM Table 2'.")] = None,
    format: FormatOpt = OutputFormat.table,
    columns: ColumnsOpt = None,
    mismatches: Annotated[bool, typer.Option("--mismatches", help="Only claims that do not match.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any measured claim does not match.")] = False,
) -> None:
    """Every number the papers publish beside the value measured under the claim's own protocol.

    `--format markdown` renders each paper table in the paper's own row order.
    """
    from tembench.api import claims, report

    rows = claims(paper, table)
    if format is OutputFormat.markdown:  # the paper tables, as `tembench report --format markdown` renders them
        print(report("markdown", paper=paper, table=table, runs="none"), end="")
    else:
        shown = [r for r in rows if r["status"] == "mismatch"] if mismatches else rows
        for r in shown:
            if format is OutputFormat.table:  # the published digits as printed, the difference in percent
                r["claimed"] = fmt_value(r["claimed"])
                if r["rel_err"] is not None:
                    r["rel_err"] = f"{100 * r['rel_err']:+.2f}%"
        print_table(shown, format, CLAIM_COLUMNS, columns,
                     "Published vs measured (GFLOPs per view, fvcore MACs unless the claim names another convention)")
        if format is OutputFormat.table and not columns:
            for r in shown:
                if r["status"] == "mismatch" and r.get("diagnosis"):
                    print(textwrap.fill(f"{r['source']} · {r['row'] or r['variant']} · {r['metric']}: {r['diagnosis']}",
                                        TABLE_WIDTH, subsequent_indent="    "))
    n_match = sum(r["status"] == "match" for r in rows)
    n_mis = sum(r["status"] == "mismatch" for r in rows)
    err(f"{len(rows)} claims: {n_match} match, {n_mis} mismatch, {len(rows) - n_match - n_mis} not measured")
    if strict and n_mis:
        raise typer.Exit(1)


