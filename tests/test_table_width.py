"""Tables for people: the default table of every command fits 100 columns without folding its headers,
`--columns all` (or json/csv) gives every field, and `--debug` works after the subcommand too."""
import json
from pathlib import Path

import pytest

from conftest import run_cli

from tembench.report.render import TABLE_WIDTH

BASELINES = Path(__file__).resolve().parent.parent / "results" / "baselines"
FAST = ("--budget", "0.2", "--warmup", "0")


def widest(out: str) -> int:
    return max((len(line.rstrip()) for line in out.splitlines()), default=0)


@pytest.fixture
def store(capsys, runs_dir):
    run_cli(capsys, "profile", "tsn/tsn-r18", "tam/tanet-r50", "atm/atm-vit-l14-336-merged2b")
    run_cli(capsys, "profile", "tsm/tsm-r18", "--frames", "2", "--size", "32", "--latency", "--memory", *FAST)
    return runs_dir


@pytest.mark.parametrize("args", [
    ("list",),
    ("profile", "tsn", "atm/atm-vit-l14-336-merged2b", "ila/ila-blocks10-12-vit-b32", "--no-save"),
    ("claims", "--paper", "tam"),
    ("data", "protocols"),
])
def test_default_tables_fit_100_columns(capsys, runs_dir, args):
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and widest(out) <= TABLE_WIDTH, out


def test_runtime_results_and_gate_tables_fit_100_columns(capsys, store):
    for args in (("results",), ("results", "--runs"), ("profile", "tsm/tsm-r18", "--frames", "2,3", "--size", "32",
                                                        "--latency", "--memory", "--no-save", *FAST),
                 ("compare", BASELINES / "cost.json", BASELINES / "cost.json"),
                 ("check", "--gates", "cost", "--baseline", BASELINES, "tsn/tsn-r18")):
        code, out, err = run_cli(capsys, *args)
        assert code == 0, err
        assert widest(out) <= TABLE_WIDTH, (args, out)


def test_columns_all_shows_every_field(capsys, store):
    code, out, _ = run_cli(capsys, "results", "--kind", "runtime", "--columns", "variant,latency_p90_ms,reps")
    assert code == 0 and "p90 ms" in out and "reps" in out
    code, out, _ = run_cli(capsys, "results", "--kind", "runtime", "--columns", "all", "--format", "csv")
    assert code == 0 and "latency_p90_ms" in out.splitlines()[0]
    code, out, _ = run_cli(capsys, "list", "tam/local-r50", "--columns", "variant,options")
    assert code == 0 and "branches=local" in out and "backbone" not in out
    code, _, err = run_cli(capsys, "list", "--columns", "variant,nope")
    assert code == 2 and "'nope'" in err


def test_json_keeps_every_field(capsys, store):
    code, out, _ = run_cli(capsys, "results", "--kind", "runtime", "--format", "json")
    (rec,) = json.loads(out)
    assert code == 0 and {"latency_p90_ms", "reps", "threads", "rss_increase_mib"} <= set(rec)


def test_debug_is_accepted_after_the_subcommand(capsys):
    code, _, err = run_cli(capsys, "profile", "tsn/tsn-r1", "--debug")
    assert code == 2 and "Traceback" in err and "unknown variant 'tsn/tsn-r1'" in err
    code, _, err = run_cli(capsys, "profile", "tsn/tsn-r1")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_plurals(capsys, runs_dir):
    code, out, err = run_cli(capsys, "profile", "tsn/tsn-r18")
    assert code == 0 and "1 case" in out and "1 cases" not in out + err
    assert "1 of 1 case measured" in err and "records" not in err


def test_accuracy_tables_fit_100_columns(capsys, runs_dir, tmp_path):
    from tembench.data.synth import write_synthetic

    data = tmp_path / "data"
    write_synthetic("ssv1", data, train_per_class=0, val_per_class=1, size=(32, 24), frames=(10, 14))
    code, out, err = run_cli(capsys, "eval", "tsn/tsn-r18", "--data", data, "--size", "32", "--views", "1x1")
    assert code == 0, err
    assert widest(out) <= TABLE_WIDTH, out
    (run_file,) = runs_dir.glob("*.json")
    for args in (("metrics", run_file), ("data", "info", data)):
        code, out, err = run_cli(capsys, *args)
        assert code == 0 and widest(out) <= TABLE_WIDTH, (args, out, err)
