"""`tembench check` against the committed baselines, and injected regressions caught by each gate."""
import json
from pathlib import Path

import pytest

from tembench import check, gates
from tembench.cli import main

# measures time, or kills and launches processes on a timetable: runs alone (see tests/conftest.py)
pytestmark = pytest.mark.serial

BASELINES = Path(__file__).resolve().parent.parent / "results" / "baselines"


def test_committed_baselines_exist_and_cover_the_registry():
    from tembench.registry import registry

    cost = json.loads((BASELINES / "cost.json").read_text())
    # every variant, the optional families too (the baseline is accepted with tembench[hf] installed, as CI runs)
    assert {r["variant"] for r in cost["records"]} == set(registry().variants)
    motion = json.loads((BASELINES / "motion.json").read_text())
    by_id = {r["variant"]: r for r in motion["records"]}
    assert abs(by_id["motion/tsn"]["top1"] - 50) <= 10  # order-blind: at chance
    for vid in ("motion/tsm", "motion/tanet", "motion/atm-r"):
        assert by_id[vid]["top1"] >= 90, vid
    latency = json.loads((BASELINES / "latency.json").read_text())
    assert latency["fingerprint"]["hardware_hash"] and all(r["relative"] for r in latency["records"])


def test_cost_gate_passes_on_unchanged_code(tmp_path):
    verdicts = check.check_cost(BASELINES, patterns=["tam/*"])
    assert verdicts and all(v.status == "pass" for v in verdicts)


def test_latency_on_another_machine_is_not_comparable(tmp_path, monkeypatch):
    import shutil

    shutil.copy(BASELINES / "latency.json", tmp_path / "latency.json")
    monkeypatch.setattr("tembench.env.hardware_hash", lambda hw=None: "another-machine")
    verdicts = check.check_latency(tmp_path)
    assert verdicts and all(v.status == "not comparable" and not v.failed for v in verdicts)


def test_sleep_in_a_forward_fails_the_latency_gate(tmp_path, monkeypatch):
    """Injected regression: TSM's shift sleeps 5 ms; measured against a baseline taken just before."""
    import time

    from tembench.models.temporal import tsm

    cases = (("motion/tsm", 8, 32),)
    base = check.latency_records(cases, budget_s=1.5)
    real = tsm.TemporalShift.forward

    def slow(self, x):
        time.sleep(0.005)
        return real(self, x)

    monkeypatch.setattr(tsm.TemporalShift, "forward", slow)
    cur = check.latency_records(cases, budget_s=1.5)
    v = gates.latency_gate("motion/tsm", base[0]["relative"], cur[0]["relative"], same_hardware=True)
    assert v.status == "regression", v.detail


def test_identity_shift_drops_tsm_to_chance_and_fails_the_accuracy_gate(monkeypatch, tmp_path):
    """Injected regression: the temporal shift made the identity; TSM becomes order-blind."""
    from tembench.models.temporal import tsm

    monkeypatch.setattr(tsm, "temporal_shift", lambda x, frames, fold_div=8: x)
    verdicts = check.check_accuracy(BASELINES, patterns=["motion/tsm"])
    statuses = {v.metric: v for v in verdicts}
    assert statuses["top1"].status == "regression", statuses["top1"].detail
    assert statuses["top1"].current <= 60


def test_check_cli_exit_codes(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["check", "--gates", "nope", "--baseline", str(tmp_path)])
    assert e.value.code == 2 and "unknown gate" in capsys.readouterr().err
    base = {"schema_version": 1, "kind": "cost", "fingerprint": {}, "status": "complete",
            "records": [{"variant": "tsn/tsn-r18", "frames": 8, "input_size": 224, "macs": 1, "params": 1}]}
    (tmp_path / "cost.json").write_text(json.dumps(base))
    with pytest.raises(SystemExit) as e:
        main(["check", "tsn/tsn-r18", "--gates", "cost", "--baseline", str(tmp_path), "--format", "markdown"])
    out = capsys.readouterr().out
    assert e.value.code == 1 and "regression" in out and "tsn/tsn-r18" in out
