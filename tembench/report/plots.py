"""The report's plots, as PNG and SVG (matplotlib's Agg canvas; pyplot and its global state are not used).

* ``accuracy-vs-gflops``: top-1 against GFLOPs per view, one panel per dataset; the paper's points
  (open circles), the same rows at the measured GFLOPs (crosses, joined to the published point) and,
  where an accuracy run exists, measured GFLOPs and measured top-1 (stars).
* ``scaling``: GFLOPs and latency against frames, log-log, one line per representative variant of
  each family, with the fitted growth exponent k (cost ~ frames^k) in the legend.
* ``temporal-overhead``: what the temporal module adds to its backbone: GFLOPs, params and, where a
  runtime run timed it, milliseconds.

Every plot works with no stored run at all: the cost it draws is counted by the caller, on the meta
device (:class:`PlotCosts`; :func:`cost_needs` says what to count, :func:`tembench.report.html.plot_costs`
counts it), never here; panels that need latency or accuracy runs say that none exist and show the command
that would make them.

Axis limits and labelled ticks come from the data drawn (published and measured, every series): the
labelled ticks span every point, a frames axis labels every frame count drawn, log axes end on
1-2-5 numbers. Accuracy runs that only show the pipeline runs (random init, synthetic data) are not
in the run set unless asked for; then they are drawn as grey crosses, labelled with the reason.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from tembench.registry import Claim, Registry, VariantSpec, registry
from tembench.report.claims import ClaimRow
from tembench.report.tables import DATASET_LABELS, table_sources
from tembench.results.runset import SMOKE_NOTE, RunSet, dataset_name, metric_value, smoke_reason

PLOT_NAMES = ("accuracy-vs-gflops", "scaling", "temporal-overhead")  # the order of all_plots()
SCALING_FRAMES = (8, 16, 32)
PAPER_MARKERS = "osD^vP"


@dataclass
class CostNeeds:
    """The cost the plots draw, to be counted by the caller (:func:`cost_needs`)."""

    claims: list[Claim]  # the 'gflops' and 'top1' claims of the tables shown, to be measured and judged
    gflops: list[tuple[VariantSpec, int | None]]  # GFLOPs per view (fvcore) at these frames (None: default)
    overhead: list[VariantSpec]  # the temporal module's share of GFLOPs and params, at the defaults


@dataclass
class PlotCosts:
    """The cost the plots draw, counted by the caller: the plots never count."""

    claims: Sequence[ClaimRow] = ()  # the judged claims of :attr:`CostNeeds.claims`
    gflops: Mapping[tuple[str, int | None], float] = field(default_factory=dict)  # (variant id, frames) -> GFLOPs
    overhead: Mapping[str, Any] = field(default_factory=dict)  # variant id -> CostResult (temporal_macs, _params)


@dataclass
class Plot:
    name: str  # file stem
    title: str
    caption: str  # what is shown, what is missing, and the commands behind the numbers
    png: bytes
    svg: bytes


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _save(fig, name: str, title: str, caption: str) -> Plot:
    import matplotlib

    png, svg = io.BytesIO(), io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "tembench", "svg.fonttype": "none"}):
        fig.savefig(png, format="png", metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return Plot(name, title, caption, png.getvalue(), svg.getvalue())


def _empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9, wrap=True,
            color="#555555", bbox={"boxstyle": "round", "fc": "#f4f4f4", "ec": "#cccccc"})
    ax.set_xticks([])
    ax.set_yticks([])


def _nice(x: float, up: bool) -> float:
    """The 1-2-5 number (1, 2 or 5 x 10^k) next to ``x > 0``: at or above it when ``up``, else at or below."""
    k = math.floor(math.log10(x))
    candidates = [m * 10.0 ** e for e in (k - 1, k, k + 1) for m in (1, 2, 5)]
    if up:
        return min(c for c in candidates if c >= x * (1 - 1e-9))
    return max(c for c in candidates if c <= x * (1 + 1e-9))


def _set_axis(ax, which: str, lo: float, hi: float, ticks: Sequence[float], labels: Sequence[str]) -> None:
    from matplotlib.ticker import NullFormatter, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xlim if which == "x" else ax.set_ylim)(lo, hi)
    axis.set_ticks(list(ticks), list(labels))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def fit_log_axis(ax, which: str, values: Sequence[float], pad: float = 1.08) -> None:
    """A log axis from the 1-2-5 number below the smallest value to the one above the largest (after a
    small margin), labelled at every 1-2-5 number between (at powers of ten beyond three decades)."""
    vals = [float(v) for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not vals:
        return
    lo, hi = _nice(min(vals) / pad, up=False), _nice(max(vals) * pad, up=True)
    mults = (1, 2, 5)
    if hi / lo > 1e3:
        lo, hi, mults = 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi)), (1,)
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
             for m in mults if lo * (1 - 1e-9) <= m * 10.0 ** e <= hi * (1 + 1e-9)]
    _set_axis(ax, which, lo, hi, ticks, [f"{t:g}" for t in ticks])


def fit_linear_axis(ax, which: str, values: Sequence[float], zero: bool = False, headroom: float = 0.03,
                    bounds: tuple[float, float] | None = None) -> None:
    """A linear axis whose end ticks bracket the data (from 0 when ``zero``, as for bars), ``headroom``
    (a fraction of the span) left above the largest value, the margins kept within ``bounds`` (0-100
    for a percentage), every tick labelled."""
    from matplotlib.ticker import MaxNLocator

    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return
    lo, hi = (min(min(vals), 0.0) if zero else min(vals)), max(vals)
    span = hi - lo or abs(hi) or 1.0
    lo, hi = (lo if zero else lo - 0.03 * span), hi + headroom * span
    if bounds is not None:
        lo, hi = max(lo, min(bounds[0], min(vals))), min(hi, max(bounds[1], max(vals)))
    ticks = [float(t) for t in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)]
    _set_axis(ax, which, ticks[0], ticks[-1], ticks, [f"{t:g}" for t in ticks])


def fit_frames_axis(ax, frames: Sequence[int]) -> None:
    """A log2 frames axis labelled at every frame count drawn (4 as well as 8-32), with a margin."""
    fs = sorted({int(f) for f in frames})
    if fs:
        _set_axis(ax, "x", fs[0] / 1.2, fs[-1] * 1.2, fs, [str(f) for f in fs])


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of log y on log x: y ~ x^k. None with fewer than two distinct x or y <= 0."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sum((p[0] - mx) ** 2 for p in pts)


# ------------------------------------------------------------------------------------------
# Which variants the scaling and overhead plots show
# ------------------------------------------------------------------------------------------

def representatives(reg: Registry, paper: str | None = None, per_family: int = 2,
                    temporal_only: bool = False) -> list[VariantSpec]:
    """Up to ``per_family`` variants of each family, distinct architectures, most-claimed first."""
    chosen: dict[str, list[VariantSpec]] = {}
    seen = set()
    specs = [v for v in reg.select() if not v.is_ensemble and (not temporal_only or v.temporal)
             and (paper is None or any(c.paper == paper.lower() for c in v.claims))]
    for v in sorted(specs, key=lambda v: (-len(v.claims), v.id)):
        arch = (v.family, v.backbone, v.temporal, json.dumps(v.options, sort_keys=True))
        fam = chosen.setdefault(v.family, [])
        if arch in seen or len(fam) >= per_family:
            continue
        seen.add(arch)
        fam.append(v)
    return [v for fam in sorted(chosen) for v in sorted(chosen[fam], key=lambda v: v.id)]


def _scaling_variants(reg: Registry, paper: str | None) -> list[VariantSpec]:
    return representatives(reg, paper, per_family=2)


def _overhead_variants(reg: Registry, paper: str | None) -> list[VariantSpec]:
    return list(reversed(representatives(reg, paper, per_family=6, temporal_only=True)))


def cost_needs(runs: RunSet, paper: str | None = None, reg: Registry | None = None,
               frames: Sequence[int] = SCALING_FRAMES) -> CostNeeds:
    """What :func:`all_plots` draws of cost, for the caller to count into :class:`PlotCosts`."""
    reg = reg or registry()
    with_claims = paper is None or any(c.paper == paper.lower() for c in reg.claims())
    sources = table_sources(paper, None, reg) if with_claims else []  # e.g. the overhead plot of a family
    claims = [c for c in reg.claims() if c.source in sources and c.metric in ("gflops", "top1")]
    gflops = {_run_gflops(rec): reg.variants[rec["variant"]] for rec, _ in runs.with_metric("top1")
              if rec.get("variant") in reg.variants and rec.get("gflops") is None}
    gflops.update({(v.id, t): v for v in _scaling_variants(reg, paper) for t in frames})
    return CostNeeds(claims, [(spec, t) for (_, t), spec in gflops.items()], _overhead_variants(reg, paper))


def _family_colors(families: Sequence[str]) -> dict[str, str]:
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22"]
    return {f: palette[i % len(palette)] for i, f in enumerate(sorted(set(families)))}


# ------------------------------------------------------------------------------------------
# Top-1 vs GFLOPs per view
# ------------------------------------------------------------------------------------------

def _accuracy_points(judged: Sequence[ClaimRow]) -> dict[str, dict[tuple, dict]]:
    """Per dataset, each published top-1 with its row's published and measured GFLOPs."""
    gflops = {(r.source, r.row or r.variant): r for r in judged if r.metric == "gflops"}
    points: dict[str, dict[tuple, dict]] = {}
    for r in judged:
        g = gflops.get((r.source, r.row or r.variant))
        if r.metric != "top1" or g is None or not r.dataset:
            continue
        key = (r.variant, r.protocol, r.claimed)
        points.setdefault(r.dataset, {}).setdefault(key, {
            "paper": r.paper, "variant": r.variant, "row": r.row, "top1": r.claimed,
            "published": g.claimed, "measured": g.measured})
    return points


