"""A 2-process torchrun (gloo, CPU) evaluation gives exactly the logits and metrics of the 1-process run."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tembench.cli import main
from tembench.data.synth import write_synthetic

# measures time, or kills and launches processes on a timetable: runs alone (see tests/conftest.py)
pytestmark = pytest.mark.serial


@pytest.fixture(autouse=True, scope="module")
def one_thread():  # torchrun starts its workers with OMP_NUM_THREADS=1; the reference run does the same
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_two_process_torchrun_equals_one_process(tmp_path, capsys):
    data = tmp_path / "ssv1"
    write_synthetic("ssv1", data, train_per_class=0, val_per_class=1, size=(32, 24), frames=(10, 14))
    args = ["eval", "tsm/tsm-r18", "--data", str(data), "--protocol", "tsm-2x3", "--views", "4x3x2", "--size", "32",
            "--format", "json"]
    with pytest.raises(SystemExit) as e:
        main(args + ["--out", str(tmp_path / "one")])
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    one = json.loads(out)[0]

    env = {**os.environ, "OMP_NUM_THREADS": "1", "TEMBENCH_RUNS": str(tmp_path / "unused")}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "tembench", *args, "--out", str(tmp_path / "two")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "two").glob("*.json"))
    assert len(runs) == 1  # only rank 0 writes
    two = json.loads(runs[0].read_text())["records"][0]
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert proc.stdout.count('"variant"') == 1  # only rank 0 prints

    a = np.load(tmp_path / "one" / one["logits_file"])
    b = np.load(tmp_path / "two" / two["logits_file"])
    assert list(a["ids"]) == list(b["ids"]) and len(set(b["ids"])) == 8  # none lost, none counted twice
    assert a["logits"].shape == (8, 6, 8)
    assert np.array_equal(a["logits"], b["logits"])
    for k in ("top1", "top5", "mean_class_acc", "evaluated", "failed"):
        assert one[k] == two[k], k
    assert one["per_class"] == two["per_class"]
