"""The results store read back: filters, the DataFrame, the `results` command, incomplete runs, the schema."""
import csv
import io
import json

import pytest

from conftest import run_cli as run
from run_records import runtime_rec

from tembench.cli import main
from tembench.errors import UsageError
from tembench.results import RunWriter, load, records, select_runs
from tembench.results.schema import check_record, check_run


@pytest.fixture
def store(tmp_path):
    """Three runs: a complete runtime run, an interrupted one, and one left 'running' by a killed process."""
    d = tmp_path / "runs"
    fp = {"software": {}, "hardware": {}, "hardware_hash": "abc123def456", "gpu_state": {}, "settings": {}}
    w = RunWriter("runtime", d, command=["tembench", "profile"], fingerprint=fp)
    for t, lat in ((8, 100.0), (16, 210.0)):
        w.add(runtime_rec(frames=t, latency=lat))
    w.add(runtime_rec("tsn/tsn-r18", status="oom", device="cuda"))
    w.data["created"] = "2026-11-20T10:00:00+00:00"
    w.close("complete")
    w2 = RunWriter("runtime", d, fingerprint={**fp, "hardware_hash": "fff000"})
    w2.add(runtime_rec("tam/tanet-r50", dtype="fp16"))
    w2.data["created"] = "2026-11-21T10:00:00+00:00"
    w2.close("interrupted")
    w3 = RunWriter("cost", d, fingerprint=fp)
    w3.add({"variant": "tsm/tsm-r50", "frames": 8, "input_size": 224, "views": "8x1x1", "convention": "fvcore",
            "gflops": 32.9, "gflops_total": 32.9, "params": 24327632, "temporal_gflops": 0.0, "temporal_params": 0})
    w3.data["created"] = "2026-11-22T10:00:00+00:00"
    w3._flush()  # never closed: its process was killed
    return d


def test_incomplete_runs_are_readable(store):
    runs = select_runs(store)
    assert [r["status"] for r in runs] == ["complete", "interrupted", "running"]
    assert all(check_run({k: v for k, v in r.items() if k != "path"}) == [] for r in runs)


def test_record_filters(store):
    assert len(records(store)) == 5
    assert {r["variant"] for r in records(store, patterns=["tsm"])} == {"tsm/tsm-r50"}
    assert [r["frames"] for r in records(store, patterns=["tsm/*"], kind="runtime")] == [8, 16]
    assert [r["variant"] for r in records(store, status="oom")] == ["tsn/tsn-r18"]
    assert [r["variant"] for r in records(store, device="cuda")] == ["tsn/tsn-r18"]
    assert [r["variant"] for r in records(store, dtype="fp16")] == ["tam/tanet-r50"]
    assert [r["frames"] for r in records(store, where=["frames=16"])] == [16]
    assert [r["kind"] for r in records(store, last=1)] == ["cost"]
    assert {r["run_status"] for r in records(store, since="2026-11-21")} == {"interrupted", "running"}
    assert {r["variant"] for r in records(store, run_status="interrupted")} == {"tam/tanet-r50"}
    assert {r["hardware_hash"] for r in records(store, hardware="fff")} == {"fff000"}


@pytest.mark.parametrize("kw, needle", [
    ({"since": "yesterday"}, "--since must be an ISO date"),
    ({"where": ["frames"]}, "--where takes KEY=VALUE"),
    ({"last": 0}, "--last must be a positive integer"),
])
def test_bad_filters_are_usage_errors(store, kw, needle):
    with pytest.raises(UsageError, match=needle):
        records(store, **kw)


def test_load_is_a_dataframe_with_run_columns_first(store):
    df = load(store)
    assert list(df.columns[:5]) == ["run_id", "kind", "run_status", "created", "hardware_hash"]
    assert len(df) == 5 and set(df["run_status"]) == {"complete", "interrupted", "running"}
    ok = load(store, kind="runtime", status="ok")
    assert sorted(ok["latency_ms"]) == [100.0, 100.0, 210.0]




def test_results_command_formats(capsys, store):
    code, out, _ = run(capsys, "results", "tsm", "--kind", "runtime", "--dir", str(store), "--format", "json")
    rows = json.loads(out)
    assert code == 0 and [r["latency_ms"] for r in rows] == [100.0, 210.0]
    code, out, _ = run(capsys, "results", "--dir", str(store), "--format", "csv", "--status", "oom")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and row["variant"] == "tsn/tsn-r18" and row["status"] == "oom"
    code, out, _ = run(capsys, "results", "--dir", str(store))
    assert code == 0 and " ms " in out and "tam/tanet-r50" in out and "running" in out


def test_results_command_lists_runs(capsys, store):
    code, out, _ = run(capsys, "results", "--runs", "--dir", str(store), "--format", "json")
    rows = json.loads(out)
    assert code == 0 and [r["records"] for r in rows] == [3, 1, 1]
    code, out, _ = run(capsys, "results", "tam", "--runs", "--dir", str(store), "--format", "json")
    assert [r["run_status"] for r in json.loads(out)] == ["interrupted"]


def test_results_reads_the_environment_directory(capsys, runs_dir, store, monkeypatch):
    monkeypatch.setenv("TEMBENCH_RUNS", str(store))
    code, out, _ = run(capsys, "results", "--where", "frames=16", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 1


@pytest.mark.parametrize("args, needle", [
    (["--dir", "/nonexistent/runs"], "no results directory"),
    (["--since", "last week"], "--since must be an ISO date"),
    (["--where", "frames"], "--where takes KEY=VALUE"),
])
def test_results_bad_input_is_one_line(capsys, store, args, needle):
    args = args if "--dir" in args else [*args, "--dir", str(store)]
    code, _, err = run(capsys, "results", *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_schema_check_names_what_is_wrong():
    good = runtime_rec()
    assert check_record(good, "runtime") == []
    bad = {**good, "latency_ms": "fast", "status": "maybe"}
    del bad["batch"]
    problems = check_record(bad, "runtime", "r")
    assert "r: missing 'batch'" in problems
    assert any("'latency_ms' is str" in p for p in problems) and any("status 'maybe'" in p for p in problems)
    oom = runtime_rec(status="oom")
    del oom["error"]
    assert check_record(oom, "runtime") == ["record: a oom record needs an 'error' message"]


def test_a_newer_schema_version_is_skipped_with_a_warning(store, capsys):
    path = next(store.glob("*.json"))
    data = json.loads(path.read_text())
    data["schema_version"] = 99
    path.write_text(json.dumps(data))
    assert len(select_runs(store)) == 2
    assert "schema version 99" in capsys.readouterr().err
