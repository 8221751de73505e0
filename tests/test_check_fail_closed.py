"""`tembench check` and `tembench compare` fail closed: no baseline, an empty or unreadable one, a gate
that cannot run, or nothing compared at all is never a pass; progress is printed on a non-terminal."""
import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli

from tembench import check, gates

# measures time, or kills and launches processes on a timetable: runs alone (see tests/conftest.py)
pytestmark = pytest.mark.serial

BASELINES = Path(__file__).resolve().parent.parent / "results" / "baselines"


def test_check_without_baselines_fails_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "check", "--gates", "cost", "tsn/tsn-r18")
    assert code != 0
    assert "no baseline results/baselines/cost.json" in err and "--accept" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_accept_writes_baselines_and_a_following_check_passes(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "check", "--gates", "cost", "--accept", "tsn/tsn-r18")
    assert code == 0 and (tmp_path / "results/baselines/cost.json").is_file()
    assert "wrote cost.json in results/baselines/" in err  # says what it wrote
    code, out, err = run_cli(capsys, "check", "--gates", "cost", "tsn/tsn-r18")
    assert code == 0, err
    assert "No results." not in out and "cost" in out and "2 comparisons made, 0 failures" in err


@pytest.mark.parametrize("content, problem", [("", "unreadable"), ("{not json", "unreadable"),
                                              ('{"schema_version": 1, "records": []}', "holds no records"),
                                              ('[1, 2]', "unknown layout")])
def test_an_empty_or_unreadable_baseline_fails(capsys, tmp_path, content, problem):
    (tmp_path / "cost.json").write_text(content)
    code, _, err = run_cli(capsys, "check", "--gates", "cost", "--baseline", tmp_path, "tsn/tsn-r18")
    assert code == 2 and problem in err and str(tmp_path / "cost.json") in err


def test_a_gate_that_cannot_run_fails(tmp_path, monkeypatch):
    shutil.copy(BASELINES / "cost.json", tmp_path / "cost.json")

    def no_scipy(*a, **k):
        raise ModuleNotFoundError("No module named 'scipy'", name="scipy")

    monkeypatch.setattr(check, "cost_records", no_scipy)
    verdicts = check.run_check(tmp_path, ["cost"], patterns=["tsn/tsn-r18"])
    assert [v.status for v in verdicts] == ["error"] and "scipy" in verdicts[0].detail
    failed, line = gates.outcome(verdicts)
    assert failed and "could not run" in line


def test_nothing_compared_is_a_failure(capsys, tmp_path, monkeypatch):
    shutil.copy(BASELINES / "latency.json", tmp_path / "latency.json")
    monkeypatch.setattr("tembench.env.hardware_hash", lambda hw=None: "another-machine")
    code, _, err = run_cli(capsys, "check", "--gates", "latency", "--baseline", tmp_path)
    assert code == 1
    assert "0 comparisons made" in err and "compared nothing" in err and "not comparable" in err
    verdicts = [gates.Verdict("cost", "a", "macs", None, 1, gates.NEW, "not in the baseline")]
    failed, line = gates.outcome(verdicts)
    assert failed and "nothing was compared" in line


def test_latency_not_comparable_fails_beside_a_passing_gate_unless_allowed(capsys, tmp_path, monkeypatch):
    """Another machine, no --base: cost compares and passes, but latency compared nothing, which is said on
    a line of its own and fails; --allow-uncompared passes and names what it skipped."""
    for name in ("cost.json", "latency.json"):
        shutil.copy(BASELINES / name, tmp_path / name)
    monkeypatch.setattr("tembench.env.hardware_hash", lambda hw=None: "another-machine")
    args = ("check", "--gates", "cost,latency", "--baseline", tmp_path, "tsn/tsn-r18", "tsm/tsm-r18")
    code, _, err = run_cli(capsys, *args)
    (why,) = [ln for ln in err.splitlines() if ln.startswith("latency not compared")]
    assert code == 1 and "another machine" in why and "--base REF" in why and "--allow-uncompared" in why
    assert "Traceback" not in err
    code, _, err = run_cli(capsys, *args, "--allow-uncompared")
    (skipped,) = [ln for ln in err.splitlines() if ln.startswith("latency not compared")]
    assert code == 0, err
    assert "allowed by --allow-uncompared" in skipped and "skipped 2 cases" in skipped and "tsm/tsm-r18@8x112" in skipped


def test_check_prints_progress_lines_on_a_non_terminal(capsys, tmp_path):
    shutil.copy(BASELINES / "cost.json", tmp_path / "cost.json")
    code, _, err = run_cli(capsys, "check", "--gates", "cost", "--baseline", tmp_path, "tsn/tsn-r18", "tsm/tsm-r18")
    lines = [ln for ln in err.splitlines() if ln.startswith("check: cost")]
    assert code == 0 and len(lines) == 2 and "tsm/tsm-r18" in lines[0] and "s elapsed]" in lines[0]


def test_a_passing_compare_says_what_it_compared(capsys):
    code, out, err = run_cli(capsys, "compare", BASELINES / "cost.json", BASELINES / "cost.json")
    assert code == 0 and "No results." not in out
    assert "cost" in out and "comparisons made, 0 failures" in err


def test_compare_accepts_run_ids(capsys, runs_dir):
    code, _, _ = run_cli(capsys, "profile", "tsn/tsn-r18", "--format", "json")
    (path,) = runs_dir.glob("*.json")
    run_id = path.stem
    code, out, err = run_cli(capsys, "compare", run_id, run_id[:-2])
    assert code == 0, err
    code, _, err = run_cli(capsys, "compare", "nope-no-such-run", run_id)
    assert code == 2 and "no run" in err and "nope-no-such-run" in err


def test_plurals_in_the_summary_line():
    one = [gates.Verdict("cost", "a", "macs", 1, 2, gates.REGRESSION)]
    assert gates.outcome(one)[1].startswith("1 comparison made, 1 failure")
    from tembench.report.render import plural

    assert plural(2, "case") == "2 cases" and plural(1, "record") == "1 record"
