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


# Table headers for people (tables only: JSON and CSV keep the record's field names).
HEADERS = {
    "input_size": "size", "gflops": "GFLOPs", "gflops_total": "GFLOPs total", "temporal_gflops": "temp GFLOPs",
    "temporal_params": "temp params", "latency_ms": "ms", "latency_p90_ms": "p90 ms", "latency_spread": "spread",
    "clips_per_s": "clips/s", "videos_per_s": "videos/s", "temporal_ms": "temp ms", "rss_increase_mib": "RSS MiB",
    "mem_peak_alloc_mib": "alloc MiB", "mem_peak_reserved_mib": "resv MiB", "nvml_process_peak_mib": "NVML MiB",
    "max_batch": "max batch", "max_batch_bound": "bound", "run_status": "run", "hardware_hash": "hardware",
    "elapsed_s": "seconds", "mean_class_acc": "mean cls", "rel_err": "diff",
}
TABLE_WIDTH = 100  # the default table of every command fits this many columns


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 case``, ``2 cases``, ``1,024 records``."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def select_columns(rows: Sequence[dict], fmt: "OutputFormat | str", default: Sequence[str] | None,
                   given: str | None = None) -> list[str] | None:
    """The columns to print. ``given``: ``"all"`` or a comma list (from ``--columns``); otherwise tables
    show the ``default`` (essential) columns that hold a value in some row, and JSON, CSV and Markdown
    every field."""
    if given:
        if given.strip() == "all":
            return None
        wanted = [c.strip() for c in given.split(",") if c.strip()]
        known = set(_columns(rows, None))
        unknown = [c for c in wanted if rows and c not in known]
        if unknown:
            from tembench.errors import UsageError

            raise UsageError(f"--columns: no field {', '.join(map(repr, unknown))} in these records; "
                             f"fields: {', '.join(sorted(known))}")
        return wanted
    if OutputFormat(fmt) is not OutputFormat.table or default is None:
        return None
    present = [c for c in default if any(r.get(c) not in (None, "") for r in rows)]
    if "status" in present and all(r.get("status", "ok") == "ok" for r in rows):
        present.remove("status")
    return present or list(default)


def _columns(rows: Sequence[dict], columns: Sequence[str] | None) -> list[str]:
    if columns:
        return list(columns)
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def fmt_value(v: Any, fixed: bool = False) -> str:
    """A value as text: thousands separators, floats to 3 decimals (``fixed``: always 3, so a column's
    decimal points line up; otherwise trailing zeros dropped)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v != 0 and abs(v) < (0.0005 if fixed else 0.01):
            return f"{v:.2e}"
        if abs(v) >= 1e6:
            return f"{v:,.0f}"
        return f"{v:,.3f}" if fixed else f"{v:,.3f}".rstrip("0").rstrip(".")
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
               title: str | None = None, console=None, empty: str = "No results.", wide: bool = False) -> None:
    """Print records to stdout in the chosen format.

    A table takes the terminal's width, or :data:`TABLE_WIDTH` columns when stdout is not a terminal
    (long text wraps inside its column); ``wide`` (asked-for columns) allows 240."""
    fmt = OutputFormat(fmt)
    if fmt is OutputFormat.json:
        print(to_json(rows))
    elif fmt is OutputFormat.csv:
        print(to_csv(rows, columns), end="")
    elif fmt is OutputFormat.markdown:
        print(to_markdown(rows, columns, title))
    else:
        import sys

        from rich import box
        from rich.console import Console
        from rich.table import Table

        console = console or Console(markup=False, emoji=False, highlight=False,
                                     width=None if sys.stdout.isatty() else 240 if wide else TABLE_WIDTH)
        if not rows:
            console.print(empty)
            return
        cols = _columns(rows, columns)
        table = Table(title=title, show_lines=False, box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True,
                      pad_edge=False, title_justify="left")
        for c in cols:
            table.add_column(HEADERS.get(c, c), justify="right" if _numeric(rows, c) else "left", overflow="fold")
        for r in rows:
            table.add_row(*(fmt_value(r.get(c), fixed=True) for c in cols))
        console.print(table)
