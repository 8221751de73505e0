"""CI regression tracking: measure now, load the committed baselines, let :mod:`tembench.gates` judge.

Baselines live in ``results/baselines/`` as run records (the same self-describing JSON files, in the
same envelope, the results store writes, each record checked against its kind's schema:
:func:`tembench.results.store.write_run`): ``cost.json`` (every registered variant at its default
frames: the cost record of ``tembench profile``, with per-module multiply-adds), ``latency.json``
(CPU latency samples of a small fixed set of variants, with the fingerprint of the machine that
measured them) and ``motion.json`` (the motion-benchmark accuracies with per-clip correctness).
``tembench check --accept`` rewrites them deliberately; files written before the envelope and the cost
record were one (no run id, a cost record of ``variant``, ``frames``, ``input_size``, ``classes``,
``macs``, ``params``, ``modules``) load and compare as they are.

Latency is hardware-dependent: the committed ``latency.json`` is compared only on the machine that measured
it. ``tembench check --base REF`` compares on any machine instead: REF's code and the current tree are
measured side by side in one run (:func:`ab_latency_records`), and cost and accuracy still use the committed
baselines (they do not depend on the machine).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from tembench import gates
from tembench.ab_worker import reference_workload
from tembench.errors import BaselineError, UsageError, one_line
from tembench.results.schema import SCHEMA_VERSION
from tembench.results.store import write_run

DEFAULT_BASELINE = Path("results/baselines")
COST_FILE, LATENCY_FILE, MOTION_FILE = "cost.json", "latency.json", "motion.json"
GATE_FILES = {"cost": COST_FILE, "latency": LATENCY_FILE, "accuracy": MOTION_FILE}
MODULE_DEPTH = 3  # per-module diffs down to e.g. layer1.0.temporal

Progress = Callable[[str], None]
"""Called with one line of progress (``"cost tsm/tsm-r50 (0.2 s)"``) after each measured model."""


def _say(progress: Progress | None, gate: str, what: str, t0: float) -> None:
    if progress is not None:
        progress(f"{gate} {what} ({time.perf_counter() - t0:.1f} s)")


def cost_records(patterns: list[str] | None = None, progress: Progress | None = None) -> list[dict]:
    """Cost of every selected variant at its default frames (the cost record of ``tembench profile``:
    :func:`tembench.cost.records.cost_record`), with per-module multiply-adds (``modules``)."""
    from tembench.cost import count_spec
    from tembench.cost.records import cost_record
    from tembench.registry import registry

    out = []
    specs = [s for s in registry().select(patterns) if not s.missing]  # not installed: cannot be counted here
    for i, spec in enumerate(specs, 1):
        t0 = time.perf_counter()
        rec = cost_record(spec, None, None, 1, 1, "fvcore")
        rec["modules"] = count_spec(spec, temporal_baseline=False).module_totals(MODULE_DEPTH)
        out.append(rec)
        _say(progress, "cost", f"{i}/{len(specs)} {spec.id}", t0)
    return out


def load_baseline(directory: str | Path, name: str) -> dict:
    """A baseline file, checked: a missing, unreadable, malformed or empty baseline raises
    :class:`~tembench.errors.BaselineError` (a gate never passes against nothing)."""
    path = Path(directory) / name
    if not path.exists():
        where = "" if Path(directory).is_dir() else f" (no directory {directory} here: run from the project root or pass --baseline DIR)"
        raise BaselineError(f"no baseline {path}{where}; write one deliberately with `tembench check --accept`")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BaselineError(f"baseline {path} is unreadable ({e}); regenerate it with `tembench check --accept`") from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION or not isinstance(data.get("records"), list):
        raise BaselineError(f"baseline {path} has an unknown layout; regenerate it with `tembench check --accept`")
    if not data["records"]:
        raise BaselineError(f"baseline {path} holds no records; regenerate it with `tembench check --accept`")
    return data


def _accepted(baseline_dir: Path, name: str, kind: str, current: list[dict]) -> dict:
    write_run(Path(baseline_dir) / name, kind, current)
    return load_baseline(baseline_dir, name)


def check_cost(baseline_dir: Path, accept: bool = False, patterns: list[str] | None = None,
               progress: Progress | None = None) -> list[gates.Verdict]:
    base = None if accept else load_baseline(baseline_dir, COST_FILE)
    current = cost_records(patterns, progress)
    if accept:
        base = _accepted(baseline_dir, COST_FILE, "cost", current)
    records = base["records"]
    if patterns:
        keep = {r["variant"] for r in current}
        records = [r for r in records if r["variant"] in keep]
    from tembench.registry import registry

    unavailable = {s.id for s in registry().select() if s.missing}
    skipped = sorted({r["variant"] for r in records} & unavailable)
    if skipped and progress is not None:
        progress(f"cost: {len(skipped)} baseline variants need packages that are not installed here; not compared "
                 f"({', '.join(skipped[:3])}{', ...' if len(skipped) > 3 else ''})")
    return gates.cost_gate([r for r in records if r["variant"] not in unavailable], current)


def check_accuracy(baseline_dir: Path, accept: bool = False, current: list[dict] | None = None,
                   patterns: list[str] | None = None, progress: Progress | None = None) -> list[gates.Verdict]:
    from tembench.registry import registry
    from tembench.sanity import run_benchmark

    base = None if accept else load_baseline(baseline_dir, MOTION_FILE)
    if current is None:
        motion = [s.id for s in motion_variants(patterns)]
        t0 = time.perf_counter()
        current = run_benchmark(motion, on_record=lambda r: _say(
            progress, "accuracy", f"{r['variant']}: top-1 {r['top1']:.1f}%", t0)) if motion else []
    if accept:
        base = _accepted(baseline_dir, MOTION_FILE, "accuracy", current)
    by_variant = {r["variant"]: r for r in base["records"]}
    verdicts = []
    for rec in current:
        b = by_variant.get(rec["variant"])
        if b is None:
            verdicts.append(gates.Verdict("accuracy", rec["variant"], "top1", None, rec["top1"], gates.NEW,
                                          "not in the baseline", "%"))
            continue
        verdicts.append(gates.accuracy_gate(rec["variant"], b, rec))
    for rec in current:  # a model that no longer does its job fails even without a baseline change
        if rec["purpose"].startswith("FAILS"):
            verdicts.append(gates.Verdict("accuracy", rec["variant"], "purpose", None, rec["top1"],
                                          gates.REGRESSION, rec["purpose"], "%"))
    return verdicts


def latency_cases(patterns: list[str] | None = None) -> tuple[tuple[str, int, int], ...]:
    """The cases whose CPU latency the gate tracks: (variant, frames, input size) of every selected variant
    whose registry entry has ``latency_gate`` (the built-in registry: TSN-R18 and TSM-R18 at 8x112, the
    motion TANet and EMIM at 8x32)."""
    from tembench.registry import registry

    return tuple((s.id, s.latency_gate["frames"], s.latency_gate["input_size"])
                 for s in registry().select(patterns) if s.latency_gate)


def motion_variants(patterns: list[str] | None = None) -> list:
    """The selected variants the motion-accuracy gate trains (registry entries with ``motion_gate``)."""
    from tembench.registry import registry

    return [s for s in registry().select(patterns) if s.motion_gate]


def gate_cases(patterns: list[str] | None = None) -> dict[str, int]:
    """How many cases each gate has for the selected variants (a gate with none does not apply)."""
    from tembench.registry import registry

    return {"cost": len(registry().select(patterns)), "latency": len(latency_cases(patterns)),
            "accuracy": len(motion_variants(patterns))}


LATENCY_BUDGET_S = 4.5


def latency_records(cases=None, budget_s: float = LATENCY_BUDGET_S, threads: int = 1,
                    rounds: int = 3, progress: Progress | None = None) -> list[dict]:
    """CPU latency of each case with tembench's own timing loop, raw samples kept.

    Shared machines drift: the cases are measured in ``rounds`` interleaved rounds (after an
    untimed warm-up pass), each right after a fixed reference convolution, and every sample is
    also stored relative to that reference (``relative``: latency / reference latency). The gate
    compares the relative samples, so a machine that is slower as a whole is not a regression,
    while a slower model is."""
    from statistics import median

    from tembench.registry import registry
    from tembench.runtime.runner import Case, RuntimeOptions, measure_case, torch_threads
    from tembench.runtime.timing import TimingConfig, time_fn

    cases = latency_cases() if cases is None else cases
    per_round = budget_s / rounds
    opts = RuntimeOptions(latency=True, device="cpu", modules=False, threads=threads,
                          timing=TimingConfig(budget_s=per_round, min_run_s=min(1.0, per_round), max_reps=200))
    warm = RuntimeOptions(latency=True, device="cpu", modules=False, threads=threads,
                          timing=TimingConfig(budget_s=0.2, min_run_s=0.0, min_reps=2, warmup_s=0.5))
    ref_cfg = TimingConfig(budget_s=0.3, min_run_s=0.2, min_reps=5, warmup_s=0.05, warmup_iters=2)
    reference = reference_workload()
    specs = [(registry().get(v), t, s) for v, t, s in cases]
    rows: dict[int, dict] = {}
    for spec, t, s in specs:
        measure_case(Case(spec, t, s, 1, 1, 1), warm)
    for k in range(rounds):
        for i, (spec, t, s) in enumerate(specs):
            t0 = time.perf_counter()
            with torch_threads(threads):
                ref_ms = time_fn(reference, "cpu", ref_cfg).median_ms
            rec = measure_case(Case(spec, t, s, 1, 1, 1), opts)
            row = rows.setdefault(i, {"variant": spec.id, "frames": t, "input_size": s, "batch": 1,
                                      "threads": threads, "status": "ok", "samples_ms": [], "relative": [],
                                      "reference_ms": []})
            if rec.get("status") != "ok":
                row.update(status=rec.get("status"), error=rec.get("error"))
            samples = rec.get("latency_samples_ms", [])
            row["samples_ms"] += samples
            row["relative"] += [x / ref_ms for x in samples]
            row["reference_ms"].append(ref_ms)
            _say(progress, "latency", f"round {k + 1}/{rounds} {spec.id}@{t}x{s}", t0)
    for row in rows.values():
        row["latency_ms"] = median(row["samples_ms"]) if row["samples_ms"] else None
        row["latency_spread"] = gates.iqr_over_median(row["samples_ms"]) if row["samples_ms"] else None
    return [rows[i] for i in sorted(rows)]


def check_latency(baseline_dir: Path, accept: bool = False, current: list[dict] | None = None,
                  patterns: list[str] | None = None, progress: Progress | None = None,
                  budget_s: float | None = None) -> list[gates.Verdict]:
    """The latency gate against the committed baseline: compared only on the machine that measured it
    (the same hardware hash); elsewhere every case is ``not comparable`` (see :func:`check_latency_ab`
    for a comparison on any machine). ``budget_s``: for all cases together (default 4.5 s per case)."""
    from tembench.env import hardware, hardware_hash

    cases = latency_cases(patterns)
    base = None if accept else load_baseline(baseline_dir, LATENCY_FILE)
    if base is not None and (base.get("fingerprint") or {}).get("hardware_hash") != hardware_hash():
        fp = base.get("fingerprint") or {}
        why = (f"the committed baseline was measured on another machine ({(fp.get('hardware') or {}).get('cpu', '?')}, "
               f"hardware {fp.get('hardware_hash')}; this one: {hardware().get('cpu', '?')}, {hardware_hash()})")
        verdicts = [gates.latency_gate(_latency_key(r), r.get("samples_ms") or [], [], same_hardware=False)
                    for r in base["records"] if _selected(r["variant"], patterns)]
        for v in verdicts:
            v.detail = why
        return verdicts
    if current is None:
        per_case = LATENCY_BUDGET_S if budget_s is None else budget_s / max(len(cases), 1)
        current = latency_records(cases, budget_s=per_case, progress=progress) if cases else []
    if accept:
        base = _accepted(baseline_dir, LATENCY_FILE, "latency", current)
    by_key = {_latency_key(r): r for r in base["records"]}
    verdicts = []
    for rec in current:
        key = _latency_key(rec)
        b = by_key.get(key)
        if b is None:
            verdicts.append(gates.Verdict("latency", key, "median_ms", None, rec.get("latency_ms"), gates.NEW,
                                          "not in the baseline", "ms"))
        else:
            if b.get("relative") and rec.get("relative"):  # both measured against the reference workload
                v = gates.latency_gate(key, b["relative"], rec["relative"], True)
                v.metric, v.unit = "median_relative", "x ref"
                v.detail = f"{v.detail.replace(' ms', '')} (relative to the reference conv); " \
                           f"ms {b.get('latency_ms', 0):.2f} -> {rec.get('latency_ms', 0):.2f}"
            else:
                v = gates.latency_gate(key, b.get("samples_ms") or [], rec.get("samples_ms") or [], True)
            verdicts.append(v)
    return verdicts


# --------------------------------------------------------------- latency, side by side with a base commit
#
# `tembench check --base REF`: hosted CI runners change hardware from job to job, so a committed latency
# baseline is rarely comparable there. Instead REF's code is checked out into a temporary git worktree and
# both sides are measured on this machine in one run (as `asv continuous` does), each in a worker process
# of its own (tembench/ab_worker.py) that imports its side's tembench, in interleaved rounds.

AB_BUDGET_S = 120.0
"""Default seconds for the whole A/B (worktree, workers, builds and every round): the four CPU cases of
the built-in registry take about two minutes on 2 cores."""
AB_ROUNDS = 6  # rounds planned; fewer when the budget does not allow them (at least AB_MIN_ROUNDS)
AB_MIN_ROUNDS = 2
AB_MIN_SLOT_S = 0.4  # the shortest time one side measures one case in one round
AB_SLOT_OVERHEAD_S = 0.4  # first guess of what a slot costs besides its timing window (the reference conv, ...)
AB_ANSWER_TIMEOUT_S = 600.0  # a worker that does not answer a request in this long is stuck
WORKER_SCRIPT = Path(__file__).with_name("ab_worker.py")


@dataclass(frozen=True)
class BaseRef:
    """The base of an A/B comparison: ``ref`` as given (``origin/main``, a tag, a commit), the commit it
    names and the top level of the git work tree it was resolved in."""

    ref: str
    sha: str
    repo: Path

    @property
    def label(self) -> str:
        return self.ref if self.sha.startswith(self.ref) else f"{self.ref} ({self.sha[:10]})"


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise UsageError("--base needs git, which is not installed here (no `git` on PATH)") from None


def _git_problem(done: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
    return lines[0] if lines else f"exit code {done.returncode}"


def resolve_base(ref: str, cwd: str | Path | None = None) -> BaseRef:
    """The commit ``ref`` names in the git work tree around ``cwd`` (default: the current directory); a
    one-line :class:`UsageError` when git is missing, ``cwd`` is in no work tree or ``ref`` names no commit."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    if not str(ref).strip() or str(ref).startswith("-"):
        raise UsageError(f"--base {ref!r}: give a commit, branch or tag (e.g. --base origin/main or --base HEAD~1)")
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top.returncode or not top.stdout.strip():
        raise UsageError(f"--base {ref}: {cwd} is not inside a git work tree (run from the project's checkout): "
                         f"{_git_problem(top)}")
    repo = Path(top.stdout.strip())
    sha = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if sha.returncode or not sha.stdout.strip():
        shallow = _git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
        raise UsageError(f"--base {ref}: no such commit in {repo}" + (
            " (this clone is shallow: fetch the base first, e.g. `git fetch --deepen=1` or `git fetch origin main`)"
            if shallow else ""))
    return BaseRef(str(ref), sha.stdout.strip(), repo)


