"""`tembench check --base REF`: the latency gate on any machine, REF's code and the current tree measured side
by side in one run (REF checked out into a temporary git worktree, one worker process per side).

The end-to-end tests build a git repository in a temporary directory from a copy of this tree (tembench/ and
registry/), commit a change there and run `python -m tembench` from it with PYTHONPATH pointing at it, so its
code is what the current side measures and its parent commit's code what the base side measures."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import interrupt_on_call, run_cli

from tembench import check, gates

# measures time, or kills and launches processes on a timetable: runs alone (see tests/conftest.py)
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parent.parent
GIT = ("git", "-c", "user.name=tembench-test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false")
TSM = "tembench/models/temporal/tsm.py"
BUDGET = "20"  # seconds for each A/B of the single TSM case (about 10 of them start the workers and build the model)


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def make_repo(where: Path) -> Path:
    """A git repository holding a copy of this tree's tembench/ and registry/ (as they are on disk), one commit."""
    repo = where / "repo"
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "--", "tembench",
                             "registry"], check=True, capture_output=True, text=True).stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def commit(repo: Path, path: str, edit, message: str) -> None:
    f = repo / path
    f.write_text(edit(f.read_text()))
    git(repo, "commit", "-q", "-am", message)


def tembench(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TEMBENCH_REGISTRY", "TEMBENCH_RUNS")}
    env.update(PYTHONPATH=str(repo), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "tembench", *args], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=600)


def ab_tsm(repo: Path) -> subprocess.CompletedProcess:
    return tembench(repo, "check", "tsm/tsm-r18", "--gates", "latency", "--base", "HEAD~1",
                    "--latency-budget", BUDGET, "--format", "json")


def assert_no_worktree_left(repo: Path) -> None:
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_an_unchanged_tree_passes_three_times_in_a_row(tmp_path):
    """No false alarm: a commit that does not touch the code, measured against its parent, three times."""
    repo = make_repo(tmp_path)
    commit(repo, "registry/README.md", lambda text: text + "\nA line that changes nothing measured.\n", "no-op")
    for _ in range(3):
        done = ab_tsm(repo)
        assert done.returncode == 0, done.stdout + done.stderr
        (v,) = json.loads(done.stdout)["verdicts"]
        print(v["status"], v["detail"])
        assert v["status"] == "pass" and v["key"] == "tsm/tsm-r18@8x112 b1" and len(v["ratio_ci"]) == 2
        assert "side by side with HEAD~1" in v["detail"]
        # each side imports its own code: the base side REF's worktree, the current side this repository
        assert "tembench imported from /" in done.stderr and "tembench-base-" in done.stderr
        assert f"and {repo} (current)" in done.stderr, done.stderr
        assert "1 comparison made, 0 failures" in done.stderr
    assert_no_worktree_left(repo)


def test_a_sleep_in_the_tsm_shift_fails_the_latency_gate_naming_tsm(tmp_path):
    """Injected regression: TSM's shift sleeps 5 ms (8 shifts per forward), committed on top of the tree;
    `check --base HEAD~1` measures both commits here and fails naming tsm.

    The repository's TSM case is timed at 8x32 instead of 8x112 (in both commits): on a quiet machine the
    sleeps add half of an 8x112 forward, but on one shared with other busy jobs (this suite's 2-core VM, say)
    the forward is several times slower and its spread wide, which would hide them; at 8x32 they add
    several forwards' time however busy the machine is."""
    repo = make_repo(tmp_path)
    commit(repo, "registry/tsm.toml", lambda text: text.replace(
        "latency_gate = { frames = 8, input_size = 112 }", "latency_gate = { frames = 8, input_size = 32 }"),
        "the TSM case at 8x32")
    commit(repo, TSM, lambda text: text.replace(
        "        return temporal_shift(x, self.frames, self.fold_div)",
        "        import time\n\n        time.sleep(0.005)\n        return temporal_shift(x, self.frames, self.fold_div)"),
        "TSM: sleep 5 ms in every shift")
    assert "time.sleep(0.005)" in (repo / TSM).read_text()
    done = ab_tsm(repo)
    assert done.returncode == 1, done.stdout + done.stderr
    (v,) = json.loads(done.stdout)["verdicts"]
    print(v["status"], v["detail"])
    assert v["status"] == "regression" and v["key"] == "tsm/tsm-r18@8x32 b1" and v["ratio_ci"][0] > 1.05, v
    assert "1 failure" in done.stderr
    assert_no_worktree_left(repo)


