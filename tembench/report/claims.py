"""The one judge of a published number: a claim and a measured value -> a verdict.

:func:`judge` is pure: it compares the measured value with the claim and, for a cost that does not match,
tests a short fixed list of hypotheses, each giving exactly one number. It never counts: the caller
measures (:mod:`tembench.report.measure`) and hands it a ``recount`` for the hypotheses that need another
count. Every place that compares a measured number with a paper's (``tembench claims``, the report's
tables, the per-paper tests) calls it, as :mod:`tembench.gates` is the one judge of a regression.

Rules:

* A published value is the interval its printed digits give (:func:`printed_interval`): ``40`` means
  [39.5, 40.5), ``43.02`` means [43.015, 43.025).
* Cost (``gflops``, ``params``) **matches** when the measured value lies in that interval widened by
  :data:`SLACK` (0.6% each way: the spread between counters, :data:`tembench.cost.conventions.COUNTING_SLACK`;
  one constant for every paper). A claim may override this only with a written reason
  (``tolerance`` + ``tolerance_reason``, shown beside the row); a tolerance without one is ignored.
  Statuses:

  - ``match``: under plain fvcore, the paper's protocol;
  - ``match, convention X (fitted)`` / ``(stated)``: under the claim's convention X, which the paper names
    (``convention_stated``) or which we fitted (every convention says where it comes from);
  - ``mismatch, explained``: one hypothesis of :data:`HYPOTHESES` reproduces the published value by the same
    rule; the row carries the hypothesis and the recomputed number that supports it;
  - ``mismatch``: none does; the row shows where the measured cost goes and the registry's note, labelled
    as the registry authors' remark;
  - ``not measured``.

  A hypothesis with a free parameter (any input size, any convention) explains nothing: with enough tries
  something fits by chance. Conventions are fixed per claim in the registry, never searched.
* Accuracy (``top1``, ...): difference in points; ``match`` within :data:`ACCURACY_TOLERANCE_PT`.
* Runtime (``latency_ms``, ...): never judged (``""``): the paper's hardware differs from this machine's.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Iterator

from tembench.cost.conventions import CONVENTIONS, COUNTING_SLACK
from tembench.errors import UsageError
from tembench.registry import ACCURACY_METRICS, RUNTIME_METRICS, Claim, Registry, VariantSpec, registry
from tembench.report.measure import measure_claim

STATUS_MATCH, STATUS_MISMATCH, STATUS_UNMEASURED = "match", "mismatch", "not measured"
STATUS_EXPLAINED = "mismatch, explained"
STATUS_CONVENTION = "match, convention"  # + " X (fitted)" or " X (stated)"
SLACK = COUNTING_SLACK
ACCURACY_TOLERANCE_PT = 1.0  # an accuracy run within this many points of the paper counts as agreeing
HEAD_CLASSES = 1000  # the classifier-head hypothesis: the ImageNet-1k head the backbones come with
HYPOTHESES = (
    "per view vs total: the published GFLOPs are the total over the claim's views (crops x clips)",
    "MAC vs FLOP: the published GFLOPs count 2 FLOPs per multiply-add",
    "input size: counted at the other input size the paper itself states for this row (the claim's stated_size)",
    f"classifier head: the published params include a {HEAD_CLASSES}-class (ImageNet) head",
)
"""The fixed list of explanations the judge tests, in this order; each gives one number, no free parameter."""

Recount = Callable[..., "float | None"]
"""``recount(size=None, classes=None)``: the claim's metric counted at another input size or head."""


def is_match(status: str) -> bool:
    return status == STATUS_MATCH or status.startswith(STATUS_CONVENTION)


@dataclass(frozen=True)
class Verdict:
    status: str  # see the module docstring; "" = measured, not judged (runtime)
    diff: float | None  # relative (cost, runtime) or in points (accuracy)
    interval: tuple[float, float] | None = None  # the published value's printed-digits interval
    explanation: str = ""  # mismatch, explained: the hypothesis that reproduces the published value
    supporting_value: float | None = None  # ... and the number it recomputes


def printed_interval(claim: Claim) -> tuple[float, float]:
    """[low, high): every value that prints as the claim's published digits (``40`` -> (39.5, 40.5)); per
    view when the printed value is the total over the views (``total``: ``70`` for 4 views -> (17.375, 17.625))."""
    printed = float(claim.printed) if claim.printed else claim.value
    half = 0.5 * 10.0 ** -claim.decimals
    low, high = round(printed - half, claim.decimals + 1), round(printed + half, claim.decimals + 1)
    return (round(low / claim.views, 9), round(high / claim.views, 9)) if claim.total else (low, high)


