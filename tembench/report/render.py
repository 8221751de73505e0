"""One place that turns records (lists of dicts) into a table, JSON, CSV or Markdown.

Tables, JSON and CSV always come from the same records; only the formatting differs.
"""
from __future__ import annotations

import csv
import io
import json
import math
from enum import Enum
from typing import Any, Iterable, Sequence


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


def _columns(rows: Sequence[dict], columns: Sequence[str] | None) -> list[str]:
    if columns:
        return list(columns)
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def fmt_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v != 0 and abs(v) < 0.01:
            return f"{v:.2e}"
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, (list, tuple)):
        return ",".join(fmt_value(x) for x in v)
    return str(v)


def to_json(rows: Iterable[dict]) -> str:
    return json.dumps(list(rows), indent=2, default=str)


def to_csv(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    cols = _columns(rows, columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return buf.getvalue()


def to_markdown(rows: Sequence[dict], columns: Sequence[str] | None = None, title: str | None = None) -> str:
    cols = _columns(rows, columns)
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = [f"**{esc(title)}**", ""] if title else []
    lines.append("| " + " | ".join(esc(c) for c in cols) + " |")
    lines.append("|" + "|".join(" ---: " if _numeric(rows, c) else " --- " for c in cols) + "|")
    for r in rows:
        lines.append("| " + " | ".join(esc(fmt_value(r.get(c))) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _numeric(rows: Sequence[dict], col: str) -> bool:
    vals = [r.get(col) for r in rows if r.get(col) is not None]
    return bool(vals) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)


def print_rows(rows: Sequence[dict], fmt: OutputFormat | str, columns: Sequence[str] | None = None,
               title: str | None = None, console=None, empty: str = "No results.") -> None:
    """Print records to stdout in the chosen format."""
    fmt = OutputFormat(fmt)
    if fmt is OutputFormat.json:
        print(to_json(rows))
    elif fmt is OutputFormat.csv:
        print(to_csv(rows, columns), end="")
    elif fmt is OutputFormat.markdown:
        print(to_markdown(rows, columns, title))
    else:
        from rich.console import Console
        from rich.table import Table

        import sys

        console = console or Console(markup=False, emoji=False, highlight=False,
                                     width=None if sys.stdout.isatty() else 240)
        if not rows:
            console.print(empty)
            return
        cols = _columns(rows, columns)
        table = Table(title=title, show_lines=False)
        for c in cols:
            table.add_column(c, justify="right" if _numeric(rows, c) else "left", overflow="fold")
        for r in rows:
            table.add_row(*(fmt_value(r.get(c)) for c in cols))
        console.print(table)
