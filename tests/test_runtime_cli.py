"""`tembench profile --latency/--memory/--trace`: records, traces, bad input, and runs stopped part-way."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli as run
import torch

from tembench.cli import main
from tembench.results.schema import check_run

# measures time, or kills and launches processes on a timetable: runs alone (see tests/conftest.py)
pytestmark = pytest.mark.serial

FAST = ["--size", "32", "--budget", "0.05", "--warmup", "0", "--threads", "1"]






def test_latency_and_memory_records_are_printed_and_saved(capsys, runs_dir):
    code, out, err = run(capsys, "profile", "tsm/tsm-r18", "--frames", "2,4", "--latency", "--memory",
                         "--format", "json", *FAST)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["frames"] for r in rows] == [2, 4] and all(r["status"] == "ok" for r in rows)
    assert all(r["temporal_ms"] > 0 and r["temporal_gflops"] == 0 and r["threads"] == 1 for r in rows)
    (path,) = runs_dir.glob("*.json")
    saved = json.loads(path.read_text())
    assert saved["kind"] == "runtime" and saved["status"] == "complete" and saved["records"] == rows
    assert check_run(saved) == []
    settings = saved["fingerprint"]["settings"]
    assert settings["device"] == "cpu" and settings["dtype"] == "fp32" and settings["torch_threads"] == 1
    assert {r["metric"] for r in saved["scaling"]} >= {"gflops", "latency_ms"}


def test_table_output_with_module_times_and_growth(capsys, runs_dir):
    code, out, _ = run(capsys, "profile", "tsm/tsm-r18", "--frames", "2,4", "--latency", "--modules", "--no-save",
                       *FAST)
    assert code == 0
    assert " ms " in out and "temp ms" in out
    assert "Growth with frames" in out and "Time per module" in out and "layer1.0.shift" in out
    assert not runs_dir.exists()


def test_cost_only_profile_is_unchanged(capsys, runs_dir):
    code, out, _ = run(capsys, "profile", "tsn/tsn-r18", "--format", "json")
    (rec,) = json.loads(out)
    assert code == 0 and "latency_ms" not in rec and rec["gflops"] > 0
    assert json.loads(next(runs_dir.glob("*.json")).read_text())["kind"] == "cost"


def test_a_simulated_oom_is_recorded_and_the_cli_run_goes_on(capsys, runs_dir, monkeypatch):
    from tembench.runtime import runner

    real = runner.make_forward

    def make_forward(call, x):
        if x.shape[2] == 2:  # the 2-frame case runs out of memory
            def forward():
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            return forward
        return real(call, x)

    monkeypatch.setattr(runner, "make_forward", make_forward)
    code, out, err = run(capsys, "profile", "tsn/tsn-r18", "--frames", "2,3", "--latency", "--format", "json", *FAST)
    assert code == 0
    assert [r["status"] for r in json.loads(out)] == ["oom", "ok"]
    assert "oom: tsn/tsn-r18 @2" in err
    saved = json.loads(next(runs_dir.glob("*.json")).read_text())
    assert saved["status"] == "complete" and [r["status"] for r in saved["records"]] == ["oom", "ok"]


def test_trace_opens_with_the_model_top_level_modules_as_named_ranges(capsys, runs_dir, tmp_path):
    code, out, err = run(capsys, "profile", "tsm/tsm-r18", "--frames", "2", "--trace", str(tmp_path / "tb"),
                         "--format", "json", *FAST)
    assert code == 0, err
    (rec,) = json.loads(out)
    path = Path(rec["trace"])
    # TensorBoard plugin layout: DIR/<run>/<worker>.pt.trace.json
    assert path.parent.parent == tmp_path / "tb" and path.name.endswith(".pt.trace.json")
    assert path.parent.name.startswith("tsm_tsm-r18-t2-s32")
    trace = json.loads(path.read_text())
    names = {e.get("name") for e in trace["traceEvents"]}
    from tembench.models.build import build_model

    top = [n for n, _ in build_model("tsm/tsm-r18", frames=2).named_children()]
    assert {f"module:{n}" for n in top} <= names
    assert "temporal:layer1.0.shift" in names
    assert any(e.get("ph") == "X" and e.get("name") == "module:layer1" for e in trace["traceEvents"])


@pytest.mark.parametrize("args, needle", [
    (["--latency", "--batch", "0"], "batch sizes must be positive integers"),
    (["--latency", "--dtype", "fp64"], "'fp64' is not one of 'fp32', 'fp16', 'bf16'"),
    (["--latency", "--device", "tpu"], "--device': must be cpu, cuda or cuda:N"),
    (["--latency", "--budget", "0"], "budget must be a positive number"),
    (["--latency", "--threads", "0"], "threads must be a positive integer"),
    (["--batch", "8"], "--batch only apply to runtime profiling"),
])
def test_bad_runtime_input_is_one_line_and_exit_2(capsys, runs_dir, args, needle):
    code, out, err = run(capsys, "profile", "tsn/tsn-r18", *args)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line(capsys, runs_dir):
    code, _, err = run(capsys, "profile", "tsn/tsn-r18", "--latency", "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_keeps_the_cases_measured_so_far(capsys, runs_dir, monkeypatch):
    import tembench.runtime as rt
    from conftest import interrupt_on_call

    interrupt_on_call(monkeypatch, rt, "measure_case")
    code, _, err = run(capsys, "profile", "tsn/tsn-r18", "--frames", "2,3,4,5", "--latency", *FAST)
    assert code == 130 and "2 of 4 cases measured" in err
    saved = json.loads(next(runs_dir.glob("*.json")).read_text())
    assert saved["status"] == "interrupted" and [r["frames"] for r in saved["records"]] == [2, 3]


def test_killing_a_profile_process_leaves_a_readable_record(tmp_path):
    """SIGTERM (what `kill` and job schedulers send) stops the run as Ctrl-C does."""
    runs = tmp_path / "runs"
    env = {**os.environ, "TEMBENCH_RUNS": str(runs), "OMP_NUM_THREADS": "1"}
    frames = ",".join(str(t) for t in range(2, 40))
    proc = subprocess.Popen([sys.executable, "-m", "tembench", "profile", "tsn/tsn-r18", "--frames", frames,
                             "--latency", *FAST], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            files = list(runs.glob("*.json")) if runs.exists() else []
            if files and len(json.loads(files[0].read_text())["records"]) >= 2:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    saved = json.loads(files[0].read_text())
    assert saved["status"] == "interrupted" and 2 <= len(saved["records"]) < 38
    assert [r["frames"] for r in saved["records"]] == list(range(2, 2 + len(saved["records"])))
    assert f"cases measured; kept in {files[0]}" in err
    from tembench.results import load

    df = load(runs)
    assert len(df) == len(saved["records"]) and set(df["run_status"]) == {"interrupted"}