def tolerance_in_force(claim: Claim) -> float | None:
    """The claim's own tolerance, when it has a written reason (otherwise the printed-digits rule)."""
    return claim.tolerance if claim.tolerance is not None and claim.tolerance_reason.strip() else None


def accepts(claim: Claim, value: float) -> bool:
    """Whether ``value`` reproduces the published number: inside the printed-digits interval widened by
    :data:`SLACK` (or within the claim's reasoned tolerance)."""
    low, high = printed_interval(claim)
    if low * (1 - SLACK) <= value < high * (1 + SLACK):
        return True
    tol = tolerance_in_force(claim)
    return tol is not None and abs(value - claim.value) <= tol * claim.value


def _rel(measured: float, claimed: float) -> float:
    return (measured - claimed) / claimed if claimed else math.inf


def hypotheses(claim: Claim, measured: float, recount: Recount | None = None) -> Iterator[tuple[str, float | None]]:
    """:data:`HYPOTHESES` that apply to ``claim``, in order, each as (what it says, the number it gives);
    a recount happens only when the hypotheses before it failed."""
    if claim.metric == "gflops":
        if claim.views > 1 and not claim.total:  # a total already
            yield (f"per view vs total: the published value is the total over {claim.views} views "
                   f"({claim.crops} crop{'s' * (claim.crops != 1)} x {claim.clips} clip{'s' * (claim.clips != 1)})",
                   measured * claim.views)
        yield "MAC vs FLOP: the published value counts 2 FLOPs per multiply-add", measured * 2
        if claim.stated_size and claim.stated_size != claim.input_size and recount is not None:
            yield (f"input size: counted at {claim.stated_size}x{claim.stated_size}, the size the paper states "
                   f"{claim.stated_size_where}", recount(size=claim.stated_size))
    if claim.metric == "params" and claim.classes != HEAD_CLASSES and recount is not None:
        yield (f"classifier head: counted with a {HEAD_CLASSES}-class (ImageNet) head, not {claim.classes} classes",
               recount(classes=HEAD_CLASSES))


def convention_status(claim: Claim) -> str:
    return f"{STATUS_CONVENTION} {claim.convention} ({'stated' if claim.convention_stated else 'fitted'})"


def judge(claim: Claim, measured: float | None, fvcore: float | None = None,
          recount: Recount | None = None) -> Verdict:
    """The verdict on ``claim`` given its ``measured`` value (see the module docstring for the rules).

    ``fvcore``: the same cost under the default convention (unused by the rules; kept for the callers that
    show it); ``recount``: lets the input-size and head hypotheses be tested."""
    interval = printed_interval(claim)
    if measured is None:
        return Verdict(STATUS_UNMEASURED, None, interval)
    if claim.metric in ACCURACY_METRICS:
        delta = measured - claim.value
        return Verdict(STATUS_MATCH if abs(delta) <= ACCURACY_TOLERANCE_PT else STATUS_MISMATCH, delta, interval)
    if claim.metric in RUNTIME_METRICS:
        return Verdict("", (measured - claim.value) / claim.value if claim.value else 0.0, interval)
    rel = _rel(measured, claim.value)
    if accepts(claim, measured):
        return Verdict(STATUS_MATCH if claim.convention == "fvcore" else convention_status(claim), rel, interval)
    for why, value in hypotheses(claim, measured, recount):
        if value is not None and accepts(claim, value):
            return Verdict(STATUS_EXPLAINED, rel, interval, why, value)
    return Verdict(STATUS_MISMATCH, rel, interval)


def convention_note(claim: Claim, fvcore: float | None = None) -> str:
    """Which convention a cost claim is counted under, whether the paper names it, where it comes from."""
    conv = CONVENTIONS.get(claim.convention)
    who = (f"the paper's stated convention ({claim.convention_stated})" if claim.convention_stated
           else "fitted by us (the paper names no counter)")
    text = f"convention '{claim.convention}', {who}" + (f"; {conv.source}" if conv and conv.provenance else "")
    return text + (f"; the full fvcore count is {fvcore:.2f}" if fvcore is not None else "")


