"""The one judge of a published number: a claim and a measured value -> a verdict.

:func:`judge` is pure: it compares the measured value with the claim under the claim's own tolerance and,
for a cost that does not match, tries the usual reasons a published cost differs (per view vs total,
multiply-adds vs FLOPs, another counting convention, another input size, another head, a truncated
value). It never counts: the caller measures (:mod:`tembench.report.measure`) and, to let it try another
convention, size or head, hands it a ``recount``. Every place that compares a measured number with a
paper's (``tembench claims``, the report's tables, the per-paper tests) calls it, as
:mod:`tembench.gates` is the one judge of a regression.

Rules (per metric):

* cost (``gflops``, ``params``): relative difference ``(measured - claimed) / claimed``; ``match`` within
  the claim's ``tolerance``, else ``mismatch`` with a diagnosis (the registry's note, then the first
  automatic explanation that fits); a claim counted under another convention says so and gives the full
  fvcore count;
* accuracy (``top1``, ...): difference in points; ``match`` within :data:`ACCURACY_TOLERANCE_PT`;
* runtime (``latency_ms``, ...): relative difference, never judged (``""``): the paper's hardware differs;
* no measured value: ``not measured``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from tembench.errors import UsageError
from tembench.registry import ACCURACY_METRICS, RUNTIME_METRICS, Claim, Registry, VariantSpec, registry
from tembench.report.measure import measure_claim

STATUS_MATCH, STATUS_MISMATCH, STATUS_UNMEASURED = "match", "mismatch", "not measured"
ACCURACY_TOLERANCE_PT = 1.0  # an accuracy run within this many points of the paper counts as agreeing
DIAGNOSIS_SIZES = (112, 160, 224, 256, 288, 320, 336)  # input sizes a published cost may have been counted at
DIAGNOSIS_CLASSES = (400, 174, 1000)  # the heads these papers use (K400, SSv1/v2, ImageNet)

Recount = Callable[..., "float | None"]
"""``recount(convention=None, size=None, classes=None)``: the claim's metric measured otherwise."""


@dataclass(frozen=True)
class Verdict:
    status: str  # match | mismatch | not measured | "" (measured, not judged: runtime)
    diff: float | None  # relative (cost, runtime) or in points (accuracy)
    diagnosis: str = ""


def _rel(measured: float, claimed: float) -> float:
    return (measured - claimed) / claimed if claimed else math.inf


def _within(measured: float, claimed: float, tol: float) -> bool:
    return abs(_rel(measured, claimed)) <= tol


def judge(claim: Claim, measured: float | None, fvcore: float | None = None,
          recount: Recount | None = None) -> Verdict:
    """The verdict on ``claim`` given its ``measured`` value (see the module docstring for the rules).

    ``fvcore``: the same cost under the default convention (named in the diagnosis of a claim counted
    under another); ``recount``: lets a cost mismatch be explained by another convention, size or head."""
    if measured is None:
        return Verdict(STATUS_UNMEASURED, None)
    if claim.metric in ACCURACY_METRICS:
        delta = measured - claim.value
        return Verdict(STATUS_MATCH if abs(delta) <= ACCURACY_TOLERANCE_PT else STATUS_MISMATCH, delta)
    if claim.metric in RUNTIME_METRICS:
        return Verdict("", (measured - claim.value) / claim.value if claim.value else 0.0)
    rel = _rel(measured, claim.value)
    if abs(rel) <= claim.tolerance:
        status, diagnosis = STATUS_MATCH, ""
    else:
        status = STATUS_MISMATCH
        # the registry's own explanation first (checked by hand), then the automatic one
        diagnosis = "; ".join(filter(None, [claim.note, diagnose(claim, measured, recount)]))
    if claim.convention != "fvcore":
        conv = f"counted under '{claim.convention}'"
        if fvcore is not None:
            conv += f"; the full fvcore count is {fvcore:.2f}"
        diagnosis = f"{diagnosis}; {conv}" if diagnosis else conv
    return Verdict(status, rel, diagnosis)


