"""Where a claim's measured number comes from, and the cost the plots draw; nothing here judges.

* Cost (GFLOPs per view, params): counted on the meta device (:func:`tembench.cost.count_spec`) under the
  claim's own protocol (frames, input size, classes) and counting convention (:func:`count_claim`,
  :func:`measure_claim`). The judge (:func:`tembench.report.claims.judge`) may ask for the same quantity
  counted otherwise (another convention, input size or head) to explain a mismatch: :attr:`Measurement.recount`.
* Accuracy and runtime: read from stored runs (:func:`measured_from_runs`).
* The plots' cost (:func:`gflops_per_view`, :func:`temporal_cost`): counted by the caller, never by the plots.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from tembench.registry import ACCURACY_METRICS, COST_METRICS, RUNTIME_METRICS, Claim, VariantSpec
from tembench.results.runset import RunSet, dataset_name, metric_value, normalise_dataset, run_command, smoke_reason


@dataclass(frozen=True)
class Measurement:
    """A claim's metric as counted here: under the claim's convention, under ``fvcore``, and on demand otherwise."""

    value: float | None  # None: a metric the meta device does not count (accuracy, runtime)
    fvcore: float | None  # the same quantity under the default convention, for comparison
    recount: Callable[..., float | None] | None = None  # recount(convention=, size=, classes=) -> value


def count_claim(spec: VariantSpec, claim: Claim, convention: str | None = None, size: int | None = None,
                classes: int | None = None) -> float | None:
    """The claim's cost metric (GFLOPs per view or params in M) under its protocol, or under another
    ``convention``, input ``size`` or number of ``classes``; None for a metric that is not a cost."""
    if claim.metric not in COST_METRICS:
        return None
    from tembench.cost import count_spec

    r = count_spec(spec, frames=None if spec.is_ensemble else claim.frames, size=size or claim.input_size,
                   convention=convention or claim.convention, num_classes=classes or claim.classes,
                   temporal_baseline=False)
    return r.macs / 1e9 if claim.metric == "gflops" else r.params / 1e6


def measure_claim(spec: VariantSpec, claim: Claim) -> Measurement:
    """What the judge needs of a cost claim: the value under its convention, the fvcore value, a recount."""
    value = count_claim(spec, claim)
    fvcore = count_claim(spec, claim, "fvcore") if claim.convention != "fvcore" else value
    return Measurement(value, fvcore, partial(count_claim, spec, claim))


def gflops_per_view(spec: VariantSpec, frames: int | None) -> float:
    """GFLOPs per view (fvcore) at ``frames`` (None: the variant's default; an ensemble's members' own)."""
    from tembench.cost import count_spec

    return count_spec(spec, frames=None if spec.is_ensemble else frames, temporal_baseline=False).macs / 1e9


def temporal_cost(spec: VariantSpec):
    """The :class:`~tembench.cost.CostResult` of ``spec`` at its defaults, the temporal module's share included."""
    from tembench.cost import count_spec

    return count_spec(spec)


# ------------------------------------------------------------------------------------------
# Accuracy and runtime: the stored record that answers a claim
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunMeasurement:
    value: float | None
    note: str  # what differs from the paper's setting (protocol, hardware), or why it is not compared
    command: str  # the command behind the number, with its run id
    smoke: str  # why the record only shows that the pipeline runs (random init, synthetic data, ...), or ""


def _views(rec: dict) -> str | None:
    v = rec.get("views")
    return v if isinstance(v, str) else None


def measured_from_runs(claim: Claim, runs: RunSet) -> RunMeasurement | None:
    """The newest stored record that measured this claim's metric (None when none did); a record that only
    shows the pipeline runs (there only with ``include_smoke``) answers only when no other does, and its
    smoke reason says why it is not compared with the paper."""
    if claim.metric not in ACCURACY_METRICS and claim.metric not in RUNTIME_METRICS:
        return None
    best = None
    for rec, run in runs.with_metric(claim.metric):
        if rec.get("variant") != claim.variant:
            continue
        smoke = ""
        if claim.metric in ACCURACY_METRICS:
            if claim.dataset and dataset_name(rec) != normalise_dataset(claim.dataset):
                continue
            smoke = smoke_reason(rec, run)  # a paper's number is only compared with trained weights on real data
        frames = rec.get("frames")
        if isinstance(frames, int) and frames != claim.frames:
            continue
        rank = (not smoke, _views(rec) in (None, claim.protocol))
        if best is None or rank >= best[0]:
            best = (rank, rec, run, smoke)
    if best is None:
        return None
    (_, exact), rec, run, smoke = best
    notes = []
    if not exact:
        notes.append(f"run protocol {_views(rec)}, paper {claim.protocol}")
    if claim.metric in RUNTIME_METRICS:
        hw = (run.get("fingerprint") or {}).get("hardware") or {}
        gpus = hw.get("gpus") or []
        machine = (gpus[0].get("name") if gpus and isinstance(gpus[0], dict) else None) or hw.get("cpu") or "?"
        notes.append(f"measured on {rec.get('device', '?')} ({machine}), batch {rec.get('batch', 1)}; "
                     "the paper's hardware differs")
    if smoke:
        notes.insert(0, f"{smoke}: only shows that the pipeline runs, not compared with the paper")
    return RunMeasurement(metric_value(rec, claim.metric), "; ".join(notes), run_command(run), smoke)
