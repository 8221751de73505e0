"""Where a claim's measured number comes from, and the cost the plots draw; nothing here judges.

* Cost (GFLOPs per view, params): counted on the meta device (:func:`tembench.cost.count_spec`) under the
  claim's own protocol (frames, input size, classes) and counting convention (:func:`count_claim`,
  :func:`measure_claim`). To test an explanation of a mismatch the judge
  (:func:`tembench.report.claims.judge`) may ask for the same quantity at another input size or with
  another head: :attr:`Measurement.recount`, counted when asked, every time the claims are judged. Where
  the measured cost goes (:attr:`Measurement.breakdown`) is shown beside a mismatch.
* Accuracy and runtime: read from stored runs (:func:`measured_from_runs`).
* The plots' cost (:func:`gflops_per_view`, :func:`temporal_cost`): counted by the caller, never by the plots.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Callable

from tembench.registry import ACCURACY_METRICS, COST_METRICS, RUNTIME_METRICS, Claim, VariantSpec
from tembench.results.runset import RunSet, dataset_name, metric_value, normalise_dataset, run_command, smoke_reason


@dataclass(frozen=True)
class Measurement:
    """A claim's metric as counted here: under the claim's convention, under ``fvcore``, on demand at another
    input size or head (``recount``), and where it goes (``breakdown``)."""

    value: float | None  # None: a metric the meta device does not count (accuracy, runtime)
    fvcore: float | None  # the same quantity under the default convention, for comparison
    recount: Callable[..., float | None] | None = None  # recount(size=, classes=) -> value
    breakdown: Callable[[], str] | None = None  # where the measured value goes, per module (asked for a mismatch)


def _cost(spec: VariantSpec, claim: Claim, convention: str | None = None, size: int | None = None,
          classes: int | None = None):
    from tembench.cost import count_spec

    return count_spec(spec, frames=None if spec.is_ensemble else claim.frames, size=size or claim.input_size,
                      convention=convention or claim.convention, num_classes=classes or claim.classes,
                      temporal_baseline=False)


def count_claim(spec: VariantSpec, claim: Claim, convention: str | None = None, size: int | None = None,
                classes: int | None = None) -> float | None:
    """The claim's cost metric (GFLOPs per view or params in M) under its protocol, or under another
    ``convention``, input ``size`` or number of ``classes``; None for a metric that is not a cost."""
    if claim.metric not in COST_METRICS:
        return None
    r = _cost(spec, claim, convention, size, classes)
    return r.macs / 1e9 if claim.metric == "gflops" else r.params / 1e6


def measure_claim(spec: VariantSpec, claim: Claim) -> Measurement:
    """What the judge needs of a cost claim: the value under its convention, the fvcore value, a recount
    (each other size or head counted once), and the per-module breakdown. Nothing for a variant whose
    packages are not installed (``spec.missing``): its claims are not measured."""
    if spec.missing:
        return Measurement(None, None)
    value = count_claim(spec, claim)
    if value is None:
        return Measurement(None, None)
    fvcore = count_claim(spec, claim, "fvcore") if claim.convention != "fvcore" else value
    return Measurement(value, fvcore, lru_cache(maxsize=None)(partial(count_claim, spec, claim)),
                       partial(breakdown, spec, claim))


# ------------------------------------------------------------------------------------------
# Where a measured cost goes
# ------------------------------------------------------------------------------------------

def _collapsed(path: str) -> list[str]:
    """A module path without its repeat indices: ``visual.transformer.resblocks.3.attn`` -> [visual,
    transformer, resblocks, attn], so the twelve blocks' attentions add up to one entry."""
    return [p for p in path.split(".") if not p.isdigit()] if path else []


def module_shares(amounts: dict[str, float], top: int = 5, dominant: float = 0.6) -> list[tuple[str, float]]:
    """``amounts`` (per module path) grouped at the shallowest depth where no group holds more than
    ``dominant`` of the total, biggest first: at most ``top`` groups, then ``(rest)``."""
    total = sum(amounts.values())
    groups: Counter = Counter()
    for depth in range(1, 8):
        groups = Counter()
        for path, n in amounts.items():
            groups[".".join(_collapsed(path)[:depth]) or "(model)"] += n
        if not total or max(groups.values()) <= dominant * total:
            break
    ranked = groups.most_common()
    shown = [(k, v) for k, v in ranked[:top] if v]
    rest = sum(v for _, v in ranked[top:])
    return shown + ([("(rest)", rest)] if rest else [])


def _param_amounts(spec: VariantSpec, claim: Claim) -> dict[str, float]:
    from tembench.models.build import build_from_spec
    from tembench.models.meta import meta_build

    with meta_build():
        model = build_from_spec(spec, claim.frames, claim.classes)
    out: Counter = Counter()
    for name, p in model.named_parameters():
        out[name.rpartition(".")[0]] += p.numel()
    return dict(out)


def breakdown(spec: VariantSpec, claim: Claim) -> str:
    """Where the measured cost of ``claim`` goes, per module: ``"layer3 11.75 (36%), layer2 8.27 (25%), ..."``
    (GFLOPs under the claim's convention, or params in M; an ensemble's params are not broken down)."""
    if claim.metric == "gflops":
        amounts = {m: n / 1e9 for m, n in _cost(spec, claim).by_module.items()}
    elif claim.metric == "params" and not spec.is_ensemble:
        amounts = {m: n / 1e6 for m, n in _param_amounts(spec, claim).items()}
    else:
        return ""
    total = sum(amounts.values())
    parts = [f"{name} {v:.2f} ({100 * v / total:.0f}%)" for name, v in module_shares(amounts)] if total else []
    return ", ".join(parts)


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
