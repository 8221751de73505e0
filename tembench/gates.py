"""Regression gates: pure functions from (baseline, current) to verdicts.

Measuring is elsewhere; this module only judges. Each gate returns :class:`Verdict` rows whose
``status`` is one of ``pass``, ``regression``, ``improvement``, ``changed`` (cost moved),
``not comparable`` (different hardware or dataset fingerprint), ``missing``, ``new`` or ``error`` (the gate
could not run: a missing dependency, no device; it fails like a regression).

Policies (documented defaults):

* **cost**: FLOPs and params must be equal, exactly; any change is a regression (an intended change
  is accepted by rewriting the baseline with ``--accept``) and is listed per module.
* **latency**: compared only on the same hardware hash. A regression needs both a one-sided
  Mann-Whitney U test with p < 0.01 on the raw samples and a slowdown of the median of at least
  max(5%, 3 x the baseline's IQR/median).
* **memory**: peak allocated more than 5% above the baseline.
* **accuracy**: compared only on the same dataset fingerprint. A regression needs an exact
  McNemar test on the paired per-video correctness with p < 0.01 (one-sided, fewer correct), or a
  drop of top-1 beyond ``tolerance`` points (default 5) when per-video results are missing.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import median

from tembench.report.render import plural

PASS, REGRESSION, IMPROVEMENT, NOT_COMPARABLE, MISSING, NEW, ERROR = (
    "pass", "regression", "improvement", "not comparable", "missing", "new", "error")
COMPARED = (PASS, REGRESSION, IMPROVEMENT)  # a comparison was actually made
STATUSES = (PASS, REGRESSION, IMPROVEMENT, NOT_COMPARABLE, MISSING, NEW, ERROR)

LATENCY_P = 0.01
LATENCY_MIN_SLOWDOWN = 0.05
LATENCY_IQR_FACTOR = 3.0
MEMORY_TOLERANCE = 0.05
ACCURACY_P = 0.01
ACCURACY_TOLERANCE = 5.0  # top-1 points, used without per-video results


@dataclass
class Verdict:
    gate: str
    key: str  # e.g. "tam/tanet-r50@8" or "sanity/tsm"
    metric: str
    baseline: float | None
    current: float | None
    status: str
    detail: str = ""
    unit: str = ""
    changes: list[dict] = field(default_factory=list)  # per-module differences for cost

    @property
    def failed(self) -> bool:
        return self.status in (REGRESSION, MISSING, ERROR)

    def as_dict(self) -> dict:
        d = asdict(self)
        if not d["changes"]:
            d.pop("changes")
        return d


def _rel(cur: float, base: float) -> float:
    return (cur - base) / base if base else math.inf


# ------------------------------------------------------------------------------------------ cost

def cost_key(rec: dict) -> str:
    return f"{rec['variant']}@{rec['frames']}x{rec['input_size']}"


def module_diff(base: dict[str, int], cur: dict[str, int]) -> list[dict]:
    """Modules whose multiply-adds differ, largest change first."""
    out = []
    for name in sorted(set(base) | set(cur)):
        b, c = base.get(name, 0), cur.get(name, 0)
        if b != c:
            out.append({"module": name, "baseline": b, "current": c, "delta": c - b})
    return sorted(out, key=lambda d: -abs(d["delta"]))


def cost_gate(baseline: list[dict], current: list[dict]) -> list[Verdict]:
    """Exact comparison of ``macs`` and ``params`` per variant, with per-module differences."""
    base = {cost_key(r): r for r in baseline}
    cur = {cost_key(r): r for r in current}
    verdicts = []
    for key in sorted(set(base) | set(cur)):
        b, c = base.get(key), cur.get(key)
        if b is None:
            verdicts.append(Verdict("cost", key, "macs", None, c["macs"], NEW, "not in the baseline"))
            continue
        if c is None:
            verdicts.append(Verdict("cost", key, "macs", b["macs"], None, MISSING, "variant no longer measured"))
            continue
        for metric in ("macs", "params"):
            if b[metric] == c[metric]:
                verdicts.append(Verdict("cost", key, metric, b[metric], c[metric], PASS))
                continue
            changes = module_diff(b.get("modules", {}), c.get("modules", {})) if metric == "macs" else []
            where = ", ".join(f"{d['module']} {d['delta']:+,}" for d in changes[:5])
            verdicts.append(Verdict(
                "cost", key, metric, b[metric], c[metric], REGRESSION,
                f"{metric} changed {c[metric] - b[metric]:+,} ({100 * _rel(c[metric], b[metric]):+.3f}%)"
                + (f" in {where}" if where else ""), changes=changes))
    return verdicts


# --------------------------------------------------------------------------------------- latency

def iqr_over_median(samples: list[float]) -> float:
    s = sorted(samples)
    n = len(s)
    if n < 2:
        return 0.0
    q1, q3 = _quantile(s, 0.25), _quantile(s, 0.75)
    return (q3 - q1) / median(s)


def _quantile(sorted_values: list[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def mann_whitney_greater(current: list[float], baseline: list[float]) -> float:
    """One-sided p-value that ``current`` is stochastically greater (slower) than ``baseline``."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(current, baseline, alternative="greater").pvalue)


