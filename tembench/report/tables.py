"""Paper tables: each table of each paper in the paper's row order, the measured number beside the
published one, mismatches highlighted with their diagnosis; rendered as Markdown, LaTeX, CSV or HTML.

Cost (GFLOPs, params) is measured for every row (by :mod:`tembench.report.claims`, on the meta
device); accuracy and latency are measured only where a stored run (``results/runs/``) has them. The
rows are built once (:func:`build_tables`) and every format renders the same rows.

Run filter (``--runs``): ``none`` (ignore stored runs), ``all`` (default), or comma-separated
``key=glob`` terms, all of which must hold: ``dir`` (the runs directory), ``run`` (run id), ``kind``,
``status``, ``variant``, ``dataset``, ``device``. Example: ``kind=accuracy,variant=tam/*``.

Accuracy records that only show that the pipeline runs are left out unless asked for
(``include_smoke``, ``tembench report --include-smoke-runs``): a randomly initialised model (no
checkpoint), a record that does not say which weights it used, and data written by ``tembench data
synth`` (the record's ``synthetic`` field, or the marker file in its data root). The run set says how
many it left out and why; when they are included they are marked, and never compared with a paper.
"""
from __future__ import annotations

import fnmatch
import html
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from tembench.errors import UsageError
from tembench.registry import Claim, Registry, registry
from tembench.report.claims import STATUS_MATCH, STATUS_MISMATCH, ClaimRow, evaluate_claim
from tembench.report.render import fmt_value, to_csv, to_markdown

UNITS_NOTE = ("GFLOPs: fvcore convention, 1 multiply-add = 1 FLOP, per view (one clip, one crop) unless "
              "the row's note names another convention; views = frames x crops x clips; "
              "diff = (measured - published) / published for cost, measured - published (points) for accuracy.")
ACCURACY_TOLERANCE_PT = 1.0  # an accuracy run within this many points of the paper counts as agreeing

COST_LABELS = {"gflops": "GFLOPs", "params": "Params (M)"}
RUNTIME_LABELS = {"latency_ms": "Latency (ms)", "throughput": "Throughput (clips/s)", "memory_gb": "Memory (GB)"}
ACCURACY_LABELS = {"top1": "Top-1", "top5": "Top-5", "map": "mAP", "mean_class_acc": "Mean class acc."}
DATASET_LABELS = {"ssv1": "SSv1", "ssv2": "SSv2", "kinetics400": "K400", "kinetics600": "K600",
                  "kinetics700": "K700", "diving48": "Diving48", "charades": "Charades",
                  "activitynet": "ActivityNet", "imagenet1k": "ImageNet-1K"}
_DATASET_ALIASES = {"k400": "kinetics400", "sthv1": "ssv1", "sthsthv1": "ssv1", "somethingsomethingv1": "ssv1",
                    "sthv2": "ssv2", "sthsthv2": "ssv2", "somethingsomethingv2": "ssv2", "k600": "kinetics600",
                    "k700": "kinetics700", "imagenet": "imagenet1k", "in1k": "imagenet1k"}
METRIC_ORDER = [*COST_LABELS, *RUNTIME_LABELS, *ACCURACY_LABELS]


# ------------------------------------------------------------------------------------------
# Stored runs: which records a report reads, and how a record answers a claim.
# ------------------------------------------------------------------------------------------

_RUN_KEYS = {"dir", "run", "kind", "status"}
_RECORD_KEYS = {"variant", "dataset", "device"}


def parse_runs_filter(text: str | None) -> dict[str, str] | None:
    """``None``/``all`` -> {} (every run), ``none`` -> None (no runs), else {key: glob}."""
    if text is None or text.strip().lower() in ("", "all"):
        return {}
    if text.strip().lower() == "none":
        return None
    terms: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise UsageError(f"--runs: expected key=value terms separated by commas (e.g. kind=accuracy,variant=tam/*), "
                             f"'none' or 'all', got {text!r}")
        if key not in _RUN_KEYS | _RECORD_KEYS:
            raise UsageError(f"--runs: unknown key {key!r}; one of {', '.join(sorted(_RUN_KEYS | _RECORD_KEYS))}")
        terms[key] = value
    return terms


