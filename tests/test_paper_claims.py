"""Every registered claim, judged by the one judge (:func:`tembench.report.claims.judge`) with its own tolerance.

The judge is pure: a claim and a measured value in, a verdict out; it never counts (the measuring is
:mod:`tembench.report.measure`), and every comparison with a paper's number goes through it.
"""
import pytest

from tembench.registry import ACCURACY_METRICS, COST_METRICS, RUNTIME_METRICS, registry
from tembench.report.claims import (ACCURACY_TOLERANCE_PT, STATUS_MATCH, STATUS_MISMATCH, STATUS_UNMEASURED,
                                    evaluate_claims, judge)

CLAIMS = registry().claims()
PAPERS = sorted({c.paper for c in CLAIMS})


def _cost_claims():
    return [c for c in CLAIMS if c.metric in COST_METRICS]


def test_every_cost_claim_is_judged_with_its_own_tolerance(monkeypatch):
    import tembench.cost

    monkeypatch.setattr(tembench.cost, "count_spec", lambda *a, **k: pytest.fail("the judge counted"))
    claims = _cost_claims()
    assert claims and len({c.tolerance for c in claims}) > 1
    for c in claims:
        for sign in (1, -1):
            inside = judge(c, c.value * (1 + sign * 0.999 * c.tolerance), fvcore=c.value)
            outside = judge(c, c.value * (1 + sign * 1.001 * c.tolerance), fvcore=c.value)
            assert inside.status == STATUS_MATCH, (c.variant, c.source, c.row, c.tolerance)
            assert outside.status == STATUS_MISMATCH, (c.variant, c.source, c.row, c.tolerance)
            assert outside.diff == pytest.approx(sign * 1.001 * c.tolerance)


def test_accuracy_is_judged_in_points_and_runtime_never():
    acc = [c for c in CLAIMS if c.metric in ACCURACY_METRICS]
    runtime = [c for c in CLAIMS if c.metric in RUNTIME_METRICS]
    assert acc and runtime
    for c in acc:
        assert judge(c, c.value - 0.99 * ACCURACY_TOLERANCE_PT).status == STATUS_MATCH
        v = judge(c, c.value + 1.01 * ACCURACY_TOLERANCE_PT)
        assert v.status == STATUS_MISMATCH and v.diff == pytest.approx(1.01 * ACCURACY_TOLERANCE_PT)
    for c in runtime:
        v = judge(c, 2 * c.value)
        assert v.status == "" and v.diff == pytest.approx(1.0)  # another machine: shown, never judged
    assert all(judge(c, None).status == STATUS_UNMEASURED for c in CLAIMS)


def test_a_mismatch_is_explained_by_what_the_caller_recounts():
    """Without a recount the judge explains only what needs no other count; with one, it tries the other
    conventions, input sizes and heads in a fixed order and names the first that fits."""
    c = next(c for c in _cost_claims() if c.metric == "gflops" and c.convention == "fvcore" and c.views > 1)
    assert "total over" in judge(c, c.value / c.views).diagnosis
    assert "2 FLOPs per multiply-add" in judge(c, c.value / 2).diagnosis
    asked = []

    def recount(convention=None, size=None, classes=None):
        asked.append((convention, size, classes))
        return c.value if convention == "no-bmm" else 3 * c.value

    v = judge(c, 1.5 * c.value, fvcore=1.5 * c.value, recount=recount)
    assert v.status == STATUS_MISMATCH and "matches under convention 'no-bmm'" in v.diagnosis
    assert asked[-1] == ("no-bmm", None, None) and all(a[1:] == (None, None) for a in asked)
    assert judge(c, 1.5 * c.value).diagnosis == c.note  # nothing recounted: only the registry's note


@pytest.mark.parametrize("paper", PAPERS)
def test_every_measured_mismatch_is_explained(paper):
    """Counted under each claim's protocol and convention and judged: a cost claim matches within its
    tolerance, or its mismatch carries a diagnosis (the registry's note or an automatic explanation)."""
    rows = evaluate_claims(paper)
    cost = [r for r in rows if r.metric in COST_METRICS]
    assert cost and all(r.measured is not None for r in cost)
    assert all(r.status == STATUS_UNMEASURED for r in rows if r.metric not in COST_METRICS)
    for r in cost:
        assert r.status == (STATUS_MATCH if abs(r.rel_err) <= r.tolerance else STATUS_MISMATCH)
        assert r.status == STATUS_MATCH or r.diagnosis, (r.source, r.row, r.metric, r.claimed, r.measured)
