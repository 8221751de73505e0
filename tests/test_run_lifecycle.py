"""An honest run lifecycle: runs record their process, a killed run reads back as stale (never running),
SIGTERM stops every measuring command as Ctrl-C does, a full disk names the path and loses nothing that
was printed, and one failing case never ends a sweep."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli

from tembench.results import store

# measures time, or kills and launches processes on a timetable: runs alone (see tests/conftest.py)
pytestmark = pytest.mark.serial


def _spawn(args, runs, **env):
    # PYTHONFAULTHANDLER: a child that does not stop is sent SIGABRT by _stopped, and prints where it was
    env = {**os.environ, "TEMBENCH_RUNS": str(runs), "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1", **env}
    return subprocess.Popen([sys.executable, "-m", "tembench", *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _stopped(proc, timeout: float = 60) -> str:
    """The child's stderr once it has exited; if it is still running after ``timeout`` s, fail with the
    Python stack of each of its threads."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            err = proc.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            err = proc.communicate()[1]
        raise AssertionError(f"still running {timeout:g} s after SIGTERM; where it was:\n{err[-6000:]}") from None


def _wait_for_records(proc, runs: Path, n: int, timeout: float = 180) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = list(runs.glob("*.json")) if runs.exists() else []
        if files:
            try:
                if len(json.loads(files[0].read_text())["records"]) >= n:
                    return files[0]
            except (json.JSONDecodeError, KeyError):
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no run file with {n} records within {timeout} s")


def test_a_run_file_records_its_process(capsys, runs_dir):
    run_cli(capsys, "profile", "tsn/tsn-r18")
    saved = json.loads(next(runs_dir.glob("*.json")).read_text())
    assert saved["process"]["pid"] == os.getpid() and saved["process"]["host"]


def test_sigkill_leaves_a_run_that_reads_back_as_stale(capsys, tmp_path):
    runs = tmp_path / "runs"
    frames = ",".join(str(t) for t in range(2, 40))
    proc = _spawn(["profile", "tsn/tsn-r18", "--frames", frames, "--size", "32", "--latency", "--budget", "0.3",
                   "--warmup", "0"], runs)
    path = _wait_for_records(proc, runs, 1)
    proc.kill()  # SIGKILL: no handler runs, the file still says "running"
    proc.communicate(timeout=60)
    assert json.loads(path.read_text())["status"] == "running"
    code, out, _ = run_cli(capsys, "results", "--runs", "--dir", runs, "--format", "json")
    (row,) = json.loads(out)
    assert code == 0 and row["run_status"] == "stale"
    code, out, _ = run_cli(capsys, "results", "--dir", runs, "--run-status", "stale", "--format", "json")
    assert code == 0 and json.loads(out) and all(r["run_status"] == "stale" for r in json.loads(out))


def test_a_live_run_is_running_and_a_reused_pid_is_not(tmp_path):
    me = store.this_process()
    assert store.effective_status({"status": "running", "process": me}) == "running"
    other_start = {**me, "start": (me["start"] or 0) + 1} if me["start"] is not None else None
    if other_start:  # same pid, another start time: the writer is gone and the pid was reused
        assert store.effective_status({"status": "running", "process": other_start}) == "stale"
    elsewhere = {**me, "host": "another-host"}
    assert store.effective_status({"status": "running", "process": elsewhere}) == "running"  # cannot tell


def test_sigterm_stops_a_cost_profile_and_keeps_what_it_counted(tmp_path):
    runs = tmp_path / "runs"
    proc = _spawn(["profile", "--frames", "8,16,32"], runs)
    path = _wait_for_records(proc, runs, 3)
    proc.send_signal(signal.SIGTERM)
    err = _stopped(proc)
    assert proc.returncode == 130, err
    saved = json.loads(path.read_text())
    assert saved["status"] == "interrupted" and 3 <= len(saved["records"]) < len(saved["grid"])
    assert f"kept in {path}" in err


SWALLOWING_MODEL = """
import os, signal, time
import torch
from torch import nn


class Swallows(nn.Module):
    \"\"\"A network whose forward, at 16 frames, gets a SIGTERM inside code that {how}.\"\"\"

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 5)

    def forward(self, x):  # (B, C, T, H, W)
        if x.shape[2] == 16:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(200):  # the handler runs in here
                    time.sleep(0.01)
            except BaseException{then}
        return self.fc(x.mean(dim=(2, 3, 4)))


def make():
    return Swallows()
"""
HOW = {"swallowed": ("swallows every exception", ":\n                pass"),
       "turned into an error": ("turns every exception into its own",
                                " as e:\n                raise RuntimeError('my model failed') from e")}