def diagnose(claim: Claim, measured: float, recount: Recount | None = None) -> str:
    """The first known explanation of a cost mismatch, or '' when none fits (without ``recount``, only
    those that need no other count: views, true FLOPs, truncation)."""
    tol = max(claim.tolerance, 0.01)
    if claim.metric == "gflops":
        if claim.views > 1 and _within(measured * claim.views, claim.value, tol):
            return f"published value is the total over {claim.views} views, not per view"
        if _within(measured * 2, claim.value, tol):
            return "published value counts 2 FLOPs per multiply-add (true FLOPs), not MACs"
        if recount is not None:
            from tembench.cost.conventions import CONVENTIONS

            for name in CONVENTIONS:
                if name in (claim.convention, "flops"):
                    continue
                other = recount(convention=name)
                if other is not None and _within(other, claim.value, tol):
                    return f"matches under convention '{name}' ({other:.2f} G): {CONVENTIONS[name].description}"
            for size in DIAGNOSIS_SIZES:
                if size != claim.input_size:
                    other = recount(size=size)
                    if other is not None and _within(other, claim.value, tol):
                        return f"matches at input size {size}x{size} ({other:.2f} G), not {claim.input_size}"
    if claim.metric == "params" and recount is not None:
        for classes in DIAGNOSIS_CLASSES:
            if classes != claim.classes:
                other = recount(classes=classes)
                if other is not None and _within(other, claim.value, claim.tolerance):
                    return f"matches with a {classes}-class head ({other:.2f} M), not {claim.classes}"
    if claim.value == int(claim.value) and math.floor(measured) == claim.value:
        return f"published value is the measured {measured:.2f} truncated, not rounded"
    return ""


# ------------------------------------------------------------------------------------------
# Every claim measured (tembench.report.measure) and judged, in table row order
# ------------------------------------------------------------------------------------------

@dataclass
class ClaimRow:
    """A claim beside its measured value and the verdict (one row of ``tembench claims``)."""

    variant: str
    paper: str
    source: str
    row: str
    metric: str
    unit: str
    claimed: float
    measured: float | None
    rel_err: float | None
    status: str
    diagnosis: str
    convention: str
    fvcore: float | None  # the same quantity under the default convention, for comparison
    protocol: str
    input_size: int
    classes: int
    dataset: str
    tolerance: float
    note: str

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_claim(spec: VariantSpec, claim: Claim) -> ClaimRow:
    """``claim`` counted on the meta device under its own protocol (accuracy and runtime are not: not
    measured) and judged."""
    m = measure_claim(spec, claim)
    v = judge(claim, m.value, m.fvcore, m.recount)
    return ClaimRow(
        variant=claim.variant, paper=claim.paper, source=claim.source, row=claim.row, metric=claim.metric,
        unit=claim.unit, claimed=claim.value, measured=m.value, rel_err=v.diff, status=v.status,
        diagnosis=v.diagnosis, convention=claim.convention, fvcore=m.fvcore, protocol=claim.protocol,
        input_size=claim.input_size, classes=claim.classes, dataset=claim.dataset,
        tolerance=claim.tolerance, note=claim.note,
    )


_EVALUATED: dict[int, tuple[Registry, dict[Claim, ClaimRow]]] = {}


def evaluated(claims: Iterable[Claim], reg: Registry) -> list[ClaimRow]:
    """:func:`evaluate_claim` for each claim, each computed once per registry per process (counting every
    claim of every paper takes tens of seconds)."""
    _, cache = _EVALUATED.setdefault(id(reg), (reg, {}))
    out = []
    for claim in claims:
        if claim not in cache:
            cache[claim] = evaluate_claim(reg.get(claim.variant), claim)
        out.append(cache[claim])
    return out


def evaluate_claims(paper: str | None = None, source: str | None = None, reg: Registry | None = None,
                    progress=None) -> list[ClaimRow]:
    """Every claim (of one paper / one table) beside its measured value, in table row order."""
    reg = reg or registry()
    claims = reg.claims(paper)
    if source:
        sources = sorted({c.source for c in claims})
        claims = [c for c in claims if c.source.lower() == source.lower()]
        if not claims:
            import difflib

            close = difflib.get_close_matches(source, sources, n=3, cutoff=0.6)
            raise UsageError(f"no claims from table {source!r}" + (f" of paper {paper!r}" if paper else "")
                             + (f"; closest: {', '.join(close)}" if close else "")
                             + f"; tables: {', '.join(sources)}")
    rows = []
    for claim in claims:
        rows += evaluated([claim], reg)
        if progress:
            progress()
    order = {src: {r: i for i, r in enumerate(t.rows)} for src, t in reg.tables.items()}
    rows.sort(key=lambda r: (r.paper, r.source, order.get(r.source, {}).get(r.row, 10**6), r.metric))
    return rows
