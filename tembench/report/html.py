"""The report as one self-contained HTML file, and :func:`write_report`, the one entry point behind
``tembench report`` for every format.

The HTML file needs nothing but itself: plots are PNG data URIs (their SVGs are data-URI downloads),
the style and the sorting script are inline, and nothing is fetched, so it opens offline. Every
table sorts on a header click (numbers by value); ``#sort=TABLE-ID:COLUMN[:desc]`` in the address
sorts one table on load. Beside the tables: the environment fingerprint of the machine that counted
the cost, the stored runs the report read (command, fingerprint), the dataset fingerprints of the
accuracy runs, and the command behind every number. Accuracy runs that only show the pipeline runs
(random init, synthetic data) are left out, listed with the reason, unless asked for; then they are
marked wherever they appear.

:func:`write_report` is the pipeline: load the stored runs (:mod:`tembench.results.runset`), build the
tables' view model (:mod:`tembench.report.tables`, every claim measured and judged), count what the
plots draw (:func:`plot_costs`), render (:mod:`tembench.report.formats`, :mod:`tembench.report.plots`).
"""
from __future__ import annotations

import base64
import html
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from tembench.errors import UsageError
from tembench.registry import Registry, registry
from tembench.report.claims import evaluated
from tembench.report.formats import paper_markdown_files, paper_name, render_tables, table_html
from tembench.report.measure import gflops_per_view, temporal_cost
from tembench.report.plots import PlotCosts, all_plots, cost_needs
from tembench.report.tables import UNITS_NOTE, TableView, build_tables
from tembench.results.runset import (SMOKE_NOTE, RunSet, dataset_fingerprint, dataset_name, is_accuracy, load_runset,
                                     run_command, smoke_reason)

