"""Which stored runs a report shows, and plots whose axes cover their data.

Accuracy runs that only show that the pipeline works (random init, weights not recorded, synthetic
data) are left out of tables and plots by default, and the report says how many and why;
``--include-smoke-runs`` shows them, marked, and never compares them with a paper's number. Every
plot's labelled axes span every point it draws (a 4-frame latency series on an 8-32 axis did not).
"""
import math
import shutil
import xml.etree.ElementTree as ET

import pytest

from conftest import run_cli as run
from run_records import runtime_rec

from tembench.report import plots
from tembench.report.html import make_plots, plot_costs
from tembench.report.tables import build_tables
from tembench.results.runset import RunSet, load_runset
from tembench.results.store import RunWriter

TRAINED = {"variant": "tam/tanet-r50", "dataset": "k400", "frames": 8, "views": "8x3x10", "top1": 76.1,
           "top5": 92.5, "weights": "tanet_k400.pth", "randomly_initialised": False}
RANDOM = {"variant": "tam/c2d-r50", "dataset": "k400", "frames": 8, "views": "8x3x10", "top1": 0.4,
          "weights": "random init (seed 0)", "randomly_initialised": True}
SYNTHETIC = {"variant": "tam/tanet-r50", "dataset": "ssv1", "frames": 8, "views": "8x1x1", "top1": 62.5,
             "weights": "tanet_sthv1.pth", "randomly_initialised": False, "data_root": "/nonexistent/ssv1-synth",
             "synthetic": {"generator": "tembench data synth", "generator_version": 1, "seed": 0}}
UNKNOWN = {"variant": "tsm/tsm-r50", "dataset": "ssv1", "frames": 8, "views": "8x1x1", "top1": 44.0}  # no weights


def add_run(runs, kind, records, command):
    w = RunWriter(kind, runs, command=command)
    for r in records:
        w.add(dict(r))
    w.close()


@pytest.fixture
def mixed_runs(tmp_path):
    """One trained accuracy run, three that are not comparable with a paper, a runtime sweep 4-32 frames."""
    runs = tmp_path / "runs"
    add_run(runs, "accuracy", [TRAINED], ["tembench", "eval", "tam/tanet-r50", "--data", "/data/k400",
                                          "--checkpoint", "tanet_k400.pth"])
    add_run(runs, "accuracy", [RANDOM], ["tembench", "eval", "tam/c2d-r50", "--data", "/data/k400"])
    add_run(runs, "accuracy", [SYNTHETIC], ["tembench", "eval", "tam/tanet-r50", "--data", "/tmp/ssv1-synth",
                                            "--checkpoint", "tanet_sthv1.pth"])
    add_run(runs, "accuracy", [UNKNOWN], ["tembench", "eval", "tsm/tsm-r50", "--data", "/data/ssv1"])
    add_run(runs, "runtime", [runtime_rec(frames=t, latency=12.5 * t, temporal_ms=0.3 * t) for t in (4, 8, 16, 32)],
            ["tembench", "profile", "tsm/tsm-r50", "--latency", "--frames", "4,8,16,32"])
    return runs


def accuracy_records(runset):
    return sorted((rec["variant"], rec["dataset"]) for rec, _ in runset.with_metric("top1"))


def svg_text(plot):
    return " ".join(ET.fromstring(plot.svg).itertext())


# ------------------------------------------------------------------------------------------
# Runs without a checkpoint or on synthetic data
# ------------------------------------------------------------------------------------------

def test_runs_without_a_checkpoint_or_on_synthetic_data_are_left_out_by_default(mixed_runs):
    runs = load_runset(f"dir={mixed_runs}")
    assert accuracy_records(runs) == [("tam/tanet-r50", "k400")]
    assert sorted((rec["variant"], reason) for rec, _run, reason in runs.excluded) == [
        ("tam/c2d-r50", "random init"), ("tam/tanet-r50", "synthetic data"), ("tsm/tsm-r50", "weights not recorded")]
    assert "left out 3 accuracy records" in runs.description and "--include-smoke-runs" in runs.description
    assert len(runs.with_metric("latency_ms")) == 4  # runtime records are never left out

    included = load_runset(f"dir={mixed_runs}", include_smoke=True)
    assert len(accuracy_records(included)) == 4 and included.excluded == []