@pytest.mark.parametrize("how", sorted(HOW))
def test_a_stop_that_the_measured_code_swallows_still_stops_the_sweep(tmp_path, how):
    """SIGTERM inside a model that swallows KeyboardInterrupt (a bare except) or turns it into its own
    error: the sweep stops after that case, which is left missing (neither a result nor a failure)."""
    what, then = HOW[how]
    (tmp_path / "swallowing.py").write_text(SWALLOWING_MODEL.format(how=what, then=then))
    runs = tmp_path / "runs"
    proc = _spawn(["profile", "swallowing:make", "--frames", "8,16,32,64"], runs, PYTHONPATH=str(tmp_path))
    err = _stopped(proc, 120)
    assert proc.returncode == 130, err
    (path,) = runs.glob("*.json")
    saved = json.loads(path.read_text())
    assert saved["status"] == "interrupted", err
    assert [r["frames"] for r in saved["records"]] == [8] and all(r["status"] == "ok" for r in saved["records"])
    assert len(saved["missing"]) == 3, saved["missing"]


def test_sigterm_stops_an_eval_and_keeps_its_logits(tmp_path):
    from tembench.data.synth import write_synthetic

    data = tmp_path / "data"
    write_synthetic("ssv1", data, train_per_class=0, val_per_class=12, size=(32, 24), frames=(10, 14))
    runs = tmp_path / "runs"
    proc = _spawn(["eval", "tsn/tsn-r18", "--data", data, "--size", "32", "--views", "1x1", "--save-every", "1",
                   "--out", runs], runs)
    deadline = time.monotonic() + 180
    while not list((runs / "partial").glob("*.npz")) if (runs / "partial").exists() else True:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    err = _stopped(proc)
    assert proc.returncode == 130, err
    (run_file,) = runs.glob("*.json")
    assert json.loads(run_file.read_text())["status"] == "interrupted"


def test_an_injected_write_error_names_the_path_and_prints_every_measured_case(capsys, runs_dir, monkeypatch):
    real = store.atomic_write_json
    calls = {"n": 0}

    def disk_fills(path, data):
        calls["n"] += 1
        if calls["n"] >= 3:  # the header and the first record fit; the second record does not
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(store, "atomic_write_json", disk_fills)
    code, out, err = run_cli(capsys, "profile", "tsn", "--format", "json")
    assert code == 1
    (path,) = runs_dir.glob("*.json")
    assert f"cannot write the run file {path}: No space left on device" in err
    assert f"2 of 5 cases measured; 1 kept in {path} (1 not written: printed above)" in err
    printed = json.loads(out)
    saved = json.loads(path.read_text())
    assert [r["variant"] for r in printed] == ["tsn/tsn-r18", "tsn/tsn-r34"]  # nothing measured is lost
    assert [r["variant"] for r in saved["records"]] == ["tsn/tsn-r18"]


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not permitted'}); "
                    "the injected-OSError test covers a full disk")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_full_tmpfs_stops_the_sweep_with_the_path_and_loses_nothing_printed(tiny_tmpfs, tmp_path):
    runs = tiny_tmpfs / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "tembench", "profile", "tam", "--out", str(runs), "--format", "json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    (path,) = runs.glob("*.json")
    assert f"cannot write the run file {path}" in done.stderr and "No space left on device" in done.stderr
    assert "cases measured" in done.stderr and "Traceback" not in done.stderr
    printed = [r["variant"] for r in json.loads(done.stdout)]
    saved = [r["variant"] for r in json.loads(path.read_text())["records"]]
    assert printed[:len(saved)] == saved and len(printed) > len(saved)


def test_a_failing_case_is_recorded_and_the_sweep_goes_on(capsys, runs_dir, monkeypatch):
    import tembench.cost.records as cost_records

    real = cost_records.cost_record

    def breaks_on_tsn_r34(spec, *a, **k):
        if spec.id == "tsn/tsn-r34":
            raise RuntimeError("Calculated padded input size per channel: (2 x 1 x 1). Kernel size: (1 x 2 x 2).")
        return real(spec, *a, **k)

    monkeypatch.setattr(cost_records, "cost_record", breaks_on_tsn_r34)
    code, out, err = run_cli(capsys, "profile", "tsn", "--format", "json")
    assert code == 1
    rows = json.loads(out)
    assert [r["status"] for r in rows] == ["ok", "error", "ok", "ok", "ok"]
    assert rows[1]["error"].startswith("RuntimeError: Calculated padded input size")
    assert "5 of 5 cases measured, 1 failed" in err and "error: tsn/tsn-r34 @8: RuntimeError" in err
    saved = json.loads(next(runs_dir.glob("*.json")).read_text())
    assert saved["status"] == "complete" and len(saved["records"]) == 5


def test_a_runtime_case_that_fails_outside_its_passes_is_recorded_too(capsys, runs_dir, monkeypatch):
    import tembench.runtime as rt

    real = rt.measure_case

    def breaks_on_three(case, *a, **k):
        if case.t == 3:
            raise ValueError("boom")
        return real(case, *a, **k)

    monkeypatch.setattr(rt, "measure_case", breaks_on_three)
    code, out, err = run_cli(capsys, "profile", "tsn/tsn-r18", "--frames", "2,3,4", "--size", "32", "--latency",
                             "--budget", "0.2", "--warmup", "0", "--format", "json")
    assert code == 1 and [r["status"] for r in json.loads(out)] == ["ok", "error", "ok"]
    assert "3 of 3 cases measured, 1 failed" in err
