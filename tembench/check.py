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
"""
from __future__ import annotations

import json
from pathlib import Path

import time
from typing import Callable

from tembench import gates
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


def _reference_workload():
    """A fixed convolution (torch only, no tembench code): the yardstick for the machine's speed."""
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, 28, 28, generator=g)
    w = torch.randn(64, 64, 3, 3, generator=g)

    def run():
        with torch.no_grad():
            return torch.nn.functional.conv2d(x, w, padding=1)

    return run


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
    reference = _reference_workload()
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
                  patterns: list[str] | None = None, progress: Progress | None = None) -> list[gates.Verdict]:
    from tembench.env import hardware_hash

    cases = latency_cases(patterns)
    base = None if accept else load_baseline(baseline_dir, LATENCY_FILE)
    if base is not None and (base.get("fingerprint") or {}).get("hardware_hash") != hardware_hash():
        return [gates.latency_gate(_latency_key(r), r.get("samples_ms") or [], [], same_hardware=False)
                for r in base["records"] if _selected(r["variant"], patterns)]
    if current is None:
        current = latency_records(cases, progress=progress) if cases else []
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


GATES = ("cost", "latency", "accuracy")


def _selected(variant: str, patterns: list[str] | None) -> bool:
    from tembench.results.query import variant_matches

    return variant_matches(variant, patterns)


def run_check(baseline_dir: str | Path = DEFAULT_BASELINE, which: list[str] | tuple[str, ...] = GATES,
              accept: bool = False, progress: Progress | None = None,
              patterns: list[str] | None = None) -> list[gates.Verdict]:
    """Measure now and judge against the committed baselines.

    Fails closed: every asked gate's baseline must exist, be readable and hold records (checked
    before anything is measured), or :class:`~tembench.errors.BaselineError` is raised; baselines are
    written only with ``accept``. A gate that cannot run (a missing dependency, no device, an error
    while measuring) gives an ``error`` verdict, which fails the check like a regression. ``patterns``
    (variant ids, families or globs) restricts every gate to the matching variants. The registry says
    what each gate measures: every variant's cost, the latency of those with ``latency_gate``, the
    motion accuracy of those with ``motion_gate``; a gate with no such variant does not apply (and
    needs no baseline), so a project of one's own gates its own models.
    """
    baseline_dir = Path(baseline_dir)
    unknown = [g for g in which if g not in GATES]
    if unknown or not which:
        raise UsageError(f"unknown gate(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(GATES)}")
    cases = gate_cases(patterns)  # an unknown variant or family is an error, before anything is measured
    applicable = [g for g in which if cases[g]]
    for gate in which:
        if not cases[gate] and progress is not None:
            progress(f"{gate}: no case (no selected variant has "
                     f"{'latency_gate' if gate == 'latency' else 'motion_gate'} in its registry entry); skipped")
    if not accept:
        for gate in applicable:
            load_baseline(baseline_dir, GATE_FILES[gate])
    runners = {"cost": check_cost, "latency": check_latency, "accuracy": check_accuracy}
    verdicts: list[gates.Verdict] = []
    for gate in GATES:
        if gate not in applicable:
            continue
        try:
            verdicts += runners[gate](baseline_dir, accept, patterns=patterns, progress=progress)
        except BaselineError:
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