def test_the_plot_has_no_smoke_points_by_default_and_marks_them_when_asked(mixed_runs):
    runs = load_runset(f"dir={mixed_runs}")
    text = svg_text(plots.accuracy_vs_gflops(runs, plot_costs(runs, "tam")))
    assert "measured top-1 (run)" in text and "tanet-r50" in text
    assert "c2d-r50" not in text and "random init" not in text and "synthetic" not in text

    runs = load_runset(f"dir={mixed_runs}", include_smoke=True)
    plot = plots.accuracy_vs_gflops(runs, plot_costs(runs, "tam"))
    text = svg_text(plot)
    assert "not comparable: random init, synthetic data or weights not recorded" in text  # the legend
    assert "c2d-r50 (random init)" in text and "tanet-r50 (synthetic data)" in text
    assert "3 of them random init, synthetic data or weights not recorded" in plot.caption


def test_tables_never_compare_smoke_runs_and_mark_them_when_asked(capsys, mixed_runs):
    (t2,) = build_tables(source="TAM Table 2", runs=load_runset(f"dir={mixed_runs}"))
    c2d = next(r for r in t2.rows if r.label == "C2D").cells["Top-1 (%)"]
    assert c2d.measured is None
    code, out, err = run(capsys, "report", "--table", "TAM Table 4", "--format", "markdown",
                         "--runs", f"dir={mixed_runs}")
    assert code == 0 and "left out 3 accuracy records" in err
    assert "Top-1 (%) measured" not in out  # the only TAM Table 4 runs are synthetic or of unknown weights

    code, out, err = run(capsys, "report", "--table", "TAM Table 4", "--format", "markdown", "--runs",
                         f"dir={mixed_runs}", "--include-smoke-runs")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if "| tam/tanet-r50 | 8x1x1 |" in ln)
    assert "| 47.3 | 62.5 | not compared (synthetic data) |" in line  # published, measured, diff
    (t4,) = build_tables(source="TAM Table 4", runs=load_runset(f"dir={mixed_runs}", include_smoke=True))
    cell = next(r for r in t4.rows if r.variant == "tam/tanet-r50" and r.views == "8x1x1").cells["Top-1 (%)"]
    assert (cell.measured, cell.status, cell.smoke) == (62.5, "", "synthetic data")  # neither match nor mismatch
    tsm = next(ln for ln in out.splitlines() if "| tsm/tsm-r50 | 8x1x1 |" in ln)
    assert "| 44 |" in tsm or "| 44.0 |" in tsm
    assert "not compared (weights not recorded)" in tsm


def test_html_report_says_what_it_left_out(capsys, mixed_runs, tmp_path):
    out = tmp_path / "r.html"
    code, _, err = run(capsys, "report", "--paper", "tam", "--format", "html", "--runs", f"dir={mixed_runs}",
                       "--out", out)
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    assert "Left out 3 accuracy records" in text and "--include-smoke-runs" in text
    left = text.split("id='left-out'", 1)[1].split("</table>", 1)[0]
    for variant, reason in (("tam/c2d-r50", "random init"), ("tam/tanet-r50", "synthetic data"),
                            ("tsm/tsm-r50", "weights not recorded")):
        assert variant in left and reason in left
    read = text.split('id=runs>', 1)[1].split("</table>", 1)[0]
    assert read.count("<tr>") == 1 + 2  # header, the trained accuracy run, the runtime run


def test_eval_on_synthetic_data_is_recognised_after_the_data_is_gone(tmp_path):
    import torch

    from tembench.data.synth import write_synthetic
    from tembench.api import evaluate
    from tembench.models.build import build_model

    data = tmp_path / "ssv1"
    write_synthetic("ssv1", data, train_per_class=0, val_per_class=1, size=(32, 24), frames=(8, 8))
    ckpt = tmp_path / "weights.pth"
    torch.save(build_model("tsm/tsm-r18", 8, num_classes=8).state_dict(), ckpt)
    rec = evaluate("tsm/tsm-r18", data, views="8x1x1", size=32, checkpoint=ckpt, out=tmp_path / "runs", limit=2)
    assert rec["randomly_initialised"] is False and rec["synthetic"]["generator"] == "tembench data synth"
    shutil.rmtree(data)
    runs = load_runset(f"dir={tmp_path / 'runs'}")
    assert runs.records == [] and [reason for _, _, reason in runs.excluded] == ["synthetic data"]


