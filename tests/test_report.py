"""`tembench report`: paper tables in Markdown / LaTeX / CSV, stored runs beside the papers, plots, errors."""
import csv
import io
import re
import xml.etree.ElementTree as ET

import pytest

from conftest import run_cli as run

from run_records import write_legacy_run

from tembench.cli import main
from tembench.report.formats import latex_escape, render_tables, table_latex
from tembench.report.html import plot_costs
from tembench.report.tables import Cell, Group, Row, TableView, build_tables
from tembench.results.runset import RunSet, load_runset, parse_runs_filter
from tembench.results.store import RunWriter

TAM2_ROWS = ["C2D", "C2D-Pool", "C2D-TConv", "C2D-TIM", "I3D 3x1x1", "TSM*", "TEINet*", "NL C2D",
             "Global branch", "Local branch", "Global branch + SE", "TANet-R", "TANet"]




def md_table(text):
    """Header and rows of the first Markdown table in ``text``."""
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    split = lambda ln: [c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]]  # noqa: E731
    return split(lines[0]), [dict(zip(split(lines[0]), split(ln))) for ln in lines[2:]]


@pytest.fixture
def fake_runs(runs_dir):
    """An accuracy run (TANet on Kinetics-400) and a runtime sweep (TSM-R50, 8/16/32 frames) on disk."""
    acc = RunWriter("accuracy", runs_dir, command=["tembench", "eval", "tam/tanet-r50", "--data", "/data/k400"])
    acc.add({"variant": "tam/tanet-r50", "dataset": "k400", "frames": 8, "views": "8x3x10",
             "top1": 76.1, "top5": 92.5, "randomly_initialised": False,
             "dataset_fingerprint": {"videos": 19796, "annotations_sha256": "ab12cd", "decoder": "pyav 12"}})
    acc.add({"variant": "tam/c2d-r50", "dataset": "kinetics400", "frames": 8, "views": "8x3x10", "top1": 0.4,
             "randomly_initialised": True})  # never beside a paper's number
    acc.close()
    # a runtime run as an older writer left it (latency as {median, p90}, fields missing): still read
    write_legacy_run(runs_dir, "runtime", [
        *({"variant": "tsm/tsm-r50", "frames": t, "device": "cpu", "latency_ms": {"median": ms, "p90": ms * 1.1},
           "temporal_ms": 2.5 * t / 8, "status": "ok"} for t, ms in ((8, 100.0), (16, 200.0), (32, 400.0))),
        {"variant": "tsm/tsm-r50", "frames": 64, "device": "cpu", "status": "oom", "error": "out of memory"},
        {"variant": "emim/emim-s16", "frames": 16, "device": "cpu", "batch": 1, "latency_ms": 140.0, "status": "ok"},
    ], ["tembench", "profile", "tsm/tsm-r50", "--latency"])
    return runs_dir


# ------------------------------------------------------------------------------------------
# Markdown, CSV
# ------------------------------------------------------------------------------------------

def test_tam_table2_markdown_lists_the_13_rows_in_order_with_published_measured_diff(capsys, runs_dir):
    code, out, _ = run(capsys, "report", "--table", "TAM Table 2", "--format", "markdown")
    assert code == 0
    header, rows = md_table(out)
    assert [r["row"] for r in rows] == TAM2_ROWS
    for metric in ("GFLOPs", "Params (M)"):
        assert [f"{metric} published", f"{metric} measured", f"{metric} diff"] == \
            [h for h in header if h.startswith(metric)]
    tanet = rows[-1]
    assert tanet["GFLOPs published"] == "43.02" and tanet["GFLOPs measured"] == "43.04"
    assert tanet["GFLOPs diff"] == "+0.04%" and tanet["check"] == "✓"
    teinet = rows[TAM2_ROWS.index("TEINet*")]
    assert teinet["check"] == "✗" and teinet["Params (M) diff"].startswith("**") and "no natural MEM layout" in teinet["diagnosis"]
    assert "1 multiply-add = 1 FLOP" in out and "per view" in out