def test_a_base_whose_tembench_cannot_measure_says_so_in_one_line(tmp_path):
    """REF's tembench lacks what the worker needs (here: no runtime at all): one line, exit 2, no worktree left."""
    repo = tmp_path / "repo"
    (repo / "tembench").mkdir(parents=True)
    (repo / "tembench" / "__init__.py").write_text('"""An old tembench with no runtime."""\n')
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "old")
    shutil.rmtree(repo / "tembench")
    fresh = make_repo(tmp_path / "fresh")
    for name in ("tembench", "registry"):
        shutil.copytree(fresh / name, repo / name, dirs_exist_ok=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "new")
    done = tembench(repo, "check", "tsm/tsm-r18", "--gates", "latency", "--base", "HEAD~1", "--latency-budget", "5")
    assert done.returncode == 2, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "the base side cannot be measured" in last and "lacks tembench.registry" in last, last
    assert "Traceback" not in done.stderr
    assert_no_worktree_left(repo)


@pytest.mark.parametrize("args, where, problem", [
    (("--base", "no-such-ref-anywhere"), "root", "--base no-such-ref-anywhere: no such commit in"),
    (("--base", "HEAD"), "not-git", "is not inside a git work tree"),
    (("--base", "HEAD"), "no-git", "--base needs git, which is not installed here"),
    (("--base", "HEAD", "--accept"), "root", "does not go with --base"),
    (("--base", "HEAD", "--latency-budget", "0"), "root", "--latency-budget must be a positive number"),
])
def test_base_errors_are_one_line_before_anything_is_measured(capsys, tmp_path, monkeypatch, args, where, problem):
    monkeypatch.chdir(ROOT if where == "root" else tmp_path)
    if where == "no-git":
        monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(check, "ab_latency_records", lambda *a, **k: pytest.fail("measured despite the error"))
    code, _, err = run_cli(capsys, "check", "tsm/tsm-r18", "--gates", "latency", *args)
    assert code == 2 and problem in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_ctrl_c_removes_the_worktree_and_stops_the_workers(tmp_path, monkeypatch):
    repo = make_repo(tmp_path)
    monkeypatch.chdir(repo)
    made, sides = [], []
    real_mkdtemp, real_init = check.tempfile.mkdtemp, check._Side.__init__

    def mkdtemp(*a, **k):
        made.append(Path(real_mkdtemp(*a, **k)))
        return str(made[-1])

    def init(self, *a, **k):
        sides.append(self)
        real_init(self, *a, **k)

    monkeypatch.setattr(check.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(check._Side, "__init__", init)
    interrupt_on_call(monkeypatch, check._Side, "answer", n=3)  # after both workers said hello
    with pytest.raises(KeyboardInterrupt):
        check.ab_latency_records(check.resolve_base("HEAD"), check.latency_cases(["tsm/tsm-r18"]), budget_s=5)
    assert made and not made[0].exists()
    assert len(sides) == 2 and all(s.proc.poll() is not None for s in sides)
    assert_no_worktree_left(repo)


def test_a_case_the_base_does_not_have_is_new(monkeypatch):
    """The current tree's registry decides what is measured; a case REF lacks is reported as new."""
    def ab(base, cases, budget_s, progress):
        rows = []
        for side in ("base", "current"):
            rows.append([{"variant": v, "frames": t, "input_size": s, "batch": 1, "side": side,
                          "status": "absent" if side == "base" else "ok", "error": "not at HEAD: unknown variant",
                          "samples_ms": [], "relative": [], "latency_ms": None} for v, t, s in cases])
        return rows[0], rows[1], {"rounds": 0}

    monkeypatch.setattr(check, "ab_latency_records", ab)
    base = check.BaseRef("HEAD", "0" * 40, ROOT)
    (v,) = check.check_latency_ab(base, ["tsm/tsm-r18"])
    assert v.status == gates.NEW and not v.failed and "not at HEAD" in v.detail
    assert "| `tsm/tsm-r18@8x112 b1` |  |  |  | new: not at HEAD" in gates.to_markdown([v])


def test_paths_of_the_base_side_move_into_its_worktree(tmp_path):
    repo, tree = tmp_path / "repo", tmp_path / "tree"
    (repo / "src").mkdir(parents=True)
    assert check._moved(repo / "src", repo, tree) == tree / "src"
    assert check._moved(tmp_path / "elsewhere", repo, tree) == tmp_path / "elsewhere"
    # in this checkout, the tembench that runs is this tree's; an ignored directory (.venv) is no side's code
    paths = check.side_paths(ROOT, [])
    assert paths[0] == ROOT and not any(".venv" in str(p) for p in paths if check._inside(p, ROOT))
