"""The command line: formats, saved records, and one-line errors with non-zero exits."""
import csv
import io
import json

import pytest

from conftest import run_cli as run

from tembench.cli import main




def test_list_formats(capsys):
    code, out, _ = run(capsys, "list", "tam", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and any(r["variant"] == "tam/tanet-r50" for r in rows)
    code, out, _ = run(capsys, "list", "tsn/*", "--format", "csv")
    assert code == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 5


def test_profile_prints_and_saves_the_same_records(capsys, runs_dir):
    code, out, err = run(capsys, "profile", "tam/tanet-r50", "--frames", "8,16", "--views", "3x10", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["frames"] for r in rows] == [8, 16]
    r8 = rows[0]
    assert r8["gflops_total"] == pytest.approx(30 * r8["gflops"])
    assert r8["temporal_params"] == 1_262_688 and r8["params"] == 25_590_320
    for key in ("variant", "input_size", "views", "convention", "temporal_gflops"):
        assert key in r8
    (path,) = runs_dir.glob("*.json")
    saved = json.loads(path.read_text())
    assert saved["status"] == "complete" and saved["records"] == rows
    assert saved["fingerprint"]["software"]["torch"]


def test_claims_json_rows_carry_the_documented_fields(capsys):
    code, out, _ = run(capsys, "claims", "--paper", "tam", "--format", "json")
    rows = json.loads(out)
    assert code == 0
    for key in ("variant", "source", "metric", "claimed", "measured", "rel_err", "status", "diagnosis"):
        assert key in rows[0]
    assert {r["status"] for r in rows} >= {"match", "not measured"}


def test_claims_markdown_renders_the_paper_table(capsys):
    code, out, _ = run(capsys, "claims", "--table", "TAM Table 2", "--format", "markdown")
    assert code == 0 and out.count("\n| ") >= 14 and "GFLOPs published" in out and "NL C2D" in out


@pytest.mark.parametrize("args, needle", [
    (["profile", "tam/tanet-r5"], "closest: tam/tanet-r50"),
    (["profile", "tsn/tsn-r50", "--frames", "8,x"], "frames must be positive integers"),
    (["profile", "tsn/tsn-r50", "--frames", "-8"], "frames must be positive integers"),
    (["profile", "tsn/tsn-r50", "--views", "3by10"], "views must be"),
    (["profile", "tsn/tsn-r50", "--convention", "thop"], "'thop' is not one of 'fvcore', 'fvcore-legacy'"),
    (["claims", "--paper", "nope"], "no claims from paper"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, runs_dir, args, needle):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_malformed_registry_file_is_one_line(capsys, tmp_path, monkeypatch):
    (tmp_path / "bad.toml").write_text('[paper]\nkey = "x"\n[[variant]]\nid = "x/y"\narch = "resnet"\n')
    monkeypatch.setenv("TEMBENCH_REGISTRY", str(tmp_path))
    code, _, err = run(capsys, "list")
    assert code == 2 and "bad.toml" in err and "backbone" in err and len(err.strip().splitlines()) == 1


def test_interrupted_profile_keeps_what_was_measured(capsys, runs_dir, monkeypatch):
    import tembench.cost.records as cost_records
    from conftest import interrupt_on_call

    interrupt_on_call(monkeypatch, cost_records, "cost_record")
    code, _, err = run(capsys, "profile", "tsn", "--no-save", "--save")
    assert code == 130
    (path,) = runs_dir.glob("*.json")
    saved = json.loads(path.read_text())
    assert saved["status"] == "interrupted" and len(saved["records"]) == 2
