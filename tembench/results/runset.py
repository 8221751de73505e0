"""The stored runs a report reads: which records, and what a record says about itself.

Run filter (``--runs``): ``none`` (ignore stored runs), ``all`` (default), or comma-separated
``key=glob`` terms, all of which must hold: ``dir`` (the runs directory), ``run`` (run id), ``kind``,
``status``, ``variant``, ``dataset``, ``device``. Example: ``kind=accuracy,variant=tam/*``.

Accuracy records that only show that the pipeline runs are left out unless asked for
(``include_smoke``, ``tembench report --include-smoke-runs``): a randomly initialised model (no
checkpoint), a record that does not say which weights it used, and data written by ``tembench data
synth`` (the record's ``synthetic`` field, or the marker file in its data root). The run set says how
many it left out and why; when they are included they are marked, and never compared with a paper.
"""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tembench.errors import UsageError
from tembench.registry import ACCURACY_METRICS
from tembench.results.store import default_runs_dir, load_runs

_RUN_KEYS = {"dir", "run", "kind", "status"}
_RECORD_KEYS = {"variant", "dataset", "device"}
_DATASET_ALIASES = {"k400": "kinetics400", "sthv1": "ssv1", "sthsthv1": "ssv1", "somethingsomethingv1": "ssv1",
                    "sthv2": "ssv2", "sthsthv2": "ssv2", "somethingsomethingv2": "ssv2", "k600": "kinetics600",
                    "k700": "kinetics700", "imagenet": "imagenet1k", "in1k": "imagenet1k"}
SMOKE_REASONS = ("random init", "weights not recorded", "synthetic data")
SMOKE_NOTE = "random init, synthetic data or weights not recorded"


def parse_runs_filter(text: str | None) -> dict[str, str] | None:
    """``None``/``all`` -> {} (every run), ``none`` -> None (no runs), else {key: glob}."""
    if text is None or text.strip().lower() in ("", "all"):
        return {}
    if text.strip().lower() == "none":
        return None
    terms: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise UsageError(f"--runs: expected key=value terms separated by commas (e.g. kind=accuracy,variant=tam/*), "
                             f"'none' or 'all', got {text!r}")
        if key not in _RUN_KEYS | _RECORD_KEYS:
            raise UsageError(f"--runs: unknown key {key!r}; one of {', '.join(sorted(_RUN_KEYS | _RECORD_KEYS))}")
        terms[key] = value
    return terms


@dataclass
class RunSet:
    """The records of the stored runs a report reads, each with its run (id, command, fingerprint)."""

    runs: list[dict] = field(default_factory=list)
    records: list[tuple[dict, dict]] = field(default_factory=list)  # (record, run)
    description: str = "no stored runs"
    excluded: list[tuple[dict, dict, str]] = field(default_factory=list)  # (record, run, smoke_reason)
    include_smoke: bool = False  # records that only show the pipeline runs are in ``records``, marked

    @property
    def left_out_note(self) -> str:
        """'left out 3 accuracy records ... (1 random init, 2 synthetic data); --include-smoke-runs ...', or ''."""
        if not self.excluded:
            return ""
        return (f"left out {_n(len(self.excluded), 'accuracy record')} that only show that the pipeline runs "
                f"({_reason_counts(r for _, _, r in self.excluded)}); --include-smoke-runs shows them, marked")

    @property
    def smoke_records(self) -> list[tuple[dict, dict, str]]:
        """Records included with ``include_smoke`` that only show the pipeline runs, with the reason."""
        return [(rec, run, reason) for rec, run in self.records if (reason := smoke_reason(rec, run))]

    def with_metric(self, *keys: str) -> list[tuple[dict, dict]]:
        """Records that measured any of ``keys`` (runtime records that ran out of memory or failed excluded)."""
        return [(rec, run) for rec, run in self.records if rec.get("status", "ok") == "ok"
                and any(metric_value(rec, k) is not None for k in keys)]


def load_runset(text: str | None = None, include_smoke: bool = False) -> RunSet:
    """The stored runs matching a ``--runs`` filter (see the module docstring), without the accuracy
    records that only show the pipeline runs unless ``include_smoke``."""
    terms = parse_runs_filter(text)
    if terms is None:
        return RunSet(description="stored runs ignored (--runs none)", include_smoke=include_smoke)
    directory = Path(terms["dir"]) if "dir" in terms else default_runs_dir()
    if "dir" in terms and not directory.is_dir():
        raise UsageError(f"--runs: no runs directory {directory}")
    runs = load_runs(directory) if directory.is_dir() else []
    chosen, records, excluded = [], [], []
    for run in runs:
        if not all(fnmatch.fnmatchcase(str(run.get(k, "")), terms[k2])
                   for k, k2 in (("run_id", "run"), ("kind", "kind"), ("status", "status")) if k2 in terms):
            continue
        recs = []
        for r in run.get("records", []):
            if not isinstance(r, dict) or not _record_matches(r, run, terms):
                continue
            reason = "" if include_smoke else smoke_reason(r, run)
            if reason:
                excluded.append((r, run, reason))
            else:
                recs.append(r)
        if recs:
            chosen.append(run)
            records.extend((r, run) for r in recs)
    what = ", ".join(f"{k}={v}" for k, v in terms.items()) or "all"
    description = f"{_n(len(records), 'record')} from {_n(len(chosen), 'run')} in {directory} ({what})"
    runset = RunSet(chosen, records, description, excluded, include_smoke)
    if runset.excluded:
        runset.description += f"; {runset.left_out_note}"
    return runset


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _reason_counts(reasons: Iterable[str]) -> str:
    """'2 random init, 1 synthetic data' from reasons such as 'random init, synthetic data'."""
    counts: dict[str, int] = {}
    for reason in reasons:
        for part in reason.split(", "):
            counts[part] = counts.get(part, 0) + 1
    return ", ".join(f"{n} {part}" for part, n in sorted(counts.items(), key=lambda pn: SMOKE_REASONS.index(pn[0])))


