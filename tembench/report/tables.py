"""Paper tables as a view model: each table of each paper in the paper's row order, the measured number
beside the published one, each cell judged (:func:`tembench.report.claims.judge`) with its diagnosis.

Cost (GFLOPs, params) is measured for every row (on the meta device, :mod:`tembench.report.measure`);
accuracy and latency only where a stored run (:class:`tembench.results.runset.RunSet`) has them. The view
model (:class:`TableView`: groups of columns, rows, cells) is built once (:func:`build_tables`); the
renderers in :mod:`tembench.report.formats` (Markdown, LaTeX, CSV, HTML) only format it.
"""
from __future__ import annotations

import re
import shlex
from collections import Counter
from dataclasses import dataclass, field

from tembench.errors import UsageError
from tembench.registry import Claim, Registry, registry
from tembench.report.claims import (SLACK, STATUS_EXPLAINED, STATUS_MISMATCH, ClaimRow, evaluated, is_match,
                                    judge, published_text)
from tembench.report.measure import measured_from_runs
from tembench.results.runset import RunSet

UNITS_NOTE = ("GFLOPs: fvcore convention, 1 multiply-add = 1 FLOP, per view (one clip, one crop) unless "
              "the row's note names another convention; views = frames x crops x clips; "
              "diff = (measured - published) / published for cost, measured - published (points) for accuracy.")
JUDGING_NOTE = (f"A published value is the interval its printed digits give (40: [39.5, 40.5); 43.02: [43.015, 43.025)); "
                f"a cost matches when the measured value lies in it widened by {100 * SLACK:g}% each way (the spread "
                "between counters). ✓ match (under the claim's convention, named with its provenance when not fvcore); "
                "≈ mismatch explained by one hypothesis of a fixed list (per view vs total, MAC vs FLOP, an input size "
                "the paper states, a 1000-class head), the recomputed number given; ✗ mismatch, with where the measured "
                "cost goes and the registry's hand-written note.")

COST_LABELS = {"gflops": "GFLOPs", "params": "Params (M)"}
RUNTIME_LABELS = {"latency_ms": "Latency (ms)", "throughput": "Throughput (clips/s)", "memory_gb": "Memory (GB)"}
ACCURACY_LABELS = {"top1": "Top-1", "top5": "Top-5", "map": "mAP", "mean_class_acc": "Mean class acc."}
DATASET_LABELS = {"ssv1": "SSv1", "ssv2": "SSv2", "kinetics400": "K400", "kinetics600": "K600",
                  "kinetics700": "K700", "diving48": "Diving48", "charades": "Charades",
                  "activitynet": "ActivityNet", "imagenet1k": "ImageNet-1K"}
METRIC_ORDER = [*COST_LABELS, *RUNTIME_LABELS, *ACCURACY_LABELS]


# ------------------------------------------------------------------------------------------
# One paper table, measured beside published.
# ------------------------------------------------------------------------------------------

@dataclass
class Cell:
    published: float
    measured: float | None = None
    diff: str = ""
    status: str = ""  # a judge's status (report.claims), or "" (not measured or not comparable)
    diagnosis: str = ""
    command: str = ""
    smoke: str = ""  # why the measured number is not compared (random init, synthetic data, ...), or ""
    printed: str = ""  # the published value as the paper prints it ("43.00")


@dataclass
class Row:
    label: str
    variant: str
    views: str
    cells: dict[str, Cell]  # group label -> cell

    @property
    def mismatched(self) -> bool:
        """Some number of the row differs from the paper under the paper's protocol (explained or not)."""
        return any(c.status in (STATUS_MISMATCH, STATUS_EXPLAINED) for c in self.cells.values())

    @property
    def check(self) -> str:
        """✗ an unexplained mismatch, ≈ mismatches all explained, ✓ every judged number matches."""
        statuses = {c.status for c in self.cells.values()}
        if STATUS_MISMATCH in statuses:
            return "✗"
        if STATUS_EXPLAINED in statuses:
            return "≈"
        return "✓" if any(is_match(s) for s in statuses) else ""

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
    statuses: Counter = field(default_factory=Counter)  # the table's claims per status, as `tembench claims` judges them
    conventions: tuple[str, ...] = ()  # the counting conventions its claims name, fvcore first

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

    def records(self, mark=lambda text, row, group: text, printed: bool = True) -> list[dict]:
        """Rows as dicts (the columns above); ``mark`` decorates the diff of a number that differs from the
        paper; ``printed``: the published value as the paper prints it (text) rather than as a number."""
        out = []
        for r in self.rows:
            d = {"row": r.label, "variant": r.variant, "views": r.views}
            for g in self.groups:
                c = r.cells.get(g.label)
                d[f"{g.label} published"] = (c.printed or c.published if printed else c.published) if c else None
                if g.measured:
                    d[f"{g.label} measured"] = c.measured if c else None
                    differs = c is not None and c.status in (STATUS_MISMATCH, STATUS_EXPLAINED)
                    d[f"{g.label} diff"] = (mark(c.diff, r, g) if differs else c.diff) if c else None
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
    """A cost claim as counted and judged (``c``); accuracy and runtime from the newest stored run that
    measured it, judged here, or left unjudged when the run only shows that the pipeline runs."""
    printed = published_text(c.printed, c.total, c.protocol)
    if c.metric in COST_LABELS:
        diff = "" if c.rel_err is None else f"{100 * c.rel_err:+.2f}%"
        measured = None if c.measured is None else round(c.measured, 2)
        return Cell(c.claimed, measured, diff, c.status if c.measured is not None else "", c.diagnosis,
                    _cost_command(c, reg), printed=printed)
    found = measured_from_runs(claim, runs)
    if found is None or found.value is None:
        return Cell(c.claimed, printed=printed)
    measured = round(found.value, 2)
    note = found.note
    if c.metric in RUNTIME_LABELS:
        note = f"{note} (the paper's: {claim.hardware or 'not stated'})"
    if found.smoke:
        return Cell(c.claimed, measured, f"not compared ({found.smoke})", "", note, found.command, found.smoke,
                    printed=printed)
    v = judge(claim, found.value)
    diff = f"{v.diff:+.2f} pt" if c.metric in ACCURACY_LABELS else f"{100 * v.diff:+.1f}%"
    return Cell(c.claimed, measured, diff, v.status, note, found.command, printed=printed)


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
    conventions = sorted({c.convention for c in claims if c.metric in COST_LABELS}, key=lambda n: (n != "fvcore", n))
    return TableView(source=source, paper=table.paper if table else claims[0].paper,
                     title=table.title if table else "", groups=list(groups.values()), rows=ordered,
                     command=f"tembench report --table {shlex.quote(source)} --format markdown",
                     statuses=Counter(r.status for r in rows_eval), conventions=tuple(conventions))


def build_tables(paper: str | None = None, source: str | None = None, runs: RunSet | None = None,
                 reg: Registry | None = None) -> list[TableView]:
    """The view model of every paper table (of ``paper``, or the one ``source``), in paper then table order."""
    reg = reg or registry()
    return [build_table(s, runs, reg) for s in table_sources(paper, source, reg)]