@dataclass
class RunSet:
    """The records of the stored runs a report reads, each with its run (id, command, fingerprint)."""

    runs: list[dict] = field(default_factory=list)
    records: list[tuple[dict, dict]] = field(default_factory=list)  # (record, run)
    description: str = "no stored runs"
    excluded: list[tuple[dict, dict, str]] = field(default_factory=list)  # (record, run, smoke_reason)
    include_smoke: bool = False  # records that only show the pipeline runs are in ``records``, marked

    @property
    def left_out_note(self) -> str:
        """'left out 3 accuracy records ... (1 random init, 2 synthetic data); --include-smoke-runs ...', or ''."""
        if not self.excluded:
            return ""
        return (f"left out {_n(len(self.excluded), 'accuracy record')} that only show that the pipeline runs "
                f"({_reason_counts(r for _, _, r in self.excluded)}); --include-smoke-runs shows them, marked")

    @property
    def smoke_records(self) -> list[tuple[dict, dict, str]]:
        """Records included with ``include_smoke`` that only show the pipeline runs, with the reason."""
        return [(rec, run, reason) for rec, run in self.records if (reason := smoke_reason(rec, run))]

    def with_metric(self, *keys: str) -> list[tuple[dict, dict]]:
        """Records that measured any of ``keys`` (runtime records that ran out of memory or failed excluded)."""
        return [(rec, run) for rec, run in self.records if rec.get("status", "ok") == "ok"
                and any(metric_value(rec, k) is not None for k in keys)]


def load_runset(text: str | None = None, include_smoke: bool = False) -> RunSet:
    """The stored runs matching a ``--runs`` filter (see the module docstring), without the accuracy
    records that only show the pipeline runs unless ``include_smoke``."""
    from tembench.results.store import default_runs_dir, load_runs

    terms = parse_runs_filter(text)
    if terms is None:
        return RunSet(description="stored runs ignored (--runs none)", include_smoke=include_smoke)
    directory = Path(terms["dir"]) if "dir" in terms else default_runs_dir()
    if "dir" in terms and not directory.is_dir():
        raise UsageError(f"--runs: no runs directory {directory}")
    runs = load_runs(directory) if directory.is_dir() else []
    chosen, records, excluded = [], [], []
    for run in runs:
        if not all(fnmatch.fnmatchcase(str(run.get(k, "")), terms[k2])
                   for k, k2 in (("run_id", "run"), ("kind", "kind"), ("status", "status")) if k2 in terms):
            continue
        recs = []
        for r in run.get("records", []):
            if not isinstance(r, dict) or not _record_matches(r, run, terms):
                continue
            reason = "" if include_smoke else smoke_reason(r, run)
            if reason:
                excluded.append((r, run, reason))
            else:
                recs.append(r)
        if recs:
            chosen.append(run)
            records.extend((r, run) for r in recs)
    what = ", ".join(f"{k}={v}" for k, v in terms.items()) or "all"
    description = f"{_n(len(records), 'record')} from {_n(len(chosen), 'run')} in {directory} ({what})"
    runset = RunSet(chosen, records, description, excluded, include_smoke)
    if runset.excluded:
        runset.description += f"; {runset.left_out_note}"
    return runset


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _reason_counts(reasons: Iterable[str]) -> str:
    """'2 random init, 1 synthetic data' from reasons such as 'random init, synthetic data'."""
    counts: dict[str, int] = {}
    for reason in reasons:
        for part in reason.split(", "):
            counts[part] = counts.get(part, 0) + 1
    return ", ".join(f"{n} {part}" for part, n in sorted(counts.items(), key=lambda pn: SMOKE_REASONS.index(pn[0])))


def _record_matches(rec: dict, run: dict, terms: dict[str, str]) -> bool:
    for key in _RECORD_KEYS & terms.keys():
        value = rec.get(key)
        if key == "dataset":
            value = dataset_name(rec)
        if key == "device" and value is None:
            value = ((run.get("fingerprint") or {}).get("settings") or {}).get("device")
        if value is None or not fnmatch.fnmatchcase(str(value), terms[key]):
            return False
    return True


def metric_value(rec: dict, metric: str) -> float | None:
    """A record's value for ``metric`` in the claim's unit: latency as the median in ms; accuracy records
    store percentages, as the claims do."""
    keys = {"latency_ms": ("latency_ms", "latency_median_ms", "latency_ms_median", "median_ms"),
            "throughput": ("throughput", "clips_per_s", "throughput_clips_s"),
            "memory_gb": ("memory_gb", "peak_memory_gb")}.get(metric, (metric,))
    for key in keys:
        v = rec.get(key)
        if isinstance(v, dict):
            v = v.get("median", v.get("value"))
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:  # not NaN
            return float(v)
    return None