def _run_gflops(rec: dict) -> tuple[str, int | None]:
    """The key of :attr:`PlotCosts.gflops` that gives an accuracy record without ``gflops`` its GFLOPs."""
    return rec.get("variant"), rec.get("frames")


def accuracy_vs_gflops(runs: RunSet, costs: PlotCosts, reg: Registry | None = None) -> Plot:
    reg = reg or registry()
    points = _accuracy_points(costs.claims)
    run_points: dict[str, list[dict]] = {}
    for rec, run in runs.with_metric("top1"):
        ds = dataset_name(rec) or "unknown"
        v = rec.get("variant")
        if v not in reg.variants:
            continue
        g = rec.get("gflops")
        if g is None:
            g = costs.gflops[_run_gflops(rec)]
        run_points.setdefault(ds, []).append({"variant": v, "gflops": g, "top1": metric_value(rec, "top1"),
                                              "smoke": smoke_reason(rec, run)})
    datasets = sorted(points, key=lambda d: -len(points[d]))[:3]
    datasets += [d for d in run_points if d not in datasets]
    n = max(1, len(datasets))
    fig = _figure(4.6 * n, 4.2)
    axes = fig.subplots(1, n, squeeze=False)[0]
    papers = sorted({p["paper"] for d in points.values() for p in d.values()})
    markers = {p: PAPER_MARKERS[i % len(PAPER_MARKERS)] for i, p in enumerate(papers)}
    colors = _family_colors(papers)
    if not datasets:
        _empty_note(axes[0], "no paper table publishes top-1 and GFLOPs together")
    for ax, ds in zip(axes, datasets):
        pts = list(points.get(ds, {}).values())
        for paper_key in papers:
            mine = [p for p in pts if p["paper"] == paper_key]
            if not mine:
                continue
            col = colors[paper_key]
            for p in mine:
                if p["measured"] is not None:
                    ax.plot([p["published"], p["measured"]], [p["top1"], p["top1"]], color=col, lw=0.6, alpha=0.5)
            ax.scatter([p["published"] for p in mine], [p["top1"] for p in mine], s=28,
                       facecolors="none", edgecolors=col, marker=markers[paper_key], lw=1.0,
                       label=f"{paper_key.upper()} published")
            measured = [p for p in mine if p["measured"] is not None]
            ax.scatter([p["measured"] for p in measured], [p["top1"] for p in measured], s=22,
                       color=col, marker="x", lw=1.0, label=f"{paper_key.upper()} at measured GFLOPs")
        rp = [p for p in run_points.get(ds, []) if p["top1"] is not None]
        real, smoke = [p for p in rp if not p["smoke"]], [p for p in rp if p["smoke"]]
        if real:
            ax.scatter([p["gflops"] for p in real], [p["top1"] for p in real], s=90, marker="*", color="black",
                       zorder=5, label="measured top-1 (run)")
        if smoke:
            ax.scatter([p["gflops"] for p in smoke], [p["top1"] for p in smoke], s=60, marker="X", color="#9a9a9a",
                       edgecolors="#c0392b", lw=0.8, zorder=5, label=f"not comparable: {SMOKE_NOTE}")
        for p in rp:
            ax.annotate(p["variant"].split("/")[-1] + (f" ({p['smoke']})" if p["smoke"] else ""),
                        (p["gflops"], p["top1"]), fontsize=7, xytext=(4, 4), textcoords="offset points",
                        color="#c0392b" if p["smoke"] else "black")
        ax.set_xscale("log")
        xs = [p[k] for p in pts for k in ("published", "measured")] + [p["gflops"] for p in rp]
        fit_log_axis(ax, "x", xs)
        fit_linear_axis(ax, "y", [p["top1"] for p in pts] + [p["top1"] for p in rp], bounds=(0.0, 100.0))
        ax.set_xlabel("GFLOPs per view (log)")
        ax.set_ylabel("top-1 (%)")
        ax.set_title(DATASET_LABELS.get(ds, ds))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    n_runs = sum(len(v) for v in run_points.values())
    n_smoke = sum(1 for v in run_points.values() for p in v if p["smoke"])
    caption = ("Top-1 against GFLOPs per view (fvcore multiply-adds). Open markers: the paper's numbers; "
               "crosses: the same rows at the GFLOPs measured here (joined to the published point); ")
    if n_smoke:
        caption += (f"measured points: {n_runs} accuracy runs, {n_smoke} of them {SMOKE_NOTE} (grey X, labelled "
                    "with the reason, included by --include-smoke-runs: they only show that the pipeline runs "
                    "and are not comparable with the papers); stars: the others.")
    elif n_runs:
        caption += f"stars: {n_runs} accuracy runs."
    else:
        caption += ("no accuracy runs exist, so every top-1 shown is the paper's "
                    "(`tembench eval VARIANT --data ROOT --checkpoint WEIGHTS` adds measured points).")
    if runs.left_out_note:
        caption += f" The report {runs.left_out_note}."
    fig.suptitle("Top-1 vs GFLOPs per view: published and measured", fontsize=11)
    return _save(fig, "accuracy-vs-gflops", "Top-1 vs GFLOPs per view", caption)