# ------------------------------------------------------------------------------------------
# Every plot's axes cover its data
# ------------------------------------------------------------------------------------------

def drawn_points(ax):
    """(x, y) of every line vertex, scatter marker and bar end drawn on ``ax``."""
    from matplotlib.container import BarContainer

    pts = []
    for line in ax.get_lines():
        pts += [tuple(map(float, p)) for p in line.get_xydata()]
    for coll in ax.collections:
        pts += [tuple(map(float, p)) for p in coll.get_offsets()]
    for c in ax.containers:
        if isinstance(c, BarContainer):
            for bar in c.patches:
                x, y, w, h = bar.get_x(), bar.get_y(), bar.get_width(), bar.get_height()
                ends = [(x, y + h / 2), (x + w, y + h / 2)] if c.orientation == "horizontal" else \
                    [(x + w / 2, y), (x + w / 2, y + h)]
                pts += ends
    return [p for p in pts if all(math.isfinite(v) for v in p)]


def labelled_ticks(ax, which):
    """Positions of the major ticks that are inside the view and carry a visible label, on ``ax`` or
    on an axes that shares this axis with it (shared panels show the labels once)."""
    share = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    out = set()
    for a in share.get_siblings(ax):
        axis = a.xaxis if which == "x" else a.yaxis
        for tick in axis.get_major_ticks():
            label = tick.label1 if tick.label1.get_visible() else tick.label2
            if tick.get_visible() and label.get_visible() and label.get_text().strip() \
                    and lo * (1 - 1e-9) - 1e-12 <= tick.get_loc() <= hi * (1 + 1e-9) + 1e-12:
                out.add(float(tick.get_loc()))
    return sorted(out)


def check_axes_cover_data(fig, name):
    fig.canvas.draw()  # ticks and labels as drawn
    checked = 0
    for ax in fig.axes:
        pts = drawn_points(ax)
        if not pts:
            continue
        checked += 1
        for which, i in (("x", 0), ("y", 1)):
            lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
            values = [p[i] for p in pts]
            where = f"{name} / {ax.get_title()!r} {which}"
            outside = [v for v in values if not lo - 1e-9 * abs(lo) <= v <= hi + 1e-9 * abs(hi)]
            assert not outside, f"{where}: points {outside[:5]} outside the limits {lo:g}..{hi:g}"
            ticks = labelled_ticks(ax, which)
            assert ticks, f"{where}: no labelled tick"
            assert ticks[0] <= min(values) + 1e-9 and ticks[-1] >= max(values) - 1e-9, \
                f"{where}: data {min(values):g}..{max(values):g}, labelled ticks only {ticks[0]:g}..{ticks[-1]:g}"
    return checked


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figure behind each plot made while the test runs, by plot name."""
    figs = {}
    save = plots._save

    def keep(fig, name, title, caption):
        figs[name] = fig
        return save(fig, name, title, caption)

    monkeypatch.setattr(plots, "_save", keep)
    return figs


@pytest.mark.parametrize("smoke", [False, True])
def test_every_plot_axis_covers_all_its_data(mixed_runs, figures, smoke):
    runs = load_runset(f"dir={mixed_runs}", include_smoke=smoke) if smoke else load_runset(f"dir={mixed_runs}")
    make_plots(runs, "tam")
    assert sorted(figures) == sorted(plots.PLOT_NAMES)
    for name, fig in figures.items():
        assert check_axes_cover_data(fig, name) >= 1, name
    # the frames axis of both scaling panels labels every frame count drawn, the 4-frame series' too
    for ax in figures["scaling"].axes:
        xs = {p[0] for p in drawn_points(ax)}
        assert xs and xs <= set(labelled_ticks(ax, "x")), (ax.get_title(), sorted(xs), labelled_ticks(ax, "x"))
    latency = figures["scaling"].axes[1]
    assert min(p[0] for p in drawn_points(latency)) == 4


def test_plots_without_runs_cover_their_data_too(figures):
    make_plots(RunSet(), "tam")
    for name, fig in figures.items():
        check_axes_cover_data(fig, name)
