"""How cost and latency grow with the number of frames.

For a frame sweep of one variant (same input size, batch, device, dtype), fit ``y = a * frames**k`` by
least squares on ``log y`` against ``log frames``. ``k`` is the growth exponent: 1 is linear (a 2-D
backbone with a per-frame temporal module), 2 quadratic (full attention over space-time tokens). An
exponent above :data:`SUPERLINEAR` is flagged as clearly faster than linear.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

SUPERLINEAR = 1.1
METRICS = ("gflops", "latency_ms", "mem_peak_alloc_mib", "rss_increase_mib")
GROUP_KEYS = ("variant", "input_size", "batch", "views", "device", "dtype")


def fit_growth(frames: list[float], values: list[float]) -> dict:
    """Exponent ``k`` and ``r2`` of the log-log fit; needs two or more distinct positive frame counts."""
    pts = [(math.log(t), math.log(v)) for t, v in zip(frames, values) if t and v and t > 0 and v > 0]
    if len({x for x, _ in pts}) < 2:
        raise ValueError("a growth fit needs values at two or more frame counts")
    x, y = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    k, c = np.polyfit(x, y, 1)
    resid = y - (k * x + c)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return {"exponent": float(k), "r2": r2, "points": len(pts)}


def scaling_rows(records: list[dict], metrics: tuple[str, ...] = METRICS) -> list[dict]:
    """One row per (case group, metric) that has a frame sweep: exponent, fit quality and a flag."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("frames") and r.get("status", "ok") == "ok":
            groups[tuple(_views(r.get(k)) if k == "views" else r.get(k) for k in GROUP_KEYS)].append(r)
    rows = []
    for key, recs in groups.items():
        for metric in metrics:
            pts = [(r["frames"], r[metric]) for r in recs if isinstance(r.get(metric), (int, float))]
            if len({t for t, _ in pts}) < 2:
                continue
            fit = fit_growth([t for t, _ in pts], [v for _, v in pts])
            lo, hi = min(pts), max(pts)
            rows.append({
                "variant": recs[0]["variant"], "metric": metric,
                "frames": ",".join(str(t) for t in sorted({t for t, _ in pts})),
                "exponent": round(fit["exponent"], 3), "r2": round(fit["r2"], 4),
                "ratio": hi[1] / lo[1] if lo[1] else None,
                "growth": "faster than linear" if fit["exponent"] > SUPERLINEAR else "linear or slower",
                **{k: recs[0].get(k) for k in ("input_size", "batch", "device", "dtype") if recs[0].get(k) is not None},
            })
    return rows


def _views(views) -> str | None:
    """'8x3x10' -> '3x10': the frame count is what the sweep varies."""
    if not isinstance(views, str) or views.count("x") != 2:
        return views
    return views.split("x", 1)[1]
