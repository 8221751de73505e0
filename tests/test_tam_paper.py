"""TAM paper Tables 2-4 against the measured cost (the registry's claims), judged by the one judge
(:func:`tembench.report.claims.judge`): the printed digits' interval, widened by the counting slack."""
import pytest

from tembench import count
from tembench.report.claims import evaluate_claims

TEINET_PARAMS = ("tam/teinet-r50", "params")  # known mismatch: see the variant's notes


def table(source):
    return evaluate_claims(source=source)


def test_table2_has_13_rows_in_the_papers_order():
    from tembench.report.tables import build_table

    assert [r.label for r in build_table("TAM Table 2").rows] == [
        "C2D", "C2D-Pool", "C2D-TConv", "C2D-TIM", "I3D 3x1x1", "TSM*", "TEINet*", "NL C2D",
        "Global branch", "Local branch", "Global branch + SE", "TANet-R", "TANet"]


@pytest.mark.parametrize("metric", ["gflops", "params"])
def test_table2_rows_match(metric):
    """Table 2 prints two decimals: each claim's interval is 0.01 wide (43.02: [43.015, 43.025))."""
    rows = [r for r in table("TAM Table 2") if r.metric == metric]
    assert len(rows) == 13 and all(r.interval[1] - r.interval[0] == pytest.approx(0.01) for r in rows)
    for r in rows:
        if (r.variant, r.metric) == TEINET_PARAMS:
            # no natural MEM layout gives the cited 25.11 M; reported with where the params go, not hidden
            assert r.status == "mismatch" and "no natural MEM layout" in r.diagnosis and "layer4" in r.breakdown
            continue
        if r.row == "NL C2D" and metric == "gflops":
            assert r.status == "match, convention no-bmm (fitted)"
            continue
        assert r.status == "match", (r.row, r.claimed, r.measured)


def test_printed_trailing_zeros_are_kept():
    """28.10 and 43.00 are printed with two decimals; TOML would read them as 28.1 and 43.0."""
    rows = {(r.row, r.metric): r for r in table("TAM Table 2")}
    assert rows[("C2D-TConv", "params")].printed == "28.10"
    assert rows[("Global branch", "gflops")].interval == (42.995, 43.005)


def test_tanet_and_teinet_rows_of_tables_3_and_4_match():
    for source in ("TAM Table 3", "TAM Table 4"):
        rows = [r for r in table(source) if r.metric == "gflops" and ("TANet" in r.row or "TEINet" in r.row)]
        assert rows and all(r.tolerance is None for r in rows)
        for r in rows:
            assert r.status == "match", (source, r.row, r.claimed, r.measured)
    (teinet,) = [r for r in table("TAM Table 3") if r.row == "TEINet R50 16f" and r.metric == "gflops"]
    assert teinet.input_size == 256 and teinet.printed == "86" and teinet.protocol == "16x3x10"


def test_known_exact_counts():
    assert count("tam/tanet-r50", frames=8, size=224, num_classes=174).params == 25_127_246
    assert count("tsn/tsn-r50", frames=8, size=224, num_classes=1000).macs == 32_892_100_608
    c2d = count("tam/c2d-r50")
    assert c2d.params == 24_327_632 and round(c2d.macs / 1e9, 3) == 42.946
    assert count("tam/tanet-r50").params == 25_590_320


def test_nl_c2d_published_count_leaves_out_the_affinity_matmuls():
    full = count("tam/nl-c2d-r50")
    nobmm = count("tam/nl-c2d-r50", convention="no-bmm")
    assert full.macs > nobmm.macs
    assert abs(nobmm.macs / 1e9 - 64.49) / 64.49 < 0.005
    r = next(r for r in table("TAM Table 2") if r.row == "NL C2D" and r.metric == "gflops")
    assert "full fvcore count" in r.diagnosis and "fitted by us" in r.diagnosis and "thop" in r.convention_source


def test_tsm_16f_is_judged_by_its_printed_digits_not_truncation():
    """65 G for TSM 16f at 224 (as 33 G for 8f): the count lies just above [64.5, 65.5), within the slack
    for counting differences; no 'truncated' diagnosis (the same source rounds 32.88 up to 33)."""
    for source, row in (("TAM Table 4", "TSM 16f"), ("TAM Table 4", "TSM 8f")):
        r = next(r for r in table(source) if r.row == row and r.metric == "gflops")
        assert r.status == "match" and "truncated" not in r.diagnosis, (row, r.measured)


def test_ensemble_cost_is_the_sum_of_its_members():
    en = count("tam/tanet-r50-en")
    parts = [count("tam/tanet-r50", frames=t, size=224, num_classes=174).macs for t in (8, 16)]
    assert en.macs == sum(parts)