def diagnosis(claim: Claim, verdict: Verdict, measured: float | None = None, fvcore: float | None = None,
              breakdown: str = "") -> str:
    """The text beside a judged claim: the convention it matched under, the explanation and its number,
    or, for a mismatch, where the measured cost goes and the registry's remark (labelled as such)."""
    parts = []
    if verdict.status == STATUS_EXPLAINED:
        parts.append(f"{verdict.explanation}: {verdict.supporting_value:.2f} {claim.unit}")
    elif verdict.status == STATUS_MISMATCH and measured is not None and breakdown:
        parts.append(f"where the measured {measured:.2f} {claim.unit} goes: {breakdown}")
    if claim.convention != "fvcore" and measured is not None and verdict.status:
        parts.append(convention_note(claim, fvcore))
    if verdict.status in (STATUS_MISMATCH, STATUS_EXPLAINED) and claim.note:
        parts.append(f"registry note (hand-written, not recomputed): {claim.note}")
    if tolerance_in_force(claim) is not None:
        parts.append(f"tolerance {100 * claim.tolerance:g}%: {claim.tolerance_reason}")
    elif claim.tolerance is not None:
        parts.append(f"the registry's tolerance {100 * claim.tolerance:g}% has no written reason and is ignored")
    if claim.metric in RUNTIME_METRICS:
        parts.append(f"the paper's hardware: {claim.hardware or 'not stated'}; never judged against this machine")
    return "; ".join(parts)


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
    printed: str  # the published value as printed; its digits give the interval
    total: bool  # the printed value is the total over the views (``claimed`` is per view)
    interval: tuple[float, float]  # [low, high) of the printed digits
    measured: float | None
    rel_err: float | None
    status: str
    explanation: str  # mismatch, explained: the hypothesis that reproduces the published value
    supporting_value: float | None  # ... and the number it recomputes (counted now)
    breakdown: str  # mismatch: where the measured cost goes, per module
    diagnosis: str  # everything above in words, with the convention's provenance and the registry's note
    convention: str
    convention_source: str  # where the convention comes from (a counter, or the paper tables it was fitted to)
    fvcore: float | None  # the same quantity under the default convention, for comparison
    protocol: str
    input_size: int
    classes: int
    dataset: str
    tolerance: float | None  # a reasoned override of the printed-digits rule (None: the rule)
    tolerance_reason: str
    hardware: str  # runtime claims: the paper's hardware
    note: str

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_claim(spec: VariantSpec, claim: Claim) -> ClaimRow:
    """``claim`` counted on the meta device under its own protocol (accuracy and runtime are not: not
    measured) and judged; a mismatch's per-module breakdown counted too."""
    m = measure_claim(spec, claim)
    v = judge(claim, m.value, m.fvcore, m.recount)
    breakdown = m.breakdown() if v.status == STATUS_MISMATCH and m.breakdown else ""
    if spec.missing:  # its package is not installed: the claim stays, not measured, and says how to measure it
        why = f"not measured here: {spec.id} needs {', '.join(spec.missing)} ({spec.install_hint})"
    else:
        why = diagnosis(claim, v, m.value, m.fvcore, breakdown)
    conv = CONVENTIONS.get(claim.convention)
    return ClaimRow(
        variant=claim.variant, paper=claim.paper, source=claim.source, row=claim.row, metric=claim.metric,
        unit=claim.unit, claimed=claim.value, printed=claim.printed, total=claim.total, interval=v.interval, measured=m.value,
        rel_err=v.diff, status=v.status, explanation=v.explanation, supporting_value=v.supporting_value,
        breakdown=breakdown, diagnosis=why,
        convention=claim.convention, convention_source=conv.source if conv else "", fvcore=m.fvcore,
        protocol=claim.protocol, input_size=claim.input_size, classes=claim.classes, dataset=claim.dataset,
        tolerance=claim.tolerance, tolerance_reason=claim.tolerance_reason, hardware=claim.hardware, note=claim.note,
    )


def published_text(printed: str, total: bool, protocol: str) -> str:
    """The published value as printed, per view: ``43.02``, or ``70/4`` for a total over 4 views."""
    if not total:
        return printed
    _, crops, clips = protocol.split("x")
    return f"{printed}/{int(crops) * int(clips)}"


def status_counts(rows: Iterable) -> dict[str, Counter]:
    """Per paper, how many claims have each status (rows: :class:`ClaimRow` or their dicts)."""
    out: dict[str, Counter] = {}
    for r in rows:
        paper, status = (r["paper"], r["status"]) if isinstance(r, dict) else (r.paper, r.status)
        out.setdefault(paper, Counter())[status or "measured, not judged"] += 1
    return out


STATUS_ORDER = (STATUS_MATCH, STATUS_CONVENTION, STATUS_EXPLAINED, STATUS_MISMATCH, STATUS_UNMEASURED)


def summary_line(counts: Counter) -> str:
    """``"40 match, 28 match, convention no-attention (fitted), 2 mismatch, explained, ..."``, in the order of
    :data:`STATUS_ORDER`; the total first."""
    def rank(status: str):
        return next((i for i, s in enumerate(STATUS_ORDER) if status == s or status.startswith(s + " ")),
                    len(STATUS_ORDER)), status
    body = "; ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda sn: rank(sn[0])))
    return f"{sum(counts.values())} claims: {body}"


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