# ------------------------------------------------------------------------------------------
# GFLOPs and latency vs frames
# ------------------------------------------------------------------------------------------

def _latency_series(runs: RunSet) -> dict[tuple[str, str], list[tuple[int, float]]]:
    series: dict[tuple[str, str], dict[int, float]] = {}
    for rec, run in runs.with_metric("latency_ms"):
        frames = rec.get("frames")
        if not isinstance(frames, int) or not rec.get("variant"):
            continue
        device = str(rec.get("device") or "cpu")
        batch = rec.get("batch")
        key = (rec["variant"], device + (f", batch {batch}" if batch not in (None, 1) else ""))
        series.setdefault(key, {})[frames] = metric_value(rec, "latency_ms")
    return {k: sorted(v.items()) for k, v in series.items()}


def scaling(runs: RunSet, costs: PlotCosts, paper: str | None = None, reg: Registry | None = None,
            frames: Sequence[int] = SCALING_FRAMES) -> Plot:
    reg = reg or registry()
    specs = _scaling_variants(reg, paper)
    colors = _family_colors([v.family for v in specs])
    fig = _figure(12, 4.8)
    ax_g, ax_l = fig.subplots(1, 2)
    drawn: list[str] = []  # families already drawn: a family's second variant is dashed
    gflops: list[float] = []
    for v in specs:
        ys = [costs.gflops[(v.id, t)] for t in frames]
        gflops += ys
        k = fit_exponent(frames, ys)
        ls = "--" if v.family in drawn else "-"
        drawn.append(v.family)
        ax_g.plot(frames, ys, ls, marker="o", ms=3, color=colors[v.family], label=f"{v.id} (k={k:.2f})")
    latency = _latency_series(runs)
    for (variant, device), pts in sorted(latency.items()):
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        k = fit_exponent(xs, ys)
        fam = variant.split("/")[0]
        ax_l.plot(xs, ys, "-", marker="o", ms=3, color=colors.get(fam, "black"),
                  label=f"{variant} [{device}]" + (f" (k={k:.2f})" if k is not None else ""))
    for ax, what in ((ax_g, "GFLOPs per view"), (ax_l, "latency (ms, median)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("frames (log)")
        ax.set_ylabel(f"{what} (log)")
        ax.grid(True, which="both", alpha=0.3)
    ax_g.set_yscale("log")
    fit_frames_axis(ax_g, frames)
    fit_log_axis(ax_g, "y", gflops)
    ax_g.set_title("GFLOPs vs frames (counted on the meta device)")
    ax_g.legend(fontsize=7, loc="upper left")
    ids = " ".join(v.id for v in specs[:3])
    if latency:
        ax_l.set_yscale("log")
        fit_frames_axis(ax_l, [p[0] for pts in latency.values() for p in pts])
        fit_log_axis(ax_l, "y", [p[1] for pts in latency.values() for p in pts])
        ax_l.set_title("latency vs frames (stored runtime runs)")
        ax_l.legend(fontsize=7, loc="upper left")
        shown = sorted({p[0] for pts in latency.values() for p in pts})
        tail = f"latency: {len(latency)} series from stored runtime runs, at {', '.join(map(str, shown))} frames."
    else:
        ax_l.set_title("latency vs frames")
        _empty_note(ax_l, "no latency runs stored yet\n"
                          f"`tembench profile {specs[0].id if specs else 'tsm/tsm-r50'} --latency --frames "
                          f"{','.join(map(str, frames))}`\nwould add them here")
        tail = "no latency runs exist, so the latency panel is empty."
    fig.suptitle("Growth with frames (log-log; k = fitted exponent, cost ~ frames^k)", fontsize=11)
    caption = (f"GFLOPs per view against frames ({', '.join(map(str, frames))}) on log-log axes, with the "
               f"fitted exponent k; counted as by `tembench profile {ids} --frames {','.join(map(str, frames))}`; "
               + tail)
    return _save(fig, "scaling", "GFLOPs and latency vs frames", caption)


# ------------------------------------------------------------------------------------------
# Temporal-module overhead
# ------------------------------------------------------------------------------------------

def temporal_overhead(runs: RunSet, costs: PlotCosts, paper: str | None = None, reg: Registry | None = None) -> Plot:
    reg = reg or registry()
    specs = _overhead_variants(reg, paper)
    colors = _family_colors([v.family for v in specs])
    shares = [costs.overhead[v.id] for v in specs]
    ms: dict[str, float] = {}
    for rec, _run in runs.with_metric("temporal_ms"):
        spec = reg.variants.get(rec.get("variant"))
        if spec is not None and rec.get("frames") in (None, spec.frames):
            ms[spec.id] = metric_value(rec, "temporal_ms")
    height = max(3.0, 0.28 * len(specs) + 1.4)
    fig = _figure(13, height)
    axes = fig.subplots(1, 3, sharey=True)
    labels = [f"{v.id} ({v.temporal}, {v.frames}f)" for v in specs]
    ys = list(range(len(specs)))
    cols = [colors[v.family] for v in specs]
    panels = [("GFLOPs added per view", [(c.temporal_macs or 0) / 1e9 for c in shares]),
              ("params added (M)", [(c.temporal_params or 0) / 1e6 for c in shares])]
    for ax, (title, values) in zip(axes, panels):
        ax.barh(ys, values, color=cols)
        for y, val in zip(ys, values):
            ax.text(val, y, f" {val:.2f}", va="center", fontsize=6)
        fit_linear_axis(ax, "x", values, zero=True, headroom=0.15)  # room for the value labels
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(ys, labels, fontsize=7)
    ax_ms = axes[2]
    if ms:
        vals = [ms.get(v.id, 0.0) for v in specs]
        ax_ms.barh(ys, vals, color=cols)
        for y, v in zip(ys, specs):
            ax_ms.text(ms.get(v.id, 0.0), y, f" {ms[v.id]:.2f}" if v.id in ms else " no run", va="center", fontsize=6)
        fit_linear_axis(ax_ms, "x", vals, zero=True, headroom=0.15)
        ax_ms.set_title("time added (ms, stored runtime runs)", fontsize=10)
        ax_ms.grid(True, axis="x", alpha=0.3)
        tail = f"milliseconds from stored runtime runs for {len(ms)} of the {len(specs)} variants."
    else:
        ax_ms.set_title("time added (ms)", fontsize=10)
        ax_ms.text(0.5, 0.5, "no runtime runs with per-module time\n(`tembench profile VARIANT --latency`)",
                   transform=ax_ms.transAxes, ha="center", va="center", fontsize=8, color="#555555",
                   bbox={"boxstyle": "round", "fc": "#f4f4f4", "ec": "#cccccc"})
        ax_ms.set_xticks([])
        tail = "no runtime runs exist, so the milliseconds panel is empty (a zero-FLOP module such as the TSM shift still costs time)."
    fig.suptitle("What the temporal module adds to its backbone (default frames and input size)", fontsize=11)
    caption = ("GFLOPs and params the temporal module adds over the same backbone without it (fvcore "
               "multiply-adds, per view), counted as by `tembench profile VARIANT` (columns temporal_gflops, "
               "temporal_params); " + tail)
    return _save(fig, "temporal-overhead", "Temporal-module overhead", caption)


def all_plots(runs: RunSet, costs: PlotCosts, paper: str | None = None, reg: Registry | None = None) -> list[Plot]:
    """Every plot (:data:`PLOT_NAMES`) of ``paper`` (or of every paper), with the cost of :func:`cost_needs`."""
    reg = reg or registry()
    return [accuracy_vs_gflops(runs, costs, reg), scaling(runs, costs, paper, reg),
            temporal_overhead(runs, costs, paper, reg)]
