"""The paper tables' renderers: Markdown, LaTeX, CSV and HTML, and the files of ``results/papers/``.

Each only formats a :class:`~tembench.report.tables.TableView` (the view model); none measures or judges.
"""
from __future__ import annotations

import html
import re
from collections import Counter
from typing import Sequence

from tembench.errors import UsageError
from tembench.registry import Registry, registry
from tembench.report.claims import STATUS_EXPLAINED, STATUS_MISMATCH, is_match, summary_line
from tembench.report.render import fmt_value, to_csv, to_markdown
from tembench.report.tables import JUDGING_NOTE, UNITS_NOTE, TableView

CHECK_STATUS = {"✗": STATUS_MISMATCH, "≈": STATUS_EXPLAINED, "✓": "match"}  # a row's check mark in words (CSV)


def table_markdown(t: TableView) -> str:
    rows = t.records(mark=lambda text, row, group: f"**{text}**")
    body = f"## {t.heading}\n\n" + to_markdown(rows, t.columns())
    notes = (f"\n{t.n_mismatch} of {len(t.rows)} rows differ from the paper (✗ unexplained, ≈ explained; diff in "
             "bold)." if t.n_mismatch else "")
    return f"{body}{notes}\nRegenerate: `{t.command}`\n"


def conventions_markdown(tables: Sequence[TableView]) -> str:
    """The counting conventions the tables' cost claims name, each with where it comes from."""
    from tembench.cost.conventions import CONVENTIONS

    names = dict.fromkeys(n for t in tables for n in t.conventions)
    lines = [f"- `{n}`: {CONVENTIONS[n].source}" for n in names if n in CONVENTIONS]
    return "Counting conventions of these claims:\n\n" + "\n".join(lines) + "\n" if lines else ""


def to_markdown_doc(tables: Sequence[TableView], heading: str | None = None, summary: bool = False) -> str:
    """All tables as one Markdown document (``heading`` as its title; ``summary``: the claims per status and
    the conventions first)."""
    parts = [f"# {heading}\n"] if heading else []
    if summary:
        counts = sum((t.statuses for t in tables), Counter())
        parts.append(f"**Claims per status** (as `tembench claims` judges them; accuracy and latency are not "
                     f"measured here): {summary_line(counts)}.\n")
        parts.append(conventions_markdown(tables))
    parts.append(f"_{UNITS_NOTE}_\n")
    parts.append(f"_{JUDGING_NOTE}_\n")
    parts += [table_markdown(t) for t in tables]
    return "\n".join(p for p in parts if p)