def latency_gate(key: str, baseline: list[float], current: list[float], same_hardware: bool) -> Verdict:
    if not same_hardware:
        return Verdict("latency", key, "median_ms", median(baseline) if baseline else None,
                       median(current) if current else None, NOT_COMPARABLE,
                       "different hardware fingerprint: latency is compared only on the same machine", "ms")
    if not baseline or not current:
        return Verdict("latency", key, "median_ms", None, None, MISSING, "no samples", "ms")
    b, c = median(baseline), median(current)
    slowdown = _rel(c, b)
    threshold = max(LATENCY_MIN_SLOWDOWN, LATENCY_IQR_FACTOR * iqr_over_median(baseline))
    p = mann_whitney_greater(current, baseline)
    detail = f"median {b:.3f} -> {c:.3f} ms ({100 * slowdown:+.1f}%), threshold {100 * threshold:.1f}%, p={p:.2g}"
    if p < LATENCY_P and slowdown >= threshold:
        return Verdict("latency", key, "median_ms", b, c, REGRESSION, detail, "ms")
    p_faster = mann_whitney_greater(baseline, current)
    if p_faster < LATENCY_P and -slowdown >= threshold:
        return Verdict("latency", key, "median_ms", b, c, IMPROVEMENT, detail, "ms")
    return Verdict("latency", key, "median_ms", b, c, PASS, detail, "ms")


def memory_gate(key: str, baseline_bytes: float | None, current_bytes: float | None) -> Verdict:
    if baseline_bytes is None or current_bytes is None:
        return Verdict("memory", key, "peak_bytes", baseline_bytes, current_bytes, MISSING, "no measurement", "B")
    rel = _rel(current_bytes, baseline_bytes)
    status = REGRESSION if rel > MEMORY_TOLERANCE else PASS
    return Verdict("memory", key, "peak_bytes", baseline_bytes, current_bytes, status,
                   f"{100 * rel:+.1f}% (tolerance +{100 * MEMORY_TOLERANCE:.0f}%)", "B")


# -------------------------------------------------------------------------------------- accuracy

def mcnemar_worse(base_correct: list[bool], cur_correct: list[bool]) -> float:
    """Exact one-sided McNemar p-value that the current model gets fewer videos right."""
    from scipy.stats import binomtest

    lost = sum(b and not c for b, c in zip(base_correct, cur_correct))
    gained = sum(c and not b for b, c in zip(base_correct, cur_correct))
    if lost + gained == 0:
        return 1.0
    return float(binomtest(lost, lost + gained, 0.5, alternative="greater").pvalue)


def accuracy_gate(key: str, baseline: dict, current: dict, tolerance: float = ACCURACY_TOLERANCE) -> Verdict:
    """``baseline``/``current``: {"top1": %, "correct": [bool per video] (optional), "dataset_fingerprint": str}."""
    b, c = baseline.get("top1"), current.get("top1")
    if baseline.get("dataset_fingerprint") != current.get("dataset_fingerprint"):
        return Verdict("accuracy", key, "top1", b, c, NOT_COMPARABLE, "different dataset fingerprint", "%")
    if b is None or c is None:
        return Verdict("accuracy", key, "top1", b, c, MISSING, "no accuracy", "%")
    drop = b - c
    bc, cc = baseline.get("correct"), current.get("correct")
    if bc and cc and len(bc) == len(cc):
        p = mcnemar_worse(bc, cc)
        detail = f"top-1 {b:.1f} -> {c:.1f} ({-drop:+.1f} points), McNemar p={p:.2g}"
        failed = p < ACCURACY_P or drop > tolerance
    else:
        detail = f"top-1 {b:.1f} -> {c:.1f} ({-drop:+.1f} points), tolerance {tolerance:.1f}"
        failed = drop > tolerance
    return Verdict("accuracy", key, "top1", b, c, REGRESSION if failed else PASS, detail, "%")


