"""Regression gates: pure functions from (baseline, current) to verdicts.

Measuring is elsewhere; this module only judges. Each gate returns :class:`Verdict` rows whose
``status`` is one of ``pass``, ``regression``, ``improvement``, ``changed`` (cost moved),
``not comparable`` (different hardware or dataset fingerprint), ``missing``, ``new`` or ``error`` (the gate
could not run: a missing dependency, no device; it fails like a regression).

Policies (documented defaults):

* **cost**: FLOPs and params must be equal, exactly; any change is a regression (an intended change
  is accepted by rewriting the baseline with ``--accept``) and is listed per module.
* **latency**: compared only on the same hardware hash (a committed baseline from this machine, or the
  base commit measured side by side with the change: ``tembench check --base REF``). A regression needs
  both a one-sided Mann-Whitney U test with p < 0.01 on the raw samples and a slowdown of the median of at
  least max(5%, 3 x the baseline's IQR/median). Each comparison also carries the ratio of the medians
  (current / baseline) with a 95% bootstrap interval.
* **not comparable is not a pass**: a gate that compared nothing because its baseline is not comparable
  here fails the check (:func:`outcome`) unless that is explicitly allowed (``--allow-uncompared``).
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
    ratio: float | None = None  # latency: median current / median baseline of the samples judged
    ratio_ci: tuple[float, float] | None = None  # its 95% bootstrap interval

    @property
    def failed(self) -> bool:
        return self.status in (REGRESSION, MISSING, ERROR)

    def as_dict(self) -> dict:
        d = asdict(self)
        for name in ("changes", "ratio", "ratio_ci"):
            if d[name] is None or d[name] == []:
                d.pop(name)
        if "ratio_ci" in d:
            d["ratio_ci"] = list(d["ratio_ci"])
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


def ratio_ci(baseline: list[float], current: list[float], level: float = 0.95, resamples: int = 1000,
             seed: int = 0) -> tuple[float, float]:
    """A percentile-bootstrap interval of median(current) / median(baseline): each side resampled with
    replacement ``resamples`` times (seeded, so the same samples give the same interval)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    b, c = np.asarray(baseline, dtype=float), np.asarray(current, dtype=float)
    mb = np.median(b[rng.integers(0, b.size, (resamples, b.size))], axis=1)
    mc = np.median(c[rng.integers(0, c.size, (resamples, c.size))], axis=1)
    lo, hi = np.quantile(mc / mb, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def latency_stats(baseline: list[float], current: list[float]) -> dict:
    """What the latency gate decides on: both medians, the slowdown (current / baseline - 1) and the ratio
    with its interval, the threshold max(5%, 3 x IQR/median of the baseline), the one-sided Mann-Whitney U
    p-values (current slower, current faster), and the status they give."""
    b, c = median(baseline), median(current)
    slowdown = _rel(c, b)
    threshold = max(LATENCY_MIN_SLOWDOWN, LATENCY_IQR_FACTOR * iqr_over_median(baseline))
    p = mann_whitney_greater(current, baseline)
    p_faster = mann_whitney_greater(baseline, current)
    status = REGRESSION if p < LATENCY_P and slowdown >= threshold else \
        IMPROVEMENT if p_faster < LATENCY_P and -slowdown >= threshold else PASS
    return {"baseline": b, "current": c, "slowdown": slowdown, "ratio": c / b if b else math.inf,
            "ratio_ci": ratio_ci(baseline, current), "threshold": threshold, "p": p, "p_faster": p_faster,
            "status": status}


def latency_gate(key: str, baseline: list[float], current: list[float], same_hardware: bool) -> Verdict:
    if not same_hardware:
        return Verdict("latency", key, "median_ms", median(baseline) if baseline else None,
                       median(current) if current else None, NOT_COMPARABLE,
                       "different hardware fingerprint: latency is compared only on the same machine", "ms")
    if not baseline or not current:
        return Verdict("latency", key, "median_ms", None, None, MISSING, "no samples", "ms")
    st = latency_stats(baseline, current)
    b, c = st["baseline"], st["current"]
    detail = (f"median {b:.3f} -> {c:.3f} ms ({100 * st['slowdown']:+.1f}%), threshold {100 * st['threshold']:.1f}%, "
              f"p={st['p']:.2g}")
    return Verdict("latency", key, "median_ms", b, c, st["status"], detail, "ms", ratio=st["ratio"],
                   ratio_ci=st["ratio_ci"])


def latency_ab_gate(key: str, base: dict, current: dict, against: str, rounds: int) -> Verdict:
    """The latency gate on a side-by-side measurement (``tembench check --base``): ``base`` and ``current``
    are rows with raw ``samples_ms`` and ``relative`` samples (each divided by the reference convolution
    measured just before it, in the same process). The relative samples are judged, as for a committed
    baseline; the verdict shows the medians in ms, and the ratio and interval of the relative medians."""
    st = latency_stats(base["relative"], current["relative"])
    b_ms, c_ms = median(base["samples_ms"]), median(current["samples_ms"])
    lo, hi = st["ratio_ci"]
    detail = (f"side by side with {against}, {rounds} round(s), {len(base['samples_ms'])}/{len(current['samples_ms'])} "
              f"samples: {b_ms:.2f} -> {c_ms:.2f} ms; relative to the reference conv x{st['ratio']:.3f} "
              f"[{lo:.3f}, {hi:.3f}], threshold +{100 * st['threshold']:.1f}%, p={st['p']:.2g}")
    return Verdict("latency", key, "median_ms", b_ms, c_ms, st["status"], detail, "ms", ratio=st["ratio"],
                   ratio_ci=st["ratio_ci"])


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


def uncompared(verdicts: list[Verdict]) -> dict[str, list[Verdict]]:
    """The gates that compared nothing because their baselines are not comparable here (measured on
    another machine, on another dataset), with those verdicts."""
    out = {}
    for gate in dict.fromkeys(v.gate for v in verdicts):
        mine = [v for v in verdicts if v.gate == gate]
        if not any(v.status in COMPARED for v in mine) and any(v.status == NOT_COMPARABLE for v in mine):
            out[gate] = [v for v in mine if v.status == NOT_COMPARABLE]
    return out


UNCOMPARED_HINT = {"latency": "measure the base commit and this tree side by side with --base REF "
                              "(e.g. --base origin/main), or pass --allow-uncompared to accept that"}


def uncompared_lines(verdicts: list[Verdict], allowed: bool = False) -> list[str]:
    """One line per gate that compared nothing (:func:`uncompared`): why, and what to do (or, ``allowed``,
    what was skipped)."""
    lines = []
    for gate, nc in uncompared(verdicts).items():
        why = "; ".join(sorted({v.detail for v in nc}))
        if allowed:
            lines.append(f"{gate} not compared (allowed by --allow-uncompared): skipped {plural(len(nc), 'case')} "
                         f"({', '.join(v.key for v in nc)}): {why}")
        else:
            lines.append(f"{gate} not compared, which is not a pass: {why}; "
                         + UNCOMPARED_HINT.get(gate, "pass --allow-uncompared to accept that"))
    return lines


def outcome(verdicts: list[Verdict], allow_uncompared: bool = False) -> tuple[bool, str]:
    """(failed, one line): failed when any verdict failed, when a gate compared nothing because its
    baseline is not comparable here (unless ``allow_uncompared``; :func:`uncompared_lines` says which and
    why) or when nothing at all could be compared."""
    failed = [v for v in verdicts if v.failed]
    compared = sum(v.status in COMPARED for v in verdicts)
    line = f"{plural(compared, 'comparison')} made, {plural(len(failed), 'failure')}"
    errors = sum(v.status == ERROR for v in verdicts)
    if errors:
        line += f" ({plural(errors, 'gate')} could not run)"
    skipped = uncompared(verdicts)  # their reasons have lines of their own (uncompared_lines)
    nc = [v for v in verdicts if v.status == NOT_COMPARABLE]
    if nc:
        whys = sorted({v.detail for v in nc if v.gate not in skipped})
        line += f"; {len(nc)} not comparable" + (": " + "; ".join(whys) if whys else "")
    if skipped and not allow_uncompared:
        return True, line + f"; {' and '.join(skipped)} compared nothing, so {'they are' if len(skipped) > 1 else 'it is'} " \
                            "not known to pass"
    if not compared and not (skipped and allow_uncompared):
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
    lines += latency_markdown(verdicts)
    nc = [v for v in verdicts if v.status == NOT_COMPARABLE]
    if nc:
        lines += ["", f"{len(nc)} comparison(s) not made: " + "; ".join(sorted({v.detail for v in nc}))]
    return "\n".join(lines) + "\n"


def _value(x: float | None, unit: str) -> str:
    if x is None:
        return ""
    return f"{x:.2f} ms" if unit == "ms" else f"{x:.3f} {unit}".strip()


def latency_markdown(verdicts: list[Verdict]) -> list[str]:
    """The latency cases as a table: base and current median, the ratio with its 95% interval, the verdict."""
    rows = [v for v in verdicts if v.gate == "latency" and (v.ratio is not None or v.status in (NEW, ERROR))]
    if not rows:
        return []
    side_by_side = any(v.detail.startswith("side by side with ") for v in rows)
    how = (f"measured {rows[0].detail.split(',')[0]} on this machine" if side_by_side
           else "against the committed baseline from this machine")
    out = ["", f"#### Latency ({how})", "",
           "Ratio: current / base of the median latency relative to a reference convolution measured alongside "
           "(what the gate judges), with its 95% bootstrap interval; a regression needs Mann-Whitney U p < 0.01 "
           f"and a slowdown of at least max({100 * LATENCY_MIN_SLOWDOWN:.0f}%, {LATENCY_IQR_FACTOR:g} x IQR/median).",
           "", "| case | base | current | ratio [95% CI] | verdict |", "| --- | ---: | ---: | --- | --- |"]
    for v in rows:
        ratio = f"{v.ratio:.3f} [{v.ratio_ci[0]:.3f}, {v.ratio_ci[1]:.3f}]" if v.ratio is not None and v.ratio_ci else ""
        verdict = f"**{v.status}**" if v.failed else v.status
        if v.status in (NEW, ERROR):
            verdict += f": {v.detail.replace('|', '/')}"
        out.append(f"| `{v.key}` | {_value(v.baseline, v.unit)} | {_value(v.current, v.unit)} | {ratio} | {verdict} |")
    return out


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
            out.append({"name": f"{v.key} latency", "unit": v.unit or "ms", "value": v.current, "extra": v.detail})
        elif v.gate == "memory":
            out.append({"name": f"{v.key} peak memory", "unit": "bytes", "value": v.current})
    return out