def _norm_dataset(name: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return _DATASET_ALIASES.get(key, key)


def dataset_name(rec: dict) -> str | None:
    ds = rec.get("dataset")
    if isinstance(ds, dict):
        ds = ds.get("name") or ds.get("format")
    return _norm_dataset(ds) if isinstance(ds, str) and ds else None


def dataset_fingerprint(rec: dict, run: dict | None = None) -> dict | str | None:
    for src in (rec, run or {}):
        fp = src.get("dataset_fingerprint")
        if fp:
            return fp
    ds = rec.get("dataset")
    return ds if isinstance(ds, dict) else None


SMOKE_REASONS = ("random init", "weights not recorded", "synthetic data")
SMOKE_NOTE = "random init, synthetic data or weights not recorded"


def is_synthetic(rec: dict, run: dict | None = None) -> bool:
    """Measured on data written by `tembench data synth`: the record carries its summary (``synthetic``),
    or the data root (of the record or of the run's parameters) still holds the marker file."""
    if rec.get("synthetic"):
        return True
    ds = rec.get("dataset")
    if "synth" in (json.dumps(ds, default=str).lower() if ds is not None else ""):
        return True
    from tembench.data.synth import MARKER

    roots = (rec.get("data_root"), ((run or {}).get("params") or {}).get("data"))
    return any(isinstance(root, str) and root and (Path(root) / MARKER).is_file() for root in roots)


def is_random_init(rec: dict) -> bool:
    weights = rec.get("weights")
    return rec.get("randomly_initialised") is True or (isinstance(weights, str) and weights.startswith("random init"))


def is_accuracy(rec: dict, run: dict | None = None) -> bool:
    return (run or {}).get("kind") == "accuracy" or any(metric_value(rec, m) is not None for m in ACCURACY_LABELS)


def smoke_reason(rec: dict, run: dict | None = None) -> str:
    """Why an accuracy record cannot stand beside a paper's number ('random init', 'weights not recorded',
    'synthetic data', joined by ', '), or '' for a trained model on real data and for any other record."""
    if not is_accuracy(rec, run):
        return ""
    reasons = []
    if is_random_init(rec):
        reasons.append("random init")
    elif "randomly_initialised" not in rec and not rec.get("checkpoint") and not rec.get("weights"):
        reasons.append("weights not recorded")
    if is_synthetic(rec, run):
        reasons.append("synthetic data")
    return ", ".join(reasons)


def run_command(run: dict) -> str:
    cmd = run.get("command")
    if isinstance(cmd, list):
        cmd = shlex.join(str(c) for c in cmd)
        cmd = re.sub(r"^\S*/tembench(?=\s|$)", "tembench", cmd)
    return f"{cmd}  # run {run.get('run_id', '?')}" if cmd else f"run {run.get('run_id', '?')}"


def _views(rec: dict) -> str | None:
    v = rec.get("views")
    return v if isinstance(v, str) else None


def _measured_from_runs(claim: Claim, runs: RunSet) -> tuple[float, str, str, str] | None:
    """(value, diagnosis, command, smoke reason) of the newest stored record that measured this claim's
    metric; a record that only shows the pipeline runs (there only with ``include_smoke``) answers only
    when no other does, and its smoke reason says why it is not compared with the paper."""
    best = None
    for rec, run in runs.with_metric(claim.metric):
        if rec.get("variant") != claim.variant:
            continue
        smoke = ""
        if claim.metric in ACCURACY_LABELS:
            if claim.dataset and dataset_name(rec) != _norm_dataset(claim.dataset):
                continue
            smoke = smoke_reason(rec, run)  # a paper's number is only compared with trained weights on real data
        frames = rec.get("frames")
        if isinstance(frames, int) and frames != claim.frames:
            continue
        rank = (not smoke, _views(rec) in (None, claim.protocol))
        if best is None or rank >= best[0]:
            best = (rank, rec, run, smoke)
    if best is None:
        return None
    (_, exact), rec, run, smoke = best
    notes = []
    if not exact:
        notes.append(f"run protocol {_views(rec)}, paper {claim.protocol}")
    if claim.metric in RUNTIME_LABELS:
        hw = (run.get("fingerprint") or {}).get("hardware") or {}
        gpus = hw.get("gpus") or []
        machine = (gpus[0].get("name") if gpus and isinstance(gpus[0], dict) else None) or hw.get("cpu") or "?"
        notes.append(f"measured on {rec.get('device', '?')} ({machine}), batch {rec.get('batch', 1)}; "
                     "the paper's hardware differs")
    if smoke:
        notes.insert(0, f"{smoke}: only shows that the pipeline runs, not compared with the paper")
    return metric_value(rec, claim.metric), "; ".join(notes), run_command(run), smoke


# ------------------------------------------------------------------------------------------
# Claim evaluations, cached: counting every claim of every paper takes tens of seconds.
# ------------------------------------------------------------------------------------------

_EVALUATED: dict[int, tuple[Registry, dict[Claim, ClaimRow]]] = {}


def evaluated(claims: Iterable[Claim], reg: Registry) -> list[ClaimRow]:
    """``evaluate_claim`` for each claim, each computed once per registry per process."""
    _, cache = _EVALUATED.setdefault(id(reg), (reg, {}))
    out = []
    for claim in claims:
        if claim not in cache:
            cache[claim] = evaluate_claim(reg.get(claim.variant), claim)
        out.append(cache[claim])
    return out


# ------------------------------------------------------------------------------------------
# One paper table, measured beside published.
# ------------------------------------------------------------------------------------------

@dataclass
class Cell:
    published: float
    measured: float | None = None
    diff: str = ""
    status: str = ""  # match | mismatch | "" (not measured or not comparable)
    diagnosis: str = ""
    command: str = ""
    smoke: str = ""  # why the measured number is not compared (random init, synthetic data, ...), or ""


@dataclass
class Row:
    label: str
    variant: str
    views: str
    cells: dict[str, Cell]  # group label -> cell

    @property
    def mismatched(self) -> bool:
        return any(c.status == STATUS_MISMATCH for c in self.cells.values())

    @property
    def check(self) -> str:
        statuses = {c.status for c in self.cells.values()}
        return "✗" if STATUS_MISMATCH in statuses else "✓" if STATUS_MATCH in statuses else ""

    @property
    def diagnosis(self) -> str:
        seen = dict.fromkeys(f"{g}: {c.diagnosis}" for g, c in self.cells.items() if c.diagnosis)
        return "; ".join(seen)

    @property
    def commands(self) -> list[str]:
        return list(dict.fromkeys(c.command for c in self.cells.values() if c.command))


@dataclass
class Group:
    label: str
    metric: str
    measured: bool  # whether the table has measured / diff columns for this group


@dataclass
class TableView:
    source: str
    paper: str
    title: str
    groups: list[Group]
    rows: list[Row]
    command: str

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.source.lower()).strip("-")

    @property
    def heading(self) -> str:
        return f"{self.source}: {self.title}" if self.title else self.source

    @property
    def n_mismatch(self) -> int:
        return sum(r.mismatched for r in self.rows)

    def columns(self, variant: bool = True, diagnosis: bool = True) -> list[str]:
        cols = ["row"] + (["variant"] if variant else []) + ["views"]
        for g in self.groups:
            cols += [f"{g.label} published"] + ([f"{g.label} measured", f"{g.label} diff"] if g.measured else [])
        return cols + ["check"] + (["diagnosis"] if diagnosis else [])

    def records(self, mark=lambda text, row, group: text) -> list[dict]:
        """Rows as dicts (the columns above); ``mark`` decorates a mismatched diff."""
        out = []
        for r in self.rows:
            d = {"row": r.label, "variant": r.variant, "views": r.views}
            for g in self.groups:
                c = r.cells.get(g.label)
                d[f"{g.label} published"] = c.published if c else None
                if g.measured:
                    d[f"{g.label} measured"] = c.measured if c else None
                    d[f"{g.label} diff"] = (mark(c.diff, r, g) if c.status == STATUS_MISMATCH else c.diff) if c else None
            d["check"] = r.check
            d["diagnosis"] = r.diagnosis
            out.append(d)
        return out


