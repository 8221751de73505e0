"""results/papers/ holds the rendered paper tables; this test fails when they are stale."""
import difflib
from pathlib import Path

import pytest

from tembench.report.formats import PAPERS_COMMAND, paper_markdown_files
from tembench.report.plots import PLOT_NAMES
from tembench.report.tables import build_tables
from tembench.registry import registry
from tembench.results.runset import RunSet

PAPERS = Path(__file__).resolve().parent.parent / "results" / "papers"


def test_results_papers_markdown_is_up_to_date():
    """The files are generated with every optional family installed (CI installs tembench[hf]); without one,
    its claims would read "not measured", so the comparison needs them all."""
    absent = sorted({v.id for v in registry().variants.values() if v.missing and v.claims})
    if absent:
        hints = sorted({registry().get(v).install_hint for v in absent})
        pytest.skip(f"results/papers/ includes the claims of {', '.join(absent)}, not measurable here: {'; '.join(hints)}")
    expected = paper_markdown_files(build_tables(runs=RunSet()), plots=[f"{n}.png" for n in PLOT_NAMES])
    stale = []
    for name, text in expected.items():
        path = PAPERS / name
        actual = path.read_text(encoding="utf-8") if path.exists() else ""
        if actual != text:
            diff = "".join(list(difflib.unified_diff(actual.splitlines(True), text.splitlines(True), str(path),
                                                     "expected", n=0))[:12])
            stale.append(f"{name}:\n{diff}")
    extra = sorted(p.name for p in PAPERS.glob("*.md") if p.name not in expected)
    assert not stale and not extra, (f"results/papers/ is stale; regenerate with `{PAPERS_COMMAND}`\n"
                                     + "\n".join(stale) + (f"\nno longer generated: {extra}" if extra else ""))


def test_results_papers_has_the_plots_the_index_shows():
    for name in PLOT_NAMES:
        assert (PAPERS / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert (PAPERS / f"{name}.svg").read_text().lstrip().startswith("<?xml")


def test_tam_table2_in_results_papers_has_13_rows_in_the_papers_order():
    text = (PAPERS / "tam.md").read_text()
    section = text.split("## TAM Table 2", 1)[1].split("\n## ", 1)[0]
    rows = [ln.split("|")[1].strip() for ln in section.splitlines() if ln.startswith("| ")][2:]
    assert rows == ["C2D", "C2D-Pool", "C2D-TConv", "C2D-TIM", "I3D 3x1x1", "TSM*", "TEINet*", "NL C2D",
                    "Global branch", "Local branch", "Global branch + SE", "TANet-R", "TANet"]
    assert "| GFLOPs published | GFLOPs measured | GFLOPs diff |" in section