FORMATS = ("html", "markdown", "latex", "csv")
DEFAULT_FILES = {"html": "tembench-report.html", "markdown": "report.md", "latex": "report.tex", "csv": "report.csv"}

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1500px;padding:0 24px 48px;color:#1b1b1b}
h1{margin:24px 0 4px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:40px}h3{margin:28px 0 6px;font-size:15px}
nav ul{columns:3;font-size:13px}code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;white-space:pre-wrap}
.units{color:#555;font-size:12px}.wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0}th,td{border:1px solid #d8d8d8;padding:3px 7px;white-space:nowrap}td:last-child{white-space:normal;min-width:280px}
th{background:#f0f0f0;position:sticky;top:0;cursor:pointer;user-select:none;white-space:nowrap}
th.num,td.num{text-align:right}th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.mismatch{background:#fff4f2}td.bad{background:#f8d3cd;font-weight:600}td.ok{color:#1d7a30}
figure{margin:18px 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#444;font-size:13px;max-width:1100px}
details{margin:4px 0 0;font-size:12.5px}#report-status{font-size:12px;color:#666}
td.smoke{background:#fff3cd;color:#7a4b00;font-style:italic}.leftout{background:#fff8e1;border-left:4px solid #e0a800;padding:6px 10px}
"""

_SCRIPT = r"""
(function () {
  function key(td) {
    if (!td) return {n: null, s: ""};
    var v = td.getAttribute("data-v"), s = td.textContent.trim();
    var n = v !== null && v !== "" ? parseFloat(v) : parseFloat(s.replace(/,/g, ""));
    return {n: isNaN(n) || !/^[-+]?[\d.,]/.test(v !== null && v !== "" ? v : s) ? null : n, s: s};
  }
  function sortTable(table, col, desc) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x.s === "" && y.s !== "") return 1;
      if (y.s === "" && x.s !== "") return -1;
      var c = x.n !== null && y.n !== null ? x.n - y.n : x.s.localeCompare(y.s, undefined, {numeric: true});
      return desc ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (i === col) th.setAttribute("aria-sort", desc ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.title = "sort";
      th.addEventListener("click", function () {
        sortTable(table, i, th.getAttribute("aria-sort") === "ascending");
      });
    });
  });
  function applyHash() {
    var m = /sort=([\w-]+):(\d+)(:desc)?/.exec(location.hash);
    var table = m && document.getElementById(m[1]);
    if (table) sortTable(table, parseInt(m[2], 10), !!m[3]);
  }
  function status() {
    var imgs = document.querySelectorAll("img.plot"), ok = 0;
    imgs.forEach(function (img) { if (img.complete && img.naturalWidth > 0) ok++; });
    var el = document.getElementById("report-status");
    var n = document.querySelectorAll("table.paper").length;
    el.setAttribute("data-tables-rendered", n);
    el.setAttribute("data-plots-decoded", ok);
    el.textContent = "Rendered in this browser: " + n + " paper tables, " + ok + " of " + imgs.length + " plots decoded.";
  }
  applyHash();
  window.addEventListener("hashchange", applyHash);
  if (document.readyState === "complete") status(); else window.addEventListener("load", status);
})();
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _plot_html(p) -> str:
    png = base64.b64encode(p.png).decode("ascii")
    svg = base64.b64encode(p.svg).decode("ascii")
    return (f'<figure id="plot-{_e(p.name)}"><img class="plot" alt="{_e(p.title)}" src="data:image/png;base64,{png}">'
            f'<figcaption><b>{_e(p.title)}.</b> {_e(p.caption)} '
            f'<a download="{_e(p.name)}.svg" href="data:image/svg+xml;base64,{svg}">SVG</a></figcaption></figure>')


def _table_section(t: TableView) -> str:
    commands = [f"<li><code>{_e(t.command)}</code> (the whole table)</li>"]
    for row in t.rows:
        for cmd in row.commands:
            commands.append(f"<li>{_e(row.label)}: <code>{_e(cmd)}</code></li>")
    summary = f"{len(t.rows)} rows, {t.n_mismatch or 'none'} differ from the paper"
    return (f'<section class="table" id="{_e(t.slug)}"><h3>{_e(t.heading)}</h3>'
            f'<div class="units">{_e(summary)}. Bold red diff: measured differs from the paper (see diagnosis).</div>'
            f'<div class="wrap">{table_html(t)}</div>'
            f'<details><summary>Commands behind these numbers</summary><ul>{"".join(commands)}</ul></details></section>')


def _machine(hw: dict) -> str:
    gpus = [g.get("name", "") for g in hw.get("gpus") or [] if isinstance(g, dict)]
    return ", ".join(filter(None, [hw.get("cpu", ""), *gpus]))


def _weights_and_data(run: dict, runs: RunSet) -> str:
    """What an accuracy run's shown records were measured with: 'checkpoint, real data' or the smoke reasons."""
    recs = [rec for rec, r in runs.records if r is run and is_accuracy(rec, run)]
    if not recs:
        return ""
    reasons = sorted({smoke_reason(rec, run) for rec in recs})
    return "; ".join(f"NOT COMPARABLE: {r}" if r else "checkpoint, real data" for r in reasons)


def _left_out_section(runs: RunSet) -> str:
    if not runs.excluded:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("run", "variant", "dataset", "top-1 (%)", "why left out", "command"))
    rows = "".join("<tr>" + "".join(f"<td>{_e(x)}</td>" for x in (
        run.get("run_id", ""), rec.get("variant", ""), dataset_name(rec) or "", rec.get("top1", ""), reason,
    )) + f"<td><code>{_e(run_command(run))}</code></td></tr>" for rec, run, reason in runs.excluded)
    return (f"<h3>Left out</h3><p>These accuracy records only show that the pipeline runs, so no table or plot "
            f"shows them; <code>tembench report --include-smoke-runs</code> does, marked.</p>"
            f"<div class=wrap><table class='sortable' id='left-out'><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def _runs_section(runs: RunSet) -> str:
    if not runs.runs:
        return (f"<p>No stored runs ({_e(runs.description)}): cost is counted by this report; accuracy and latency "
                f"columns appear when runs exist.</p>{_left_out_section(runs)}")
    rows = []
    for run in runs.runs:
        fp = run.get("fingerprint") or {}
        hw = fp.get("hardware") or {}
        marked = _weights_and_data(run, runs)
        cls = ' class="smoke"' if "NOT COMPARABLE" in marked else ""
        rows.append("<tr>" + "".join(f"<td>{_e(x)}</td>" for x in (
            run.get("run_id", ""), run.get("kind", ""), run.get("status", ""), run.get("created", ""),
            len(run.get("records", [])), fp.get("hardware_hash", ""), _machine(hw),
        )) + f"<td{cls}>{_e(marked)}</td><td><code>{_e(run_command(run))}</code></td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("run", "kind", "status", "created", "records", "hardware hash", "machine",
                                             "weights, data", "command"))
    fps = {}
    for rec, run in runs.records:
        fp = dataset_fingerprint(rec, run)
        if fp:
            fps[json.dumps(fp, sort_keys=True, default=str)] = (rec.get("variant"), run.get("run_id"))
    ds = ("<p>No accuracy runs, so no dataset fingerprints.</p>" if not fps else
          "".join(f"<p>{_e(v)} (run {_e(r)}):</p><pre>{_e(json.dumps(json.loads(k), indent=1))}</pre>" for k, (v, r) in fps.items()))
    return (f"<p>{_e(runs.description)}</p><div class=wrap><table class=sortable id=runs><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>{_left_out_section(runs)}<h3>Dataset fingerprints</h3>{ds}")


