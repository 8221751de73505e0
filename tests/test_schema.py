"""One record schema, checked when a record is written; one cost-record shape; baselines in the run envelope."""
import json
from pathlib import Path

import pytest

from tembench import check
from tembench.errors import ResultsWriteError
from tembench.results.driver import run_cases
from tembench.errors import RecordError
from tembench.results.schema import RUN_FIELDS, check_record, check_run
from tembench.results.store import RunWriter, load_run, write_run

BASELINES = Path(__file__).resolve().parent.parent / "results" / "baselines"
GOOD_COST = {"variant": "tsm/tsm-r50", "frames": 8, "input_size": 224, "classes": 400, "views": "8x1x1",
             "convention": "fvcore", "gflops": 32.9, "gflops_total": 32.9, "params": 24327632,
             "temporal_gflops": 0.0, "temporal_params": 0, "macs": 32_900_000_000, "uncounted_ops": "", "status": "ok"}


@pytest.mark.parametrize("change, needle", [
    ({"gflops": "fast"}, "refused a malformed cost record of tsm/tsm-r50: 'gflops' is str, expected int or float"),
    ({"frames": None}, "cost record of tsm/tsm-r50: 'frames' is NoneType, expected int"),
    ({"status": "maybe"}, "cost record of tsm/tsm-r50: status 'maybe' is not one of ok, oom, error, skipped"),
    ({"status": "error"}, "cost record of tsm/tsm-r50: a error record needs an 'error' message"),
    ({"params": None, "gflops": None}, "'gflops' is NoneType, expected int or float (and 1 more)"),
])
def test_the_writer_refuses_a_malformed_record_with_one_line(tmp_path, change, needle):
    w = RunWriter("cost", tmp_path)
    w.add(dict(GOOD_COST))
    with pytest.raises(RecordError) as e:
        w.add({**GOOD_COST, **change})
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ResultsWriteError)  # a sweep stops on it as on any write error, keeping the rest
    assert len(load_run(w.path)["records"]) == 1 == w.written  # refused: not in the file


def test_a_missing_field_is_named(tmp_path):
    rec = dict(GOOD_COST)
    del rec["views"]
    with pytest.raises(RecordError, match=r"^refused a malformed cost record of tsm/tsm-r50: missing 'views'$"):
        RunWriter("cost", tmp_path).add(rec)
    with pytest.raises(RecordError, match=r"malformed runtime record of tsm/tsm-r50: missing 'batch'"):
        RunWriter("runtime", tmp_path).add(GOOD_COST)
    with pytest.raises(RecordError, match="malformed accuracy record: missing 'variant'"):
        RunWriter("accuracy", tmp_path).add({"top1": 50.0})


def test_an_unknown_run_kind_is_refused(tmp_path):
    with pytest.raises(RecordError, match="unknown run kind 'profile'; one of cost, runtime, accuracy, latency"):
        RunWriter("profile", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_that_measures_a_malformed_record_stops_with_the_error(tmp_path):
    cases = ["a", "b", "c"]
    result = run_cases("cost", cases, measure=lambda c: {**GOOD_COST, "gflops": "x"} if c == "b" else dict(GOOD_COST),
                       failed_record=lambda c, why: {}, out=tmp_path, progress=False)
    assert result.stopped == "write-error" and result.written == 1
    assert result.error.startswith("refused a malformed cost record of tsm/tsm-r50: 'gflops' is str")
    assert load_run(result.path)["status"] == "failed"


def test_every_cost_writer_has_the_one_cost_shape():
    """`tembench profile` (cost_record, and a case that failed) and `tembench check --accept` (cost_record
    with per-module counts) write records of one shape."""
    from tembench.cost.records import cost_record, failed_cost_record
    from tembench.registry import get_variant

    spec = get_variant("tsn/tsn-r18")
    profiled = cost_record(spec, 8, 112, 1, 1, "fvcore")
    (baseline,) = check.cost_records(["tsn/tsn-r18"])
    failed = failed_cost_record((spec, 8, 112, 1, 1), "fvcore", "RuntimeError: no")
    assert check_record(profiled, "cost") == [] and check_record(failed, "cost") == []
    assert check_record(baseline, "cost") == []
    assert list(baseline) == [*cost_record(spec, None, None, 1, 1, "fvcore"), "modules"]


def test_accepted_baselines_are_run_files_in_the_envelope_and_compare(tmp_path):
    verdicts = check.check_cost(tmp_path, accept=True, patterns=["tsn/tsn-r18", "tsm/tsm-r18"])
    assert {v.status for v in verdicts} == {"pass"}
    data = json.loads((tmp_path / "cost.json").read_text())
    assert set(RUN_FIELDS) <= set(data) and data["kind"] == "cost" and data["status"] == "complete"
    assert check_run(data) == []
    assert {v.status for v in check.check_cost(tmp_path, patterns=["tsn/tsn-r18"])} == {"pass"}


def test_a_malformed_baseline_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setattr(check, "cost_records", lambda patterns=None, progress=None: [{"variant": "tsn/tsn-r18"}])
    with pytest.raises(RecordError, match="malformed cost record of tsn/tsn-r18: missing 'frames'"):
        check.check_cost(tmp_path, accept=True)
    assert not (tmp_path / "cost.json").exists()
    with pytest.raises(RecordError, match="unknown run kind"):
        write_run(tmp_path / "x.json", "nope", [])


@pytest.mark.parametrize("name", ["cost.json", "latency.json", "motion.json"])
def test_committed_baselines_load_as_they_are(name):
    """The committed baselines load as they are (latency and motion predate the envelope: no run id) and
    every record conforms to its kind's schema."""
    data = check.load_baseline(BASELINES, name)
    assert data["records"]
    assert all(check_record(r, data["kind"]) == [] for r in data["records"])


def test_old_and_new_cost_baselines_compare(tmp_path):
    """A baseline in the old cost shape (before the one cost record: variant, frames, input_size, classes,
    macs, params, modules) against one in the new: the gate compares macs and params."""
    new = check.cost_records(["tsm/tsm-r18"])
    old_keys = ("variant", "frames", "input_size", "classes", "macs", "params", "modules")
    old = [{k: r[k] for k in old_keys} for r in new]
    write_run(tmp_path / "new.json", "cost", new)
    (tmp_path / "old.json").write_text(json.dumps({"schema_version": 1, "kind": "cost", "fingerprint": {},
                                                   "status": "complete", "records": old}))
    verdicts = check.compare_files(tmp_path / "old.json", tmp_path / "new.json")
    assert [(v.metric, v.status) for v in verdicts] == [("macs", "pass"), ("params", "pass")]
