"""Published numbers beside measured ones.

For every claim in the registry, the value is measured under the claim's own protocol (frames,
input size, classes) and counting convention, compared with the claim's tolerance, and, when it
does not match, tested against the usual reasons a published cost differs (per view vs total,
multiply-adds vs FLOPs, another counting convention, another input size, a truncated value).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from tembench.cost import CONVENTIONS, count_spec
from tembench.errors import UsageError
from tembench.registry import Claim, Registry, VariantSpec, registry

STATUS_MATCH, STATUS_MISMATCH, STATUS_UNMEASURED = "match", "mismatch", "not measured"


@dataclass
class ClaimRow:
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


def _rel(measured: float, claimed: float) -> float:
    return (measured - claimed) / claimed if claimed else math.inf


def _cost(spec: VariantSpec, claim: Claim, convention: str, size: int | None = None, classes: int | None = None):
    return count_spec(
        spec,
        frames=None if spec.is_ensemble else claim.frames,
        size=size or claim.input_size,
        convention=convention,
        num_classes=classes or claim.classes,
        temporal_baseline=False,
    )


def _measure(spec: VariantSpec, claim: Claim, convention: str, size=None, classes=None) -> float | None:
    if claim.metric == "gflops":
        return _cost(spec, claim, convention, size, classes).macs / 1e9
    if claim.metric == "params":
        return _cost(spec, claim, convention, size, classes).params / 1e6
    return None


def _within(measured: float, claimed: float, tol: float) -> bool:
    return abs(_rel(measured, claimed)) <= tol


def diagnose(spec: VariantSpec, claim: Claim, measured: float) -> str:
    """The first known explanation of a cost mismatch, or '' when none fits."""
    tol = max(claim.tolerance, 0.01)
    if claim.metric == "gflops":
        if claim.views > 1 and _within(measured * claim.views, claim.value, tol):
            return f"published value is the total over {claim.views} views, not per view"
        if _within(measured * 2, claim.value, tol):
            return "published value counts 2 FLOPs per multiply-add (true FLOPs), not MACs"
        for name in CONVENTIONS:
            if name in (claim.convention, "flops"):
                continue
            other = _measure(spec, claim, name)
            if other is not None and _within(other, claim.value, tol):
                return f"matches under convention '{name}' ({other:.2f} G): {CONVENTIONS[name].description}"
        for size in (112, 160, 224, 256, 288, 320, 336):
            if size != claim.input_size:
                other = _measure(spec, claim, claim.convention, size=size)
                if other is not None and _within(other, claim.value, tol):
                    return f"matches at input size {size}x{size} ({other:.2f} G), not {claim.input_size}"
    if claim.metric == "params":
        for classes in (400, 174, 1000):  # the heads these papers use (K400, SSv1/v2, ImageNet)
            if classes != claim.classes:
                other = _measure(spec, claim, claim.convention, classes=classes)
                if other is not None and _within(other, claim.value, claim.tolerance):
                    return f"matches with a {classes}-class head ({other:.2f} M), not {claim.classes}"
    if claim.value == int(claim.value) and math.floor(measured) == claim.value:
        return f"published value is the measured {measured:.2f} truncated, not rounded"
    return ""


def evaluate_claim(spec: VariantSpec, claim: Claim) -> ClaimRow:
    measured = _measure(spec, claim, claim.convention)
    fvcore = _measure(spec, claim, "fvcore") if claim.convention != "fvcore" else measured
    if measured is None:
        status, rel, diagnosis = STATUS_UNMEASURED, None, ""
    else:
        rel = _rel(measured, claim.value)
        if abs(rel) <= claim.tolerance:
            status, diagnosis = STATUS_MATCH, ""
        else:
            status = STATUS_MISMATCH
            # the registry's own explanation first (checked by hand), then the automatic one
            diagnosis = "; ".join(filter(None, [claim.note, diagnose(spec, claim, measured)]))
    if status != STATUS_UNMEASURED and claim.convention != "fvcore":
        conv = f"counted under '{claim.convention}'; the full fvcore count is {fvcore:.2f}"
        diagnosis = f"{diagnosis}; {conv}" if diagnosis else conv
    return ClaimRow(
        variant=claim.variant, paper=claim.paper, source=claim.source, row=claim.row, metric=claim.metric,
        unit=claim.unit, claimed=claim.value, measured=measured, rel_err=rel, status=status,
        diagnosis=diagnosis, convention=claim.convention, fvcore=fvcore, protocol=claim.protocol,
        input_size=claim.input_size, classes=claim.classes, dataset=claim.dataset,
        tolerance=claim.tolerance, note=claim.note,
    )


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
        rows.append(evaluate_claim(reg.get(claim.variant), claim))
        if progress:
            progress()
    order = {src: {r: i for i, r in enumerate(t.rows)} for src, t in reg.tables.items()}
    rows.sort(key=lambda r: (r.paper, r.source, order.get(r.source, {}).get(r.row, 10**6), r.metric))
    return rows


def paper_table(source: str, reg: Registry | None = None) -> list[dict]:
    """One paper table in the paper's own row order: one line per row, claimed and measured side by side."""
    reg = reg or registry()
    rows = evaluate_claims(source=source, reg=reg)
    by_row: dict[str, dict] = {}
    for r in rows:
        line = by_row.setdefault(r.row or r.variant, {"row": r.row or r.variant, "variant": r.variant})
        if r.metric in ("gflops", "params"):
            label = "GFLOPs" if r.metric == "gflops" else "Params (M)"
            line[f"{label} published"] = r.claimed
            line[f"{label} measured"] = None if r.measured is None else round(r.measured, 3)
            line[f"{label} diff"] = None if r.rel_err is None else f"{100 * r.rel_err:+.2f}%"
            if r.diagnosis:
                line["diagnosis"] = "; ".join(filter(None, [line.get("diagnosis"), r.diagnosis]))
        else:
            line[f"{r.metric} published"] = r.claimed
    table = reg.tables.get(source)
    order = {row: i for i, row in enumerate(table.rows)} if table else {}
    return sorted(by_row.values(), key=lambda line: order.get(line["row"], 10**6))