def _smoke_summary(runs: RunSet) -> str:
    """The line under the report's title about runs that only show the pipeline runs."""
    if runs.excluded:
        text = runs.left_out_note
        return (f'<p class="leftout">{_e(text[0].upper() + text[1:])} (listed under '
                f'<a href="#runs-read">Stored runs read</a>).</p>')
    smoke = runs.smoke_records
    if smoke:
        return (f'<p class="leftout">Included by --include-smoke-runs: {len(smoke)} accuracy records that only show '
                f"that the pipeline runs ({_e(SMOKE_NOTE)}), marked in yellow and as grey crosses in the plot, "
                "never compared with a paper's number.</p>")
    return ""


def render_html(tables: Sequence[TableView], plots: Sequence, runs: RunSet, environment: dict,
                title: str = "tembench report") -> str:
    reg = registry()
    by_paper: dict[str, list[TableView]] = {}
    for t in tables:
        by_paper.setdefault(t.paper, []).append(t)
    n_rows, n_mis = sum(len(t.rows) for t in tables), sum(t.n_mismatch for t in tables)
    toc = ["<li><a href='#plots'>Plots</a></li>"] + [
        f"<li><a href='#{_e(t.slug)}'>{_e(t.source)}</a>" + (f" ({t.n_mismatch} differ)" if t.n_mismatch else "") + "</li>"
        for t in tables] + ["<li><a href='#environment'>Environment and commands</a></li>"]
    papers = []
    for paper, ts in by_paper.items():
        info = reg.papers.get(paper, {})
        link = f' <a href="{_e(info["url"])}">paper</a>' if info.get("url") else ""
        name = paper_name(paper, reg)
        papers.append(f'<h2 id="paper-{_e(paper)}">{_e(name)}{link}</h2>' + "".join(_table_section(t) for t in ts))
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{_e(title)}</h1>
<p>{len(tables)} paper tables, {n_rows} rows, {n_mis} rows whose measured number differs from the paper. Created {created}.</p>
{_smoke_summary(runs)}
<p class="units">{_e(UNITS_NOTE)}</p>
<div id="report-status" data-tables="{len(tables)}" data-plots="{len(plots)}">(open in a browser with scripts enabled to sort the tables)</div>
<nav><ul>{"".join(toc)}</ul></nav>
<h2 id="plots">Plots</h2>
{"".join(_plot_html(p) for p in plots)}
{"".join(papers)}
<h2 id="environment">Environment and commands</h2>
<p>Cost (GFLOPs, params) was counted on the meta device by the machine below when this report was made;
accuracy and latency come from the stored runs listed after it, each with its own fingerprint and command.</p>
<pre>{_e(json.dumps(environment, indent=1, default=str))}</pre>
<p>This report: <code>{_e(environment.get("command", ""))}</code></p>
<h3 id="runs-read">Stored runs read</h3>
{_runs_section(runs)}
<script>{_SCRIPT}</script>
</body></html>
"""


# ------------------------------------------------------------------------------------------
# The entry point behind `tembench report`.
# ------------------------------------------------------------------------------------------

def plot_costs(runs: RunSet, paper: str | None = None, reg: Registry | None = None) -> PlotCosts:
    """The cost the plots draw (:func:`tembench.report.plots.cost_needs`), measured and judged here."""
    reg = reg or registry()
    needs = cost_needs(runs, paper, reg)
    return PlotCosts(claims=evaluated(needs.claims, reg),
                     gflops={(spec.id, t): gflops_per_view(spec, t) for spec, t in needs.gflops},
                     overhead={spec.id: temporal_cost(spec) for spec in needs.overhead})


def make_plots(runs: RunSet, paper: str | None = None, reg: Registry | None = None) -> list:
    """Every plot of ``paper`` (or of every paper), its cost counted here."""
    return all_plots(runs, plot_costs(runs, paper, reg), paper, reg)


def _write(path: Path, data: str | bytes) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _is_dir_target(out: Path | str) -> bool:
    return str(out).endswith(("/", "\\")) or Path(out).is_dir()


def write_report(fmt: str = "html", out: str | Path | None = None, paper: str | None = None,
                 table: str | None = None, runs: str | None = None, command: str | None = None,
                 include_smoke: bool = False, on_note: Callable[[str], None] | None = None) -> list[Path] | str:
    """Render the report; write it to ``out`` (a file, or a directory) and return the paths written,
    or return the text when ``out`` is None (HTML always goes to a file, ``tembench-report.html``).

    Accuracy runs that only show the pipeline runs are left out unless ``include_smoke``; ``on_note``
    hears how many were left out, and why.

    Markdown into a directory writes one ``<paper>.md`` per paper and, for the whole report (no
    ``paper`` or ``table``), a ``README.md`` index and the plots (PNG and SVG):
    ``tembench report --format markdown --runs none --out results/papers/``.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")
    runset = load_runset(runs, include_smoke=include_smoke)
    if on_note and runset.left_out_note:
        on_note(runset.left_out_note)
    tables = build_tables(paper, table, runset)
    if out is not None and _is_dir_target(out):
        out_dir = Path(out)
        if fmt == "markdown":
            whole = paper is None and table is None  # only the whole report rewrites the index and the plots
            plots = make_plots(runset, paper) if whole else []
            files = paper_markdown_files(tables, plots=[f"{p.name}.png" for p in plots])
            written = [_write(out_dir / name, text) for name, text in files.items() if whole or name != "README.md"]
            for p in plots:
                written += [_write(out_dir / f"{p.name}.png", p.png), _write(out_dir / f"{p.name}.svg", p.svg)]
            return written
        out = out_dir / DEFAULT_FILES[fmt]
    if fmt == "html":
        from tembench.env import fingerprint

        env = {**fingerprint(), "command": command or " ".join(["tembench", *sys.argv[1:]])}
        text = render_html(tables, make_plots(runset, paper), runset, env)
        return [_write(Path(out or DEFAULT_FILES["html"]), text)]
    text = render_tables(tables, fmt)
    if out is None:
        return text
    return [_write(Path(out), text)]
