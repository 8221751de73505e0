"""Values are validated where they are given: a one-line error and exit 2 before anything is measured,
never a silent run of something else or an empty "No results."."""
import pytest

from conftest import run_cli


@pytest.mark.parametrize("args, needle", [
    (("profile", "tsm/tsm-r50", "--frames", "8", "--views", "16x3x10"), "give different frame counts"),
    (("profile", "tam/tanet-r50-en", "--frames", "4"), "is an ensemble whose members fix their frame counts"),
    (("profile", "atm/atm-vit-b16", "--size", "100"), "multiple of its patch size 16"),
    (("profile", "uniformer/uniformer-s", "--size", "8", "--frames", "4"), "at least 32"),
    (("results", "--kind", "foo"), "--kind must be one of cost, runtime, accuracy"),
    (("results", "--status", "bogus"), "--status must be one of ok, oom, error, skipped"),
    (("results", "--run-status", "nope"), "--run-status must be one of"),
    (("claims", "--table", "TAM Table 99"), "no claims from table 'TAM Table 99'"),
    (("claims", "--paper", "nope"), "no claims from paper 'nope'"),
])
def test_bad_values_exit_2_with_one_line_naming_the_choices(capsys, runs_dir, args, needle):
    runs_dir.mkdir(parents=True, exist_ok=True)
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(runs_dir.glob("*.json"))  # nothing started


def test_frames_given_once_through_views_is_fine(capsys, runs_dir):
    code, out, _ = run_cli(capsys, "profile", "tsm/tsm-r50", "--frames", "16", "--views", "16x3x10", "--format", "json")
    assert code == 0 and '"views": "16x3x10"' in out


def test_a_family_sweep_with_frames_leaves_its_ensembles_out_and_says_so(capsys, runs_dir):
    code, out, err = run_cli(capsys, "profile", "tam/tanet-*", "--frames", "8", "--format", "json")
    assert code == 0 and "tam/tanet-r50-en" not in out
    assert "note: left out 1 ensemble" in err and "tam/tanet-r50-en" in err


def test_the_python_api_validates_too():
    import tembench
    from tembench.errors import UsageError

    with pytest.raises(UsageError, match="multiple of its patch size 32"):
        tembench.profile(["ila/ila-vit-b32"], size=100)


@pytest.mark.parametrize("options, needle", [
    ('order = "sideways"', "key 'options.order': 'sideways' is not one of 'local-first', 'global-first'"),
    ('alpha = "two"', "key 'options.alpha': expected an integer, got 'two'"),
    ('local_bn = 1', "key 'options.local_bn': expected a bool, got 1"),
    ('stages = [1, 7]', "key 'options.stages': 7 is not one of 1, 2, 3, 4"),
])
def test_registry_option_values_are_checked_at_load(capsys, tmp_path, monkeypatch, options, needle):
    (tmp_path / "mine.toml").write_text(f"""
[paper]
key = "mine"

[[variant]]
id = "mine/tanet-odd"
arch = "resnet"
backbone = "resnet50"
temporal = "tam"
options = {{ {options} }}
classes = 10
frames = 8
input_size = 224
""")
    monkeypatch.setenv("TEMBENCH_REGISTRY", str(tmp_path))
    code, _, err = run_cli(capsys, "profile", "mine")
    assert code == 2 and "mine.toml" in err and "'mine/tanet-odd'" in err and needle in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_heavy_cpu_runtime_sweep_is_announced_before_it_runs(capsys, runs_dir, monkeypatch):
    import tembench.runtime as rt

    seen = []

    def fake_measure(case, opts, cache):
        seen.append(case.clips_per_forward)
        return {**rt.runner.base_record(case, opts)}

    monkeypatch.setattr(rt, "measure_case", fake_measure)
    code, _, err = run_cli(capsys, "profile", "tsm/tsm-r50", "--latency", "--batch", "1,8", "--views", "8x3x10")
    assert code == 0 and seen == [30, 240]
    assert "note: tsm/tsm-r50 at batch 8 x 30 views is 240 clips of 8 frames per forward on a CPU" in err