def _dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


def _group_label(claim: Claim, multi_dataset: bool) -> str:
    if claim.metric in COST_LABELS:
        return COST_LABELS[claim.metric]
    if claim.metric in RUNTIME_LABELS:
        return RUNTIME_LABELS[claim.metric]
    base = ACCURACY_LABELS.get(claim.metric, claim.metric)
    ds = f" {_dataset_label(claim.dataset)}" if multi_dataset and claim.dataset else ""
    return f"{base}{ds} (%)"


def _group_key(claim: Claim, ds_order: dict[str, int]):
    accuracy = claim.metric in ACCURACY_LABELS
    return accuracy, ds_order[claim.dataset] if accuracy else 0, METRIC_ORDER.index(claim.metric)


def _cost_command(c: ClaimRow, reg: Registry) -> str:
    spec = reg.get(c.variant)
    frames = "" if spec.is_ensemble else f", frames={c.protocol.split('x')[0]}"
    conv = f", convention={c.convention!r}" if c.convention != "fvcore" else ""
    return (f"python -c \"import tembench; r = tembench.count({c.variant!r}{frames}, size={c.input_size}, "
            f"num_classes={c.classes}{conv}); print(r.macs / 1e9, r.params / 1e6)\"")


def _cell(c: ClaimRow, claim: Claim, runs: RunSet, reg: Registry) -> Cell:
    if c.metric in COST_LABELS:
        diff = "" if c.rel_err is None else f"{100 * c.rel_err:+.2f}%"
        measured = None if c.measured is None else round(c.measured, 2)
        return Cell(c.claimed, measured, diff, c.status if c.measured is not None else "", c.diagnosis,
                    _cost_command(c, reg))
    found = _measured_from_runs(claim, runs)
    if found is None or found[0] is None:
        return Cell(c.claimed)
    value, note, command, smoke = found
    if smoke:
        return Cell(c.claimed, round(value, 2), f"not compared ({smoke})", "", note, command, smoke)
    if c.metric in ACCURACY_LABELS:
        delta = value - c.claimed
        status = STATUS_MATCH if abs(delta) <= ACCURACY_TOLERANCE_PT else STATUS_MISMATCH
        return Cell(c.claimed, round(value, 2), f"{delta:+.2f} pt", status, note, command)
    rel = (value - c.claimed) / c.claimed if c.claimed else 0.0
    return Cell(c.claimed, round(value, 2), f"{100 * rel:+.1f}%", "", note, command)