def _record_matches(rec: dict, run: dict, terms: dict[str, str]) -> bool:
    for key in _RECORD_KEYS & terms.keys():
        value = rec.get(key)
        if key == "dataset":
            value = dataset_name(rec)
        if key == "device" and value is None:
            value = ((run.get("fingerprint") or {}).get("settings") or {}).get("device")
        if value is None or not fnmatch.fnmatchcase(str(value), terms[key]):
            return False
    return True


# ------------------------------------------------------------------------------------------
# What a record says about itself
# ------------------------------------------------------------------------------------------

def metric_value(rec: dict, metric: str) -> float | None:
    """A record's value for ``metric`` in the claim's unit: latency as the median in ms; accuracy records
    store percentages, as the claims do."""
    keys = {"latency_ms": ("latency_ms", "latency_median_ms", "latency_ms_median", "median_ms"),
            "throughput": ("throughput", "clips_per_s", "throughput_clips_s"),
            "memory_gb": ("memory_gb", "peak_memory_gb")}.get(metric, (metric,))
    for key in keys:
        v = rec.get(key)
        if isinstance(v, dict):
            v = v.get("median", v.get("value"))
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:  # not NaN
            return float(v)
    return None


def normalise_dataset(name: str) -> str:
    """A dataset name as the registry spells it: 'K400', 'sth-sth-v1' -> 'kinetics400', 'ssv1'."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return _DATASET_ALIASES.get(key, key)


def dataset_name(rec: dict) -> str | None:
    ds = rec.get("dataset")
    if isinstance(ds, dict):
        ds = ds.get("name") or ds.get("format")
    return normalise_dataset(ds) if isinstance(ds, str) and ds else None


def dataset_fingerprint(rec: dict, run: dict | None = None) -> dict | str | None:
    for src in (rec, run or {}):
        fp = src.get("dataset_fingerprint")
        if fp:
            return fp
    ds = rec.get("dataset")
    return ds if isinstance(ds, dict) else None


def is_synthetic(rec: dict, run: dict | None = None) -> bool:
    """Measured on data written by `tembench data synth`: the record carries its summary (``synthetic``),
    or the data root (of the record or of the run's parameters) still holds the marker file."""
    if rec.get("synthetic"):
        return True
    ds = rec.get("dataset")
    if "synth" in (json.dumps(ds, default=str).lower() if ds is not None else ""):
        return True
    from tembench.data.synth import MARKER

    roots = (rec.get("data_root"), ((run or {}).get("params") or {}).get("data"))
    return any(isinstance(root, str) and root and (Path(root) / MARKER).is_file() for root in roots)


def is_random_init(rec: dict) -> bool:
    weights = rec.get("weights")
    return rec.get("randomly_initialised") is True or (isinstance(weights, str) and weights.startswith("random init"))


def is_accuracy(rec: dict, run: dict | None = None) -> bool:
    return (run or {}).get("kind") == "accuracy" or any(metric_value(rec, m) is not None for m in ACCURACY_METRICS)


def smoke_reason(rec: dict, run: dict | None = None) -> str:
    """Why an accuracy record cannot stand beside a paper's number ('random init', 'weights not recorded',
    'synthetic data', joined by ', '), or '' for a trained model on real data and for any other record."""
    if not is_accuracy(rec, run):
        return ""
    reasons = []
    if is_random_init(rec):
        reasons.append("random init")
    elif "randomly_initialised" not in rec and not rec.get("checkpoint") and not rec.get("weights"):
        reasons.append("weights not recorded")
    if is_synthetic(rec, run):
        reasons.append("synthetic data")
    return ", ".join(reasons)


def run_command(run: dict) -> str:
    """The command that made a run, as a shell line, and its id: 'tembench eval ...  # run ID'."""
    cmd = run.get("command")
    if isinstance(cmd, list):
        cmd = shlex.join(str(c) for c in cmd)
        cmd = re.sub(r"^\S*/tembench(?=\s|$)", "tembench", cmd)
    return f"{cmd}  # run {run.get('run_id', '?')}" if cmd else f"run {run.get('run_id', '?')}"