@contextmanager
def base_worktree(base: BaseRef) -> Iterator[Path]:
    """REF's tree, checked out (detached) into a temporary git worktree; removed on the way out, also on
    Ctrl-C and errors."""
    tmp = Path(tempfile.mkdtemp(prefix="tembench-base-"))
    tree = tmp / "tree"
    try:
        done = _git(base.repo, "worktree", "add", "--detach", "--quiet", str(tree), base.sha)
        if done.returncode:
            raise UsageError(f"--base {base.ref}: git worktree add failed: {_git_problem(done)}")
        yield tree
    finally:
        if tree.exists():
            _git(base.repo, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tmp, ignore_errors=True)
        _git(base.repo, "worktree", "prune")


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def side_paths(repo: Path, specs) -> list[Path]:
    """What the current side's worker puts on PYTHONPATH: the directory holding the tembench package that
    runs now and the packages of the networks of one's own (``arch = "python"``) when they live in the
    repository (not git-ignored: an installed copy is no side's code), then $PYTHONPATH. The base side
    gets the same list with every path inside the repository moved into REF's worktree."""
    import importlib.util

    from tembench import errors  # any module of the package: where the tembench that runs now lives

    found = [Path(errors.__file__).resolve().parent.parent]
    for spec in specs:
        if spec.is_python and spec.factory:
            try:
                where = importlib.util.find_spec(spec.factory.split(":")[0].split(".")[0])
            except (ImportError, ValueError):
                where = None
            for loc in (list(where.submodule_search_locations or []) if where and where.submodule_search_locations
                        else [where.origin] if where and where.origin else []):
                found.append(Path(loc).resolve().parent)
    found = [p for p in found if _inside(p, repo) and _git(repo, "check-ignore", "-q", str(p)).returncode != 0]
    found += [Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return list(dict.fromkeys(found))


def _moved(path: Path, repo: Path, tree: Path) -> Path:
    """``path`` inside ``repo`` -> the same place in ``tree`` (REF's worktree); any other path unchanged."""
    return tree / path.resolve().relative_to(repo.resolve()) if _inside(path, repo) else path


class _Side:
    """A worker process (tembench/ab_worker.py) of one side, spoken to in JSON lines."""

    def __init__(self, name: str, script: Path, paths: list[Path], cwd: Path, log: Path):
        env = {k: v for k, v in os.environ.items() if k != "TEMBENCH_REGISTRY"}
        env["PYTHONPATH"] = os.pathsep.join(map(str, paths))
        self.name, self.log, self.buf = name, log, b""
        with open(log, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, cwd=cwd, env=env)

    def send(self, request: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the answer (none) says what happened

    def answer(self, timeout: float = AB_ANSWER_TIMEOUT_S) -> dict:
        import select

        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"the {self.name} side's worker did not answer in {timeout:.0f} s")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    code = self.proc.wait(timeout=10)
                    raise RuntimeError(f"the {self.name} side's worker exited (code {code}): {self.last_words()}")
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def ask(self, request: dict) -> dict:
        self.send(request)
        return self.answer()

    def last_words(self) -> str:
        try:
            lines = [ln.strip() for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            lines = []
        return lines[-1][:300] if lines else "no output"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send({"op": "quit"})
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _ab_row(case: tuple[str, int, int], side: str) -> dict:
    variant, t, s = case
    return {"variant": variant, "frames": t, "input_size": s, "batch": 1, "threads": 1, "side": side,
            "status": "ok", "samples_ms": [], "relative": [], "reference_ms": []}


def ab_latency_records(base: BaseRef, cases, budget_s: float = AB_BUDGET_S,
                       progress: Progress | None = None) -> tuple[list[dict], list[dict], dict]:
    """(base rows, current rows, run info): the latency of each case at ``base`` and in the current tree,
    measured on this machine in one run.

    Each side runs in a worker process of its own, with its own code on PYTHONPATH (REF's in a temporary
    git worktree), and builds and warms up each case once. Then, in rounds, every case is measured on one
    side and right after on the other (the order alternates from round to round: base first, then current
    first), each time right after the reference convolution, so the machine's slow and fast phases fall on
    both sides alike. ``budget_s`` is for all of it: the time left after the workers are ready is split over
    the rounds (:data:`AB_ROUNDS`, fewer when the windows would get shorter than :data:`AB_MIN_SLOT_S`; at
    least :data:`AB_MIN_ROUNDS`). A case the base does not have (or cannot build) is measured on neither
    side and has ``status`` ``absent`` on the base side."""
    from statistics import median

    from tembench.registry import builtin_registry_dir, registry, registry_dirs

    t_start = time.perf_counter()
    deadline = t_start + budget_s
    cases = [tuple(c) for c in cases]
    specs = [registry().get(v) for v, _, _ in cases]
    builtin = builtin_registry_dir().resolve()
    own_dirs = [d.resolve() for d in registry_dirs() if d.resolve() != builtin]
    with_builtin = any(d.resolve() == builtin for d in registry_dirs())
    rows = {"base": [_ab_row(c, "base") for c in cases], "current": [_ab_row(c, "current") for c in cases]}
    info = {"base": base.ref, "base_commit": base.sha, "rounds": 0, "budget_s": budget_s}

    def say(what: str, t0: float) -> None:
        _say(progress, "latency", f"vs {base.label}: {what}", t0)

    with base_worktree(base) as tree:
        t0 = time.perf_counter()
        script = tree.parent / "worker" / "tembench_ab_worker.py"
        script.parent.mkdir()
        shutil.copyfile(WORKER_SCRIPT, script)
        paths = side_paths(base.repo, specs)
        cwd = Path.cwd()
        sides: dict[str, _Side] = {}
        try:
            sides["base"] = _Side(f"base ({base.label})", script, [_moved(p, base.repo, tree) for p in paths],
                                  _moved(cwd, base.repo, tree) if _moved(cwd, base.repo, tree).is_dir() else tree,
                                  tree.parent / "base.log")
            sides["current"] = _Side("current", script, paths, cwd, tree.parent / "current.log")
            for name, side in sides.items():
                side.send({"op": "hello", "threads": 1, "builtin": with_builtin,
                           "registry": [str(_moved(d, base.repo, tree) if name == "base" else d) for d in own_dirs]})
            where = {}
            for name, side in sides.items():
                hello = side.answer()
                if not hello.get("ok"):
                    raise UsageError(f"--base {base.label}: the {name} side cannot be measured: {hello.get('error')}")
                where[name] = hello["tembench"]
            info["tembench"] = where
            say(f"workers ready, tembench imported from {where['base']} (base) and {where['current']} (current)", t0)
            for case, b_row, c_row in zip(cases, rows["base"], rows["current"]):
                t0 = time.perf_counter()
                request = {"op": "prepare", "variant": case[0], "frames": case[1], "size": case[2]}
                for side in sides.values():
                    side.send(request)
                for name, row in (("base", b_row), ("current", c_row)):
                    got = sides[name].answer()
                    if got.get("absent") and name == "base":
                        row.update(status="absent", error=f"not at {base.label}: {got['absent']}")
                    elif got.get("absent") or got.get("error"):
                        row.update(status="absent" if name == "base" else "error",
                                   error=(f"cannot be built at {base.label}: " if name == "base" else "")
                                   + (got.get("error") or got.get("absent")))
                say(f"built and warmed up {case[0]}@{case[1]}x{case[2]} on both sides", t0)
            todo = [i for i in range(len(cases)) if rows["base"][i]["status"] == rows["current"][i]["status"] == "ok"]
            overhead, slots_done = AB_SLOT_OVERHEAD_S, 0
            rounds = AB_ROUNDS
            for k in range(AB_ROUNDS):
                if not todo:
                    break
                left = deadline - time.perf_counter()
                slots = 2 * len(todo)
                while rounds - k > 1 and left / ((rounds - k) * slots) - overhead < AB_MIN_SLOT_S \
                        and rounds > AB_MIN_ROUNDS:
                    rounds -= 1
                if k >= rounds or (k >= AB_MIN_ROUNDS and left < slots * (AB_MIN_SLOT_S + overhead)):
                    break
                window = max(AB_MIN_SLOT_S, left / ((rounds - k) * slots) - overhead)
                order = ("base", "current") if k % 2 == 0 else ("current", "base")
                for i in list(todo):
                    t0 = time.perf_counter()
                    for name in order:
                        s0 = time.perf_counter()
                        got = sides[name].ask({"op": "measure", "variant": cases[i][0], "frames": cases[i][1],
                                               "size": cases[i][2], "budget_s": window})
                        row = rows[name][i]
                        if not got.get("ok"):
                            row.update(status="error", error=got.get("error", "no answer"))
                            todo.remove(i)
                            break
                        row["samples_ms"] += got["samples_ms"]
                        row["relative"] += got["relative"]
                        row["reference_ms"].append(got["reference_ms"])
                        spent = time.perf_counter() - s0
                        overhead = (overhead * slots_done + max(0.0, spent - window)) / (slots_done + 1)
                        slots_done += 1
                    b, c = rows["base"][i], rows["current"][i]
                    if b["samples_ms"] and c["samples_ms"]:
                        say(f"round {k + 1}/{rounds} {cases[i][0]}@{cases[i][1]}x{cases[i][2]}: base "
                            f"{median(b['samples_ms']):.2f} ms, current {median(c['samples_ms']):.2f} ms", t0)
                info["rounds"] = k + 1
        finally:
            for side in sides.values():
                side.close()
    for row in rows["base"] + rows["current"]:
        row["latency_ms"] = median(row["samples_ms"]) if row["samples_ms"] else None
        row["latency_spread"] = gates.iqr_over_median(row["samples_ms"]) if row["samples_ms"] else None
    info["seconds"] = round(time.perf_counter() - t_start, 1)
    return rows["base"], rows["current"], info


def check_latency_ab(base: BaseRef, patterns: list[str] | None = None, progress: Progress | None = None,
                     budget_s: float | None = None) -> list[gates.Verdict]:
    """The latency gate on this machine, against ``base`` measured side by side (:func:`ab_latency_records`):
    the current tree's registry says which cases; a case the base does not have is ``new``."""
    cases = latency_cases(patterns)
    if not cases:
        return []
    budget = AB_BUDGET_S if budget_s is None else budget_s
    t0 = time.perf_counter()
    base_rows, current_rows, info = ab_latency_records(base, cases, budget, progress)
    verdicts = []
    for b, c in zip(base_rows, current_rows):
        key = _latency_key(c)
        if b["status"] == "absent":
            verdicts.append(gates.Verdict("latency", key, "median_ms", None, None, gates.NEW, b["error"], "ms"))
        elif b["status"] != "ok" or c["status"] != "ok":
            bad = b if b["status"] != "ok" else c
            verdicts.append(gates.Verdict("latency", key, "median_ms", b["latency_ms"], c["latency_ms"], gates.ERROR,
                                          f"{bad['side']} side: {bad.get('error')}", "ms"))
        else:
            verdicts.append(gates.latency_ab_gate(key, b, c, base.label, info["rounds"]))
    _say(progress, "latency", f"vs {base.label}: {len(cases)} case(s) in {info['rounds']} round(s) "
                              f"(budget {budget:.0f} s)", t0)
    return verdicts


GATES = ("cost", "latency", "accuracy")


def _selected(variant: str, patterns: list[str] | None) -> bool:
    from tembench.results.query import variant_matches

    return variant_matches(variant, patterns)


def run_check(baseline_dir: str | Path = DEFAULT_BASELINE, which: list[str] | tuple[str, ...] = GATES,
              accept: bool = False, progress: Progress | None = None,
              patterns: list[str] | None = None, base: str | None = None,
              latency_budget: float | None = None) -> list[gates.Verdict]:
    """Measure now and judge against the committed baselines.

    Fails closed: every asked gate's baseline must exist, be readable and hold records (checked
    before anything is measured), or :class:`~tembench.errors.BaselineError` is raised; baselines are
    written only with ``accept``. A gate that cannot run (a missing dependency, no device, an error
    while measuring) gives an ``error`` verdict, which fails the check like a regression. ``patterns``
    (variant ids, families or globs) restricts every gate to the matching variants. The registry says
    what each gate measures: every variant's cost, the latency of those with ``latency_gate``, the
    motion accuracy of those with ``motion_gate``; a gate with no such variant does not apply (and
    needs no baseline), so a project of one's own gates its own models.

    ``base`` (a commit, branch or tag of the git work tree around the current directory): the latency gate
    measures that commit's code and the current tree side by side on this machine
    (:func:`check_latency_ab`) instead of reading the committed latency baseline; cost and accuracy are
    unchanged. ``latency_budget``: seconds for the whole latency gate (default :data:`AB_BUDGET_S` with
    ``base``, 4.5 s per case without). Git missing, no work tree or a ``base`` that names no commit is a
    :class:`~tembench.errors.UsageError`, raised before anything is measured.
    """
    baseline_dir = Path(baseline_dir)
    unknown = [g for g in which if g not in GATES]
    if unknown or not which:
        raise UsageError(f"unknown gate(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(GATES)}")
    if latency_budget is not None and not latency_budget > 0:
        raise UsageError(f"--latency-budget must be a positive number of seconds, got {latency_budget!r}")
    if base is not None and accept:
        raise UsageError("--accept writes the committed baselines; it does not go with --base (a side-by-side "
                         "comparison writes nothing)")
    cases = gate_cases(patterns)  # an unknown variant or family is an error, before anything is measured
    applicable = [g for g in which if cases[g]]
    for gate in which:
        if not cases[gate] and progress is not None:
            progress(f"{gate}: no case (no selected variant has "
                     f"{'latency_gate' if gate == 'latency' else 'motion_gate'} in its registry entry); skipped")
    ref = resolve_base(base) if base is not None and "latency" in applicable else None
    if not accept:
        for gate in applicable:
            if not (gate == "latency" and ref is not None):
                load_baseline(baseline_dir, GATE_FILES[gate])
    runners = {"cost": check_cost, "latency": check_latency, "accuracy": check_accuracy}
    if ref is not None:
        runners["latency"] = lambda _dir, _accept, **kw: check_latency_ab(ref, budget_s=latency_budget, **kw)
    elif latency_budget is not None:
        runners["latency"] = lambda *a, **kw: check_latency(*a, budget_s=latency_budget, **kw)
    verdicts: list[gates.Verdict] = []
    for gate in GATES:
        if gate not in applicable:
            continue
        try:
            verdicts += runners[gate](baseline_dir, accept, patterns=patterns, progress=progress)
        except (BaselineError, UsageError):
            raise
        except Exception as e:  # noqa: BLE001 -- a gate that cannot run fails, it never passes
            verdicts.append(gates.Verdict(gate, f"({gate} gate)", "run", None, None, gates.ERROR,
                                          f"the {gate} gate could not run: {one_line(e)}"))
    return verdicts


def compare_files(a: str | Path | dict, b: str | Path | dict) -> list[gates.Verdict]:
    """Compare two run records (or baseline files) of the same kind: A is the baseline, B the candidate.

    Each is a path, a loaded run (a dict), or a run id (prefix) in the results directory."""
    from tembench.results.store import find_run

    ra, rb = (x if isinstance(x, dict) else find_run(str(x)) for x in (a, b))
    if ra.get("kind") != rb.get("kind"):
        raise UsageError(f"cannot compare a {ra.get('kind')!r} run with a {rb.get('kind')!r} run")
    kind = ra.get("kind")
    if kind == "cost":
        return gates.cost_gate(ra["records"], rb["records"])
    if kind == "accuracy":
        base = {r["variant"]: r for r in ra["records"]}
        return [gates.accuracy_gate(r["variant"], base[r["variant"]], r) for r in rb["records"] if r["variant"] in base]
    if kind in ("latency", "runtime", "profile"):
        same = ra["fingerprint"].get("hardware_hash") == rb["fingerprint"].get("hardware_hash")
        base = {_latency_key(r): r for r in ra["records"] if _samples(r)}
        out = []
        for r in rb["records"]:
            k = _latency_key(r)
            if k in base and _samples(r):
                out.append(gates.latency_gate(k, _samples(base[k]), _samples(r), same))
        return out
    raise UsageError(f"do not know how to compare runs of kind {kind!r}")


def _samples(r: dict) -> list[float]:
    return r.get("samples_ms") or r.get("latency_samples_ms") or []


def _latency_key(r: dict) -> str:
    return f"{r['variant']}@{r.get('frames')}x{r.get('input_size')} b{r.get('batch', 1)}"