def _natural(s: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


def table_sources(paper: str | None = None, source: str | None = None, reg: Registry | None = None) -> list[str]:
    """The paper tables that have claims, in paper then natural table order; bad names raise UsageError."""
    reg = reg or registry()
    claims = reg.claims()
    papers = sorted({c.paper for c in claims})
    if paper is not None and paper.lower() not in papers:
        raise UsageError(f"no claims from paper {paper!r}; papers: {', '.join(papers)}")
    sources = sorted({(c.paper, c.source) for c in claims if paper is None or c.paper == paper.lower()},
                     key=lambda ps: (ps[0], _natural(ps[1])))
    out = [s for _, s in sources]
    if source is not None:
        hits = [s for s in out if s.lower() == source.lower()]
        if not hits:
            import difflib

            close = difflib.get_close_matches(source, out, n=3, cutoff=0.5)
            raise UsageError(f"no paper table {source!r}" + (f"; closest: {', '.join(close)}" if close else "")
                             + " (see `tembench claims`)")
        out = hits
    return out


def build_table(source: str, runs: RunSet | None = None, reg: Registry | None = None) -> TableView:
    """One paper table: one row per row of the paper, in its order, every metric it publishes."""
    reg = reg or registry()
    runs = runs or RunSet()
    claims = [c for c in reg.claims() if c.source == source]
    rows_eval = evaluated(claims, reg)
    table = reg.tables.get(source)
    acc_datasets = {c.dataset for c in claims if c.metric in ACCURACY_LABELS}
    multi = len(acc_datasets) > 1
    groups: dict[str, Group] = {}
    rows: dict[str, Row] = {}
    ds_order = {d: i for i, d in enumerate(dict.fromkeys(c.dataset for c in claims))}
    for claim, ev in sorted(zip(claims, rows_eval), key=lambda ce: _group_key(ce[0], ds_order)):
        label = _group_label(claim, multi)
        cell = _cell(ev, claim, runs, reg)
        g = groups.setdefault(label, Group(label, claim.metric, claim.metric in COST_LABELS))
        g.measured = g.measured or cell.measured is not None
        row = rows.setdefault(claim.row or claim.variant, Row(claim.row or claim.variant, claim.variant, "", {}))
        if claim.metric == "gflops" or not row.views:
            row.views = claim.protocol
        row.cells.setdefault(label, cell)
    order = {r: i for i, r in enumerate(table.rows)} if table else {}
    first = {c.row or c.variant: i for i, c in reversed(list(enumerate(claims)))}
    ordered = sorted(rows.values(), key=lambda r: (order.get(r.label, 10**6), first[r.label]))
    return TableView(source=source, paper=table.paper if table else claims[0].paper,
                     title=table.title if table else "", groups=list(groups.values()), rows=ordered,
                     command=f"tembench report --table {shlex.quote(source)} --format markdown")


def build_tables(paper: str | None = None, source: str | None = None, runs: RunSet | None = None,
                 reg: Registry | None = None) -> list[TableView]:
    reg = reg or registry()
    return [build_table(s, runs, reg) for s in table_sources(paper, source, reg)]


# ------------------------------------------------------------------------------------------
# Renderers: the same rows as Markdown, LaTeX, CSV, HTML.
# ------------------------------------------------------------------------------------------

def table_markdown(t: TableView) -> str:
    rows = t.records(mark=lambda text, row, group: f"**{text}**")
    body = f"## {t.heading}\n\n" + to_markdown(rows, t.columns())
    notes = f"\n{t.n_mismatch} of {len(t.rows)} rows differ from the paper (✗, diff in bold)." if t.n_mismatch else ""
    return f"{body}{notes}\nRegenerate: `{t.command}`\n"


def to_markdown_doc(tables: Sequence[TableView], heading: str | None = None) -> str:
    """All tables as one Markdown document (``heading`` as its title)."""
    parts = [f"# {heading}\n"] if heading else []
    parts.append(f"_{UNITS_NOTE}_\n")
    parts += [table_markdown(t) for t in tables]
    return "\n".join(parts)


def tables_csv(tables: Sequence[TableView]) -> str:
    rows, cols = [], ["paper", "table"]
    for t in tables:
        for c in t.columns():
            if c not in cols:
                cols.append(c)
        rows += [{"paper": t.paper, "table": t.source, **r} for r in t.records()]
    cols += ["status"]
    for r in rows:
        r["status"] = {"✗": "mismatch", "✓": "match"}.get(r.pop("check"), "")
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
    spec = "".join("r" if c in numeric or c.endswith(" diff") else "l" for c in cols)
    notes: dict[str, int] = {}  # diagnosis -> its number under the table
    lines = []
    for row, rec in zip(t.rows, rows):
        if row.diagnosis:
            rec["note"] = f"({notes.setdefault(row.diagnosis, len(notes) + 1)})"
        cells = []
        for c in cols:
            text = latex_escape(fmt_value(rec.get(c)))
            if c.endswith(" diff") and rec.get(c) and any(
                    cell.status == STATUS_MISMATCH for g, cell in row.cells.items() if c == f"{g} diff"):
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
    numeric = {c for c in cols if any(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in recs)}
    out = [f'<table class="sortable paper" id="t-{t.slug}" data-source="{html.escape(t.source)}">',
           "<thead><tr>" + "".join(f'<th class="{"num" if c in numeric else "txt"}">{html.escape(c)}</th>' for c in cols)
           + "</tr></thead>", "<tbody>"]
    for row, rec in zip(t.rows, recs):
        tds = []
        for c in cols:
            v = rec.get(c)
            cls, attr = [], ""
            if c in numeric and isinstance(v, (int, float)):
                attr, cls = f' data-v="{v!r}"', ["num"]
            if c.endswith(" diff") and v:
                attr = f' data-v="{_diff_number(v)}"'
                status = next((cell.status for g, cell in row.cells.items() if c == f"{g} diff"), "")
                cls.append({"match": "ok", "mismatch": "bad"}.get(status, ""))
            if any(cell.smoke and c in (f"{g} measured", f"{g} diff") for g, cell in row.cells.items()):
                cls.append("smoke")  # random init or synthetic data: marked, never compared
            if c == "check":
                cls.append({"✗": "bad", "✓": "ok"}.get(v, ""))
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
                                + to_markdown_doc(ts, heading=paper_name(paper, reg)))
        n_rows, n_mis = sum(len(t.rows) for t in ts), sum(t.n_mismatch for t in ts)
        short = info.get("title", "").split(":")[0] if ":" in info.get("title", "") else paper.upper()
        index.append({"paper": f"[{short}]({paper}.md)", "tables": len(ts), "rows": n_rows,
                      "rows that differ": n_mis, "title": info.get("title", "")})
    lines = [f"<!-- generated by `{PAPERS_COMMAND}`; do not edit -->", "# The papers' tables, measured",
             "", "Every table of every paper in the registry, the measured cost beside the published one.",
             f"Regenerate with `{PAPERS_COMMAND}` (a test fails when these files are stale).", "",
             to_markdown(index, ["paper", "title", "tables", "rows", "rows that differ"])]
    for name in plots:
        lines += [f"![{name}]({name})", ""]
    files["README.md"] = "\n".join(lines).rstrip("\n") + "\n"
    return files
