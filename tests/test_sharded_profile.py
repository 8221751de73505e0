"""`tembench profile` sharded over the ranks of a torchrun launch: the merged run is the 1-process run.

The torchrun tests start two CPU ranks (gloo); the others drive the same sharding code with two ranks in
two threads of this process over an in-memory store, which is quicker and lets a rank fail on purpose."""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import run_cli

from tembench.errors import UsageError
from tembench.results.driver import run_cases
from tembench.results.schema import check_run
from tembench.results.store import load_run
from tembench.runtime import shard

# measures time, or kills and launches processes on a timetable: runs alone (see tests/conftest.py)
pytestmark = pytest.mark.serial

COST = ["tsn", "tsm"]
LATENCY = ["tsn/tsn-r18", "tsm/tsm-r18", "--frames", "2,4", "--size", "32", "--latency", "--budget", "1",
           "--warmup", "0"]
COST_FIELDS = ("variant", "frames", "input_size", "views", "gflops", "gflops_total", "params", "temporal_gflops",
               "temporal_params", "status")


def torchrun(args, out, nproc=2, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TEMBENCH_RUNS": str(out.parent / "unused")}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                           str(nproc), "-m", "tembench", "profile", *args, "--out", str(out), "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=timeout)


def one_run(directory):
    (path,) = directory.glob("*.json")
    return load_run(path)


def by_case(records):
    cases = [r["case"] for r in records]
    assert len(cases) == len(set(cases)), "a case measured twice"
    return {r["case"]: r for r in records}


@pytest.mark.parametrize("args", [COST, LATENCY], ids=["cost", "latency"])
def test_two_ranks_measure_exactly_the_cases_of_one_process(args, capsys, tmp_path):
    code, out, err = run_cli(capsys, "profile", *args, "--out", tmp_path / "one", "--format", "json")
    assert code == 0, err
    one = one_run(tmp_path / "one")

    proc = torchrun(args, tmp_path / "two")
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = one_run(tmp_path / "two")
    assert two["status"] == "complete" and check_run(two) == []
    assert proc.stdout.count('"variant"') == len(two["records"])  # rank 0 prints the merged run, rank 1 nothing
    assert proc.stderr.count("cases measured") == 1

    a, b = by_case(one["records"]), by_case(two["records"])
    assert list(a) == list(b) == one["grid"] == two["grid"]  # the same cases, each once, in grid order
    for k in a:
        assert {f: a[k][f] for f in COST_FIELDS if f in a[k]} == {f: b[k][f] for f in COST_FIELDS if f in b[k]}, k
    assert {r["rank"] for r in two["records"]} == {0, 1}  # both ranks measured
    assert all(r["host"] and r["hardware_hash"] == two["fingerprint"]["hardware_hash"] for r in two["records"])
    workers = two["workers"]
    assert [w["rank"] for w in workers] == [0, 1] and all(w["status"] == "complete" for w in workers)
    assert all(w["fingerprint"]["hardware_hash"] == w["hardware_hash"] for w in workers)
    if os.cpu_count() >= 2 and hasattr(os, "sched_setaffinity"):  # CPU ranks on disjoint cores
        assert not set(workers[0]["cores"]) & set(workers[1]["cores"])
        assert all(w["fingerprint"]["settings"]["cpu_affinity"] == len(w["cores"]) for w in workers)

    # read back as any other run
    code, out, _ = run_cli(capsys, "results", "--dir", tmp_path / "two", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and sorted(r["case"] for r in rows) == sorted(a)
    code, out, _ = run_cli(capsys, "results", "--dir", tmp_path / "two", "--hardware", "current", "--format", "json")
    assert code == 0 and len(json.loads(out)) == len(a)
    code, out, err = run_cli(capsys, "compare", next((tmp_path / "one").glob("*.json")),
                             next((tmp_path / "two").glob("*.json")), "--format", "json")
    assert code in (0, 1) and "error" not in err, err


def test_more_ranks_than_cases_is_one_line_from_rank_0(tmp_path):
    proc = torchrun(["tsn/tsn-r18"], tmp_path / "runs")
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: 2 ranks for 1 case: start at most 1 process (--nproc-per-node x --nnodes)"]
    assert not (tmp_path / "runs").exists()  # nothing written


# ---- two ranks in two threads of this process ---------------------------------------------------------

def two_ranks(tmp_path, cases, measure, world=2, **kw):
    """Run `run_cases` as ``world`` ranks in threads sharing an in-memory store; the results by rank."""
    from torch.distributed import HashStore

    store = HashStore()
    results, errors = [None] * world, [None] * world

    def rank(r):
        launch = shard.Launch(rank=r, world=world, local_rank=r, local_world=world, store=store, prefix="t",
                              host="here")
        try:
            results[r] = run_cases("cost", cases, lambda c: measure(r, c), lambda c, why: dict(rec(c), status="error",
                                                                                            error=why),
                                   key=lambda c: f"case-{c}", launch=launch, out=tmp_path, progress=False, **kw)
        except BaseException as e:  # noqa: BLE001
            errors[r] = e

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, errors


def rec(c):
    return {"variant": f"v/{c}", "frames": 8, "input_size": 32, "views": "8x1x1", "convention": "fvcore",
            "gflops": float(c), "gflops_total": float(c), "params": c, "temporal_gflops": None,
            "temporal_params": None, "status": "ok"}


def test_units_go_largest_first_and_each_once(tmp_path):
    seen = []
    results, errors = two_ranks(tmp_path, list(range(10)), lambda r, c: seen.append((r, c)) or rec(c),
                                weight=lambda c: c)
    assert errors == [None, None]
    main = results[0]
    assert main.stopped is None and main.missing == [] and main.measured == 10
    assert sorted(c for _, c in seen) == list(range(10))  # each case once
    assert [c for _, c in seen][:2] in ([9, 8], [8, 9])  # the largest counted cost first
    run = load_run(main.path)
    assert [r["case"] for r in run["records"]] == [f"case-{c}" for c in range(10)] == run["grid"]
    assert run["status"] == "complete" and {r["rank"] for r in run["records"]} <= {0, 1}
    assert results[1].rank == 1 and results[1].path == main.path and len(results[1].records) < 10


def test_a_rank_that_dies_leaves_the_others_to_finish_and_names_the_missing_case(tmp_path):
    def measure(r, c):
        if r == 1:
            raise SystemExit("rank 1 dies")  # not a case's failure: the process ends
        time.sleep(0.2)  # rank 1 gets a case before rank 0 has claimed them all
        return rec(c)

    results, errors = two_ranks(tmp_path, list(range(6)), measure)
    assert isinstance(errors[1], SystemExit) and errors[0] is None
    main = results[0]
    assert main.stopped == "incomplete" and main.measured == 5 and len(main.missing) == 1
    assert f"rank 1 on {socket.gethostname()} stopped (failed) while measuring {main.missing[0]}" in main.note
    assert f"1 case missing: complete them with `tembench profile --resume {main.run_id}`" in main.note
    run = load_run(main.path)
    assert run["status"] == "failed" and run["missing"] == main.missing and check_run(run) == []
    assert [w["status"] for w in run["workers"]] == ["complete", "failed"]
    assert run["workers"][1]["in_flight"] == main.missing[0]


def test_more_ranks_than_cases_is_refused_before_anything_is_written(tmp_path):
    results, errors = two_ranks(tmp_path / "runs", [1, 2], lambda r, c: rec(c), world=3)
    assert isinstance(errors[0], UsageError) and "3 ranks for 2 cases" in str(errors[0])
    assert all(isinstance(e, shard.FollowedError) and str(e) == str(errors[0]) for e in errors[1:])
    assert not (tmp_path / "runs").exists()


def test_rank_devices_and_cores():
    single = shard.Launch()
    assert shard.rank_device("cuda:1", single) == "cuda:1" and shard.pin_cores(single) is None
    two = shard.Launch(rank=1, world=2, local_rank=1, local_world=2, host="here")
    with pytest.raises(UsageError, match="give --device cuda, and each rank measures on cuda:LOCAL_RANK"):
        shard.rank_device("cuda:1", two)
    assert shard.rank_device("cpu", two) == "cpu"
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="2 ranks on here but 0 CUDA device"):
            shard.rank_device("cuda", two)
    assert shard.largest_first([1.0, 5.0, 3.0, 5.0]) == [1, 3, 2, 0]