def test_csv_has_one_line_per_row_with_a_status(capsys, runs_dir):
    code, out, _ = run(capsys, "report", "--paper", "tam", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and {r["table"] for r in rows} == {"TAM Table 2", "TAM Table 3", "TAM Table 4", "TAM Table 5"}
    t2 = [r for r in rows if r["table"] == "TAM Table 2"]
    assert [r["row"] for r in t2] == TAM2_ROWS
    assert {r["status"] for r in t2} == {"match", "mismatch"}
    assert float(t2[-1]["GFLOPs measured"]) == pytest.approx(43.04)


# ------------------------------------------------------------------------------------------
# LaTeX
# ------------------------------------------------------------------------------------------

def unescaped(text, char):
    return [m.start() for m in re.finditer(rf"(?<!\\){re.escape(char)}", text)]


def check_latex(tex):
    """Environments nest and close; every tabular row has as many cells as its column spec."""
    stack = []
    for m in re.finditer(r"\\(begin|end)\{(\w+)\}", tex):
        if m.group(1) == "begin":
            stack.append(m.group(2))
        else:
            assert stack and stack.pop() == m.group(2), f"unbalanced \\end{{{m.group(2)}}}"
    assert not stack, f"unclosed: {stack}"
    for body in re.findall(r"\\begin\{tabular\}\{([lrc]+)\}(.*?)\\end\{tabular\}", tex, re.S):
        spec, rows = body
        for line in rows.strip().splitlines():
            if line.strip() == r"\hline":
                continue
            assert line.endswith(r"\\"), line
            assert len(unescaped(line, "&")) == len(spec) - 1, line
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") > 0


def test_latex_escape_covers_every_special_character():
    raw = r"R50 & 50% $x_1$ #1 {a} ~b ^c \d <e> |f ×2"
    esc = latex_escape(raw)
    assert esc == (r"R50 \& 50\% \$x\_1\$ \#1 \{a\} \textasciitilde{}b \textasciicircum{}c "
                   r"\textbackslash{}d \textless{}e\textgreater{} \textbar{}f $\times$2")
    for ch in "&%#_":
        assert not unescaped(esc, ch)


def test_latex_escapes_labels_and_diagnoses_and_balances_its_tabulars():
    cell = Cell(10.0, 12.0, "+20.00%", "mismatch", diagnosis="counted 2 FLOPs/MAC & 50% more_{x}", command="x")
    t = TableView("X Table 1", "x", "A & B: 100% of $cost$", [Group("GFLOPs", "gflops", True)],
                  [Row("Net_#1 {big} ~", "x/net", "8x3x10", {"GFLOPs": cell}),
                   Row("plain", "x/plain", "8x1x1", {"GFLOPs": Cell(1.0, 1.0, "+0.00%", "match")})],
                  command="tembench report")
    tex = table_latex(t)
    check_latex(tex)
    assert r"Net\_\#1 \{big\} \textasciitilde{}" in tex
    assert r"\caption{X Table 1: A \& B: 100\% of \$cost\$}" in tex
    assert r"\textbf{+20.00\%}" in tex and r"(1) GFLOPs: counted 2 FLOPs/MAC \& 50\% more\_\{x\}\par" in tex


def test_latex_of_real_tables_balances(capsys, runs_dir):
    code, out, _ = run(capsys, "report", "--paper", "tam", "--format", "latex")
    assert code == 0
    check_latex(out)
    assert out.count(r"\begin{table}") == 4 and r"\label{tab:tam-table-2}" in out


# ------------------------------------------------------------------------------------------
# Stored runs beside the papers
# ------------------------------------------------------------------------------------------

def test_accuracy_run_appears_beside_the_paper(fake_runs):
    (t,) = build_tables(source="TAM Table 2", runs=load_runset())
    md = render_tables([t], "markdown")
    header, rows = md_table(md)
    assert "Top-1 (%) measured" in header and "Top-1 (%) diff" in header
    tanet = rows[-1]
    assert tanet["Top-1 (%) published"] == "76.3" and tanet["Top-1 (%) measured"] == "76.1"
    assert tanet["Top-1 (%) diff"] == "-0.20 pt"
    assert rows[0]["Top-1 (%) measured"] == ""  # C2D's run is a randomly initialised model
    assert tanet["Top-5 (%) measured"] == "92.5" and tanet["check"] == "✓"
    cmds = t.rows[-1].commands
    assert any(c.startswith("tembench eval tam/tanet-r50 --data /data/k400  # run ") for c in cmds)


def test_runs_match_the_claims_frames_and_latency_is_not_judged(fake_runs):
    runs = load_runset()
    (t3,) = build_tables(source="TAM Table 3", runs=runs)
    cells = {r.label: r.cells for r in t3.rows}
    assert cells["TANet-50 8f"]["Top-1 (%)"].measured == 76.1
    assert cells["TANet-50 16f"]["Top-1 (%)"].measured is None  # an 8-frame run does not answer a 16-frame claim
    (t4,) = build_tables(source="EMIM Table 4", runs=runs)
    (row,) = [r for r in t4.rows if r.variant == "emim/emim-s16"]
    lat = row.cells["Latency (ms)"]
    assert lat.published == 14 and lat.measured == 140.0 and lat.status == ""
    assert "the paper's hardware differs" in lat.diagnosis


def test_runs_filter(fake_runs):
    assert parse_runs_filter(None) == {} and parse_runs_filter("none") is None
    assert len(load_runset("kind=runtime").records) == 5
    assert len(load_runset("kind=runtime").with_metric("latency_ms")) == 4  # the OOM record has none
    assert len(load_runset("variant=tam/*").records) == 1  # C2D's random-init record is left out ...
    assert len(load_runset("variant=tam/*", include_smoke=True).records) == 2  # ... unless asked for
    assert len(load_runset("dataset=kinetics400", include_smoke=True).records) == 2  # k400 is an alias
    assert load_runset("none").records == []
    assert len(load_runset(f"dir={fake_runs},kind=accuracy").runs) == 1


@pytest.mark.parametrize("args, needle", [
    (["report", "--paper", "nope", "--format", "csv"], "no claims from paper 'nope'"),
    (["report", "--table", "TAM Table 22", "--format", "csv"], "no paper table 'TAM Table 22'"),
    (["report", "--runs", "kind", "--format", "csv"], "--runs: expected key=value"),
    (["report", "--runs", "colour=red", "--format", "csv"], "--runs: unknown key 'colour'"),
    (["report", "--runs", "dir=/nonexistent/runs", "--format", "csv"], "--runs: no runs directory"),
    (["report", "--table", "TAM Table 2", "--format", "csv", "--out", "/proc/nope/report.csv"], "cannot write"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, runs_dir, args, needle):
    code, out, err = run(capsys, *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_out_file_and_directory(capsys, runs_dir, tmp_path):
    code, _, err = run(capsys, "report", "--table", "TAM Table 2", "--format", "latex", "--out", str(tmp_path / "t.tex"))
    assert code == 0 and (tmp_path / "t.tex").read_text().count(r"\begin{tabular}") == 1 and "wrote" in err
    code, _, _ = run(capsys, "report", "--table", "TAM Table 2", "--format", "markdown", "--out", f"{tmp_path}/md/")
    assert code == 0 and [p.name for p in (tmp_path / "md").iterdir()] == ["tam.md"]


# ------------------------------------------------------------------------------------------
# Plots
# ------------------------------------------------------------------------------------------

def svg_text(plot):
    root = ET.fromstring(plot.svg)  # well-formed SVG
    return " ".join(t for t in root.itertext())


def test_plots_without_runs_show_what_exists_and_say_so():
    from tembench.report.plots import all_plots

    plots = all_plots(RunSet(), plot_costs(RunSet(), "tam"), paper="tam")
    assert [p.name for p in plots] == ["accuracy-vs-gflops", "scaling", "temporal-overhead"]
    for p in plots:
        assert p.png.startswith(b"\x89PNG\r\n\x1a\n") and len(p.png) > 10_000
    acc, scale, overhead = plots
    assert "TAM published" in svg_text(acc) and "no accuracy runs" in acc.caption
    assert "no latency runs stored yet" in svg_text(scale) and "tam/tanet-r50 (k=1.00)" in svg_text(scale)
    assert "no runtime runs" in svg_text(overhead) and "tam/tanet-r50" in svg_text(overhead)


def test_plots_with_runs_draw_the_measured_points(fake_runs):
    from tembench.report.plots import accuracy_vs_gflops, scaling, temporal_overhead

    runs = load_runset()
    costs = plot_costs(runs, "tam")
    assert "measured top-1 (run)" in svg_text(accuracy_vs_gflops(runs, costs))
    scale = scaling(runs, costs, paper="tam")
    assert "tsm/tsm-r50 [cpu] (k=1.00)" in svg_text(scale) and "no latency runs" not in svg_text(scale)
    over = temporal_overhead(runs, costs, paper="tam")
    assert "time added (ms, stored runtime runs)" in svg_text(over)


def test_plot_output_is_deterministic():
    from tembench.report.plots import temporal_overhead

    costs = plot_costs(RunSet(), "tsm")
    a, b = temporal_overhead(RunSet(), costs, paper="tsm"), temporal_overhead(RunSet(), costs, paper="tsm")
    assert a.png == b.png and a.svg == b.svg


def test_fit_exponent():
    from tembench.report.plots import fit_exponent

    assert fit_exponent([8, 16, 32], [10 * t ** 1.5 for t in (8, 16, 32)]) == pytest.approx(1.5)
    assert fit_exponent([8], [1.0]) is None