# ------------------------------------------------------------------------------------------ output

def summary(verdicts: list[Verdict]) -> dict:
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    return counts


def gate_rows(verdicts: list[Verdict]) -> list[dict]:
    """What each gate compared: one row per gate with the count per status and the cases it covered."""
    rows = []
    for gate in dict.fromkeys(v.gate for v in verdicts):
        mine = [v for v in verdicts if v.gate == gate]
        counts = summary(mine)
        row = {"gate": gate, "cases": len({v.key for v in mine}),
               "compared": sum(counts.get(s, 0) for s in COMPARED)}
        row.update({s: counts.get(s, 0) for s in STATUSES if counts.get(s, 0) or s in (PASS, REGRESSION)})
        rows.append(row)
    return rows


def outcome(verdicts: list[Verdict]) -> tuple[bool, str]:
    """(failed, one line): failed when any verdict failed or when nothing at all could be compared."""
    failed = [v for v in verdicts if v.failed]
    compared = sum(v.status in COMPARED for v in verdicts)
    line = f"{plural(compared, 'comparison')} made, {plural(len(failed), 'failure')}"
    errors = sum(v.status == ERROR for v in verdicts)
    if errors:
        line += f" ({plural(errors, 'gate')} could not run)"
    nc = sum(v.status == NOT_COMPARABLE for v in verdicts)
    if nc:
        line += f"; {nc} not comparable: " + "; ".join(sorted({v.detail for v in verdicts if v.status == NOT_COMPARABLE}))
    if not compared:
        return True, line + "; nothing was compared, so nothing is known to pass"
    return bool(failed), line


def to_markdown(verdicts: list[Verdict]) -> str:
    """A pull-request comment: failures first, then a count of the rest."""
    failed = [v for v in verdicts if v.failed]
    lines = ["### tembench check", ""]
    counts = summary(verdicts)
    lines.append(" · ".join(f"**{n}** {s}" for s, n in sorted(counts.items())))
    lines += ["", "| gate | cases | compared | pass | regression | other |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in gate_rows(verdicts):
        other = ", ".join(f"{r[s]} {s}" for s in STATUSES if s not in (PASS, REGRESSION) and r.get(s))
        lines.append(f"| {r['gate']} | {r['cases']} | {r['compared']} | {r.get(PASS, 0)} | {r.get(REGRESSION, 0)} | {other} |")
    lines.append("")
    if failed:
        lines += ["| gate | case | metric | baseline | current | detail |", "| --- | --- | --- | ---: | ---: | --- |"]
        for v in failed:
            lines.append(f"| {v.gate} | `{v.key}` | {v.metric} | {v.baseline if v.baseline is not None else ''} | "
                         f"{v.current if v.current is not None else ''} | {v.detail.replace('|', '/')} |")
    else:
        lines.append("No regression.")
    nc = [v for v in verdicts if v.status == NOT_COMPARABLE]
    if nc:
        lines += ["", f"{len(nc)} comparison(s) not made: " + "; ".join(sorted({v.detail for v in nc}))]
    return "\n".join(lines) + "\n"


def to_github_benchmark(verdicts: list[Verdict]) -> list[dict]:
    """github-action-benchmark ``customSmallerIsBetter`` entries (current values)."""
    out = []
    for v in verdicts:
        if v.current is None or v.status == NOT_COMPARABLE and v.gate != "latency":
            continue
        if v.gate == "accuracy":
            out.append({"name": f"{v.key} top-1 error", "unit": "%", "value": round(100 - v.current, 4)})
        elif v.gate == "cost" and v.metric == "macs":
            out.append({"name": f"{v.key} GFLOPs", "unit": "GFLOPs", "value": v.current / 1e9})
        elif v.gate == "cost":
            out.append({"name": f"{v.key} params", "unit": "params", "value": v.current})
        elif v.gate == "latency":
            out.append({"name": f"{v.key} latency", "unit": "ms", "value": v.current, "extra": v.detail})
        elif v.gate == "memory":
            out.append({"name": f"{v.key} peak memory", "unit": "bytes", "value": v.current})
    return out