def test_cpu_ranks_split_the_node_cores(monkeypatch):
    pinned = {}
    monkeypatch.setattr(shard, "_node_cores", None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7}, raising=False)
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cores: pinned.setdefault("cores", list(cores)),
                        raising=False)
    launch = shard.Launch(rank=5, world=6, local_rank=1, local_world=3, host="here")
    assert shard.pin_cores(launch) == [2, 3, 4] == pinned["cores"]  # 8 cores over 3 ranks: 2, 3, 3
    with pytest.raises(UsageError, match="--threads 4, but each of the 3 ranks on here has 3 of its 8 cores"):
        shard.pin_cores(launch, threads=4)
    many = shard.Launch(rank=0, world=9, local_rank=0, local_world=9, host="here")
    with pytest.raises(UsageError, match="9 ranks on here share 8 cores"):
        shard.pin_cores(many)


# ---- the prepared GPU check ------------------------------------------------------------------------------

GPU_CHECK = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.sh"


def test_the_gpu_check_script_is_sound_shell():
    assert subprocess.run(["bash", "-n", str(GPU_CHECK)], capture_output=True).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install -y shellcheck)")
    lint = subprocess.run(["shellcheck", str(GPU_CHECK)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi: run the check itself")
@pytest.mark.parametrize("fake_nvidia_smi", [False, True], ids=["no-nvidia-smi", "cpu-only-torch"])
def test_the_gpu_check_exits_at_once_on_a_cpu_machine(tmp_path, fake_nvidia_smi):
    import torch

    if fake_nvidia_smi and torch.cuda.is_available():
        pytest.skip("torch sees a CUDA GPU here")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if fake_nvidia_smi:  # a driver but a CPU-only torch: torch itself is asked
        (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA H200, 550.00'\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": sys.executable}
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(GPU_CHECK)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("gpu_check.sh needs ") and "GPU" in line and "nothing checked" in line
    assert time.monotonic() - t0 < 20
