"""``tembench claims``: every published number beside the measured one."""
from __future__ import annotations

import textwrap
from typing import Annotated, Optional

import typer

from tembench.cli.app import ColumnsOpt, FormatOpt, app, print_table
from tembench.cost.conventions import COUNTING_SLACK
from tembench.report.render import TABLE_WIDTH, OutputFormat

CLAIM_COLUMNS = ["source", "row", "metric", "claimed", "measured", "rel_err", "status"]
PLAIN = ("match", "not measured")  # statuses that need no line of explanation under the table


@app.command("claims", help=f"""Every number the papers publish beside the value measured under the claim's own protocol.

A published value is the interval its printed digits give: 40 means [39.5, 40.5), 43.02 means
[43.015, 43.025). A cost (GFLOPs per view, params) matches when the measured value lies in that interval
widened by {100 * COUNTING_SLACK:g}% each way, one constant for every paper: the spread between counters'
totals for the same model. Statuses: 'match' (plain fvcore, the paper's protocol); 'match, convention X
(fitted|stated)' (counted under the convention the registry names for the claim, fitted by us or stated
by the paper); 'mismatch, explained' (one hypothesis of a fixed list reproduces the published value: per
view vs total, MAC vs FLOP, an input size the paper itself states, a 1000-class head; the recomputed
number is shown); 'mismatch' (with where the measured cost goes and the registry's hand-written note);
'not measured' (accuracy and latency: see `tembench report`; latency is never judged against this
machine). A claim's own tolerance applies only with a written reason, printed beside it.

`--format markdown` renders each paper table in the paper's own row order. The claims per status, per
paper, are printed at the end.
""")
def claims_cmd(
    paper: Annotated[Optional[str], typer.Option(help="Only this paper's claims (e.g. tam, atm, ila, emim).")] = None,
    table: Annotated[Optional[str], typer.Option(help="Only one paper table, e.g. 'TAM Table 2'.")] = None,
    format: FormatOpt = OutputFormat.table,
    columns: ColumnsOpt = None,
    mismatches: Annotated[bool, typer.Option("--mismatches", help="Only claims that do not match (explained or not).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any measured claim is an unexplained mismatch.")] = False,
) -> None:
    from tembench.api import claims, report
    from tembench.report.claims import published_text, status_counts, summary_line

    rows = claims(paper, table)
    if format is OutputFormat.markdown:  # the paper tables, as `tembench report --format markdown` renders them
        print(report("markdown", paper=paper, table=table, runs="none"), end="")
    else:
        shown = [r for r in rows if r["status"].startswith("mismatch")] if mismatches else rows
        for r in shown:
            if format is OutputFormat.table:  # the published digits as printed, the difference in percent
                r["claimed"] = published_text(r["printed"], r["total"], r["protocol"])
                if r["rel_err"] is not None:
                    r["rel_err"] = f"{100 * r['rel_err']:+.2f}%"
        print_table(shown, format, CLAIM_COLUMNS, columns,
                    "Published vs measured (GFLOPs per view, fvcore MACs unless the claim names another convention)")
        if format is OutputFormat.table and not columns:
            for r in shown:
                if r.get("diagnosis") and (r["status"] not in PLAIN or r.get("tolerance_reason")):
                    print(textwrap.fill(f"{r['source']} · {r['row'] or r['variant']} · {r['metric']} · {r['status']}: "
                                        f"{r['diagnosis']}", TABLE_WIDTH, subsequent_indent="    "))
    # the summary people quote: on stdout after a table, on stderr after machine-readable output
    out = print if format is OutputFormat.table else (lambda line: typer.echo(line, err=True))
    out("")
    for name, counts in sorted(status_counts(rows).items()):
        out(textwrap.fill(f"{name}: {summary_line(counts)}", TABLE_WIDTH, subsequent_indent="    "))
    if strict and any(r["status"] == "mismatch" for r in rows):
        raise typer.Exit(1)