def tables_csv(tables: Sequence[TableView]) -> str:
    rows, cols = [], ["paper", "table"]
    for t in tables:
        for c in t.columns():
            if c not in cols:
                cols.append(c)
        rows += [{"paper": t.paper, "table": t.source, **r} for r in t.records()]
    cols += ["status"]
    for r in rows:
        r["status"] = CHECK_STATUS.get(r.pop("check"), "")
    cols.remove("check")
    return to_csv(rows, cols)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
                  "×": r"$\times$", "−": "-", "–": "--", "—": "---", "±": r"$\pm$", "µ": r"$\mu$",
                  "✓": "ok", "✗": "differs", "\n": " "}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(text) -> str:
    """Text safe inside a LaTeX tabular cell: every special character escaped."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], str(text))


def table_latex(t: TableView) -> str:
    cols = t.columns(variant=False, diagnosis=False) + ["note"]
    rows = t.records()
    numeric = {c for c in cols if any(isinstance(r.get(c), (int, float)) for r in rows)}
    spec = "".join("r" if c in numeric or c.endswith((" diff", " published")) else "l" for c in cols)
    notes: dict[str, int] = {}  # diagnosis -> its number under the table
    lines = []
    for row, rec in zip(t.rows, rows):
        if row.diagnosis:
            rec["note"] = f"({notes.setdefault(row.diagnosis, len(notes) + 1)})"
        cells = []
        for c in cols:
            text = latex_escape(fmt_value(rec.get(c)))
            if c.endswith(" diff") and rec.get(c) and any(cell.status in (STATUS_MISMATCH, STATUS_EXPLAINED)
                                                          for g, cell in row.cells.items() if c == f"{g} diff"):
                text = rf"\textbf{{{text}}}"
            cells.append(text)
        lines.append(" & ".join(cells) + r" \\")
    out = [r"\begin{table}[htbp]", r"\centering", r"\small",
           rf"\caption{{{latex_escape(t.heading)}}}", rf"\label{{tab:{t.slug}}}",
           rf"\begin{{tabular}}{{{spec}}}", r"\hline",
           " & ".join(latex_escape(c) for c in cols) + r" \\", r"\hline", *lines, r"\hline", r"\end{tabular}"]
    if notes:
        out.append(r"\par\smallskip\footnotesize")
        out += [f"({i}) {latex_escape(n)}\\par" for n, i in notes.items()]
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def to_latex_doc(tables: Sequence[TableView]) -> str:
    head = ["% tembench report: paper tables, measured beside published. No packages needed beyond LaTeX2e.",
            f"% {UNITS_NOTE}", "% Bold diff = the measured value differs from the paper; (n) = the diagnosis below the table.", ""]
    return "\n".join(head) + "\n".join(table_latex(t) for t in tables)


def table_html(t: TableView) -> str:
    """One sortable <table> (the report's script sorts on a header click; numbers sort by data-v)."""
    cols = t.columns()
    recs = t.records()
    values = t.records(printed=False)  # published numbers to sort by (shown as printed)
    numeric = {c for c in cols if any(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)
                                      for r in values)}
    out = [f'<table class="sortable paper" id="t-{t.slug}" data-source="{html.escape(t.source)}">',
           "<thead><tr>" + "".join(f'<th class="{"num" if c in numeric else "txt"}">{html.escape(c)}</th>' for c in cols)
           + "</tr></thead>", "<tbody>"]
    for row, rec, num in zip(t.rows, recs, values):
        tds = []
        for c in cols:
            v = rec.get(c)
            cls, attr = [], ""
            if c in numeric and isinstance(num.get(c), (int, float)):
                attr, cls = f' data-v="{num.get(c)!r}"', ["num"]
            if c.endswith(" diff") and v:
                attr = f' data-v="{_diff_number(v)}"'
                status = next((cell.status for g, cell in row.cells.items() if c == f"{g} diff"), "")
                cls.append("ok" if is_match(status) else "bad" if status == STATUS_MISMATCH else "")
            if any(cell.smoke and c in (f"{g} measured", f"{g} diff") for g, cell in row.cells.items()):
                cls.append("smoke")  # random init or synthetic data: marked, never compared
            if c == "check":
                cls.append({"✗": "bad", "✓": "ok"}.get(v, ""))  # ≈ (explained): neither
            cls_attr = f' class="{" ".join(x for x in cls if x)}"' if any(cls) else ""
            tds.append(f"<td{cls_attr}{attr}>{html.escape(fmt_value(v))}</td>")
        out.append(f'<tr{" class=mismatch" if row.mismatched else ""}>' + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _diff_number(text: str) -> str:
    m = re.match(r"[+-]?\d+(\.\d+)?", text)
    return m.group(0) if m else ""


def render_tables(tables: Sequence[TableView], fmt: str) -> str:
    if fmt == "markdown":
        return to_markdown_doc(tables)
    if fmt == "latex":
        return to_latex_doc(tables)
    if fmt == "csv":
        return tables_csv(tables)
    raise UsageError(f"unknown table format {fmt!r}")


# ------------------------------------------------------------------------------------------
# results/papers/: one Markdown file per paper, and an index.
# ------------------------------------------------------------------------------------------

PAPERS_COMMAND = "tembench report --format markdown --runs none --out results/papers/"
INDEX_STATUSES = ("match", "match, convention", STATUS_EXPLAINED, STATUS_MISMATCH, "not measured")


def paper_name(paper: str, reg: Registry) -> str:
    """'TAM: Temporal Adaptive Module ...' (the key prefixed unless the title starts with it)."""
    title = reg.papers.get(paper, {}).get("title", "")
    if not title:
        return paper.upper()
    return title if title.upper().startswith(paper.upper()) else f"{paper.upper()}: {title}"


def paper_markdown_files(tables: Sequence[TableView], reg: Registry | None = None,
                         plots: Sequence[str] = ()) -> dict[str, str]:
    """{file name: text} for ``results/papers/``: ``<paper>.md`` per paper and ``README.md``."""
    reg = reg or registry()
    by_paper: dict[str, list[TableView]] = {}
    for t in tables:
        by_paper.setdefault(t.paper, []).append(t)
    files, index = {}, []
    for paper, ts in by_paper.items():
        info = reg.papers.get(paper, {})
        files[f"{paper}.md"] = (f"<!-- generated by `{PAPERS_COMMAND}`; do not edit -->\n"
                                + to_markdown_doc(ts, heading=paper_name(paper, reg), summary=True))
        n_rows, n_mis = sum(len(t.rows) for t in ts), sum(t.n_mismatch for t in ts)
        short = info.get("title", "").split(":")[0] if ":" in info.get("title", "") else paper.upper()
        counts = sum((t.statuses for t in ts), Counter())
        by_kind = Counter()
        for status, n in counts.items():
            by_kind["match" if status == "match" else "match, convention" if is_match(status) else status] += n
        index.append({"paper": f"[{short}]({paper}.md)", "tables": len(ts), "rows": n_rows,
                      "rows that differ": n_mis, "title": info.get("title", ""), "claims": sum(counts.values()),
                      **{k: by_kind.get(k, 0) for k in INDEX_STATUSES}})
    lines = [f"<!-- generated by `{PAPERS_COMMAND}`; do not edit -->", "# The papers' tables, measured",
             "", "Every table of every paper in the registry, the measured cost beside the published one.",
             f"Regenerate with `{PAPERS_COMMAND}` (a test fails when these files are stale).", "",
             to_markdown(index, ["paper", "title", "tables", "rows", "rows that differ"]),
             "Claims per status, as `tembench claims` judges them (cost counted here; accuracy and latency not "
             "measured):", "",
             to_markdown(index, ["paper", "claims", *INDEX_STATUSES]), f"_{JUDGING_NOTE}_", ""]
    for name in plots:
        lines += [f"![{name}]({name})", ""]
    files["README.md"] = "\n".join(lines).rstrip("\n") + "\n"
    return files
