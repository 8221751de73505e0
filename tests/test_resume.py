"""`tembench profile --resume RUN`: only the cases of the run's grid without a record are measured, into
the same file, for one process or a torchrun launch alike; a sharded run with a killed rank is completed."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import interrupt_on_call, run_cli

from tembench.cost import records as cost_records
from tembench.results.schema import check_run
from tembench.results.store import RunWriter, load_run, this_process

# measures time, or kills and launches processes on a timetable: runs alone (see tests/conftest.py)
pytestmark = pytest.mark.serial

FRAMES = [2, 3, 4, 5, 6, 7]
LATENCY = ["tsn/tsn-r18", "tsm/tsm-r18", "--frames", ",".join(map(str, FRAMES)), "--size", "32", "--latency",
           "--budget", "0.5", "--warmup", "0"]


def the_run(directory):
    (path,) = directory.glob("*.json")
    return path, load_run(path)


def each_once(run):
    cases = [r["case"] for r in run["records"]]
    assert len(cases) == len(set(cases)), "a case has two records"
    return cases


def test_a_killed_rank_is_completed_by_resume(capsys, tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TEMBENCH_RUNS": str(tmp_path / "unused")}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "-m", "tembench", "profile", *LATENCY, "--out", str(runs)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while True:  # until rank 1 has handed over a record: then kill it
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        try:
            _, run = the_run(runs)
            workers = {w["rank"]: w for w in run.get("workers") or []}
            if 1 in workers and any(r.get("rank") == 1 for r in run["records"]):
                break
        except (ValueError, KeyError, Exception):  # noqa: BLE001 -- no file yet, or half a rename away
            pass
        time.sleep(0.05)
    os.kill(workers[1]["pid"], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0

    path, run = the_run(runs)
    grid = run["grid"]
    assert len(grid) == 2 * len(FRAMES) and check_run(run) == []
    assert run["status"] == "interrupted" and run["missing"]  # rank 0 was stopped by torchrun, and said so
    assert set(each_once(run)) | set(run["missing"]) == set(grid)
    assert [w["status"] for w in run["workers"]] == ["interrupted", "lost"]
    assert "rank 1 on" in run["error"] and "was lost" in run["error"]
    assert f"complete them with `tembench profile --resume {run['run_id']}`" in err

    code, out, err = run_cli(capsys, "profile", "--resume", run["run_id"], "--out", runs, "--format", "json")
    assert code == 0, err
    assert f"{len(run['missing'])} of {len(run['missing'])} cases measured (resumed: " in err
    done = load_run(path)
    assert list(runs.glob("*.json")) == [path]  # the same file
    assert done["status"] == "complete" and "missing" not in done and check_run(done) == []
    assert each_once(done) == grid  # every case once, in grid order
    assert done["resumed"][0]["cases"] == len(run["missing"]) and len(json.loads(out)) == len(grid)
    new = [r for r in done["records"] if r["case"] in run["missing"]]
    assert all(r["rank"] == 0 and r["hardware_hash"] for r in new)


def test_an_interrupted_run_is_completed_by_a_torchrun_resume(capsys, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    interrupt_on_call(monkeypatch, cost_records, "cost_record", n=3)
    code, _, err = run_cli(capsys, "profile", "tsn", "tsm", "--out", runs)
    assert code == 130
    path, run = the_run(runs)
    assert run["status"] == "interrupted" and len(run["records"]) == 2 and len(run["missing"]) == 7
    assert f"7 cases missing: complete them with `tembench profile --resume {run['run_id']}`" in err
    monkeypatch.undo()

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "tembench", "profile", "--resume", str(path)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "7 of 7 cases measured over 2 ranks (resumed: 2 of 9 had records)" in proc.stderr
    done = load_run(path)
    assert done["status"] == "complete" and each_once(done) == done["grid"] and check_run(done) == []

    code, out, _ = run_cli(capsys, "profile", "tsn", "tsm", "--no-save", "--format", "json")
    fresh = {r["case"]: r for r in json.loads(out)}
    assert {r["case"]: r["macs"] for r in done["records"]} == {k: r["macs"] for k, r in fresh.items()}


def test_a_run_written_before_records_had_case_keys_resumes(capsys, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    interrupt_on_call(monkeypatch, cost_records, "cost_record", n=2)
    assert run_cli(capsys, "profile", "tsn", "--out", runs)[0] == 130
    monkeypatch.undo()
    path, run = the_run(runs)
    for k in ("grid", "missing"):
        run.pop(k)
    for r in run["records"]:
        r.pop("case")
    path.write_text(json.dumps(run))
    code, _, err = run_cli(capsys, "profile", "--resume", run["run_id"], "--out", runs)
    assert code == 0, err
    done = load_run(path)
    assert sorted(each_once(done)) == sorted(f"tsn/tsn-r{d}-t8-s224-v1x1" for d in (18, 34, 50, 101, 152))


def test_resuming_a_complete_run_measures_nothing(capsys, tmp_path):
    runs = tmp_path / "runs"
    assert run_cli(capsys, "profile", "tsn/tsn-r18", "--out", runs)[0] == 0
    path, run = the_run(runs)
    code, _, err = run_cli(capsys, "profile", "--resume", path)
    assert code == 0 and "0 of 0 cases measured (resumed: 1 of 1 had records)" in err
    assert load_run(path)["records"] == run["records"]


def _accuracy_run(d):
    w = RunWriter("accuracy", d, command=["tembench", "eval"])
    w.close()
    return w.run_id


def _corrupt_json(d):
    d.mkdir(parents=True, exist_ok=True)
    (d / "broken.json").write_text("{not json")
    return str(d / "broken.json")


def _malformed_record(d):
    w = RunWriter("cost", d, params={"patterns": ["tsn"], "frames": None, "size": None, "views": None,
                                     "convention": "fvcore"})
    w.data["records"].append({"variant": "tsn/tsn-r18", "gflops": "x"})
    w.close("interrupted")
    return w.run_id


def _still_running(d):
    w = RunWriter("cost", d, params={"patterns": ["tsn"], "frames": None, "size": None, "views": None,
                                     "convention": "fvcore"})
    assert w.data["process"] == this_process()  # this very process: alive
    return w.run_id


def _baseline(d):
    from tembench.results.store import write_run

    d.mkdir(parents=True, exist_ok=True)
    write_run(d / "cost.json", "cost", [])
    return str(d / "cost.json")


@pytest.mark.parametrize("make,extra,needle", [
    (_accuracy_run, [], "is an accuracy run (tembench eval or sanity); --resume takes a run of `tembench profile`"),
    (_corrupt_json, [], "cannot read run record"),
    (_malformed_record, [], "is corrupt (records[0]: missing 'frames'"),
    (_still_running, [], "the run is still running (pid"),
    (_baseline, [], "that `tembench profile` did not write"),
    (lambda d: "nosuchrun", [], "no run in"),
    (_still_running, ["--no-save"], "--resume adds to the run's own file: leave out --no-save"),
], ids=["accuracy", "corrupt-json", "malformed", "running", "baseline", "unknown", "no-save"])
def test_bad_resumes_are_one_line(capsys, tmp_path, make, extra, needle):
    ref = make(tmp_path / "runs")
    code, out, err = run_cli(capsys, "profile", "--resume", ref, "--out", tmp_path / "runs", *extra)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert out == ""


def test_options_that_differ_from_the_run_are_named(capsys, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    interrupt_on_call(monkeypatch, cost_records, "cost_record", n=2)
    assert run_cli(capsys, "profile", "tsn", "--frames", "8,16", "--out", runs)[0] == 130
    monkeypatch.undo()
    path, run = the_run(runs)
    code, _, err = run_cli(capsys, "profile", "tsn", "--frames", "16", "--latency", "--resume", run["run_id"],
                           "--out", runs)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--frames 16 (the run's: 8,16); --latency on (the run's: off)" in err
    # the same options as the run's are fine
    code, _, err = run_cli(capsys, "profile", "tsn", "--frames", "8,16", "--resume", run["run_id"], "--out", runs)
    assert code == 0, err
    assert len(each_once(load_run(path))) == 10
