"""The meta-device counter against fvcore's real-forward FlopCountAnalysis.

Every ResNet-family model at 2 frames and 64x64 must give the same total under ``fvcore-legacy``
(what fvcore 0.1.5 reports on PyTorch 2.x).
"""
import logging

import pytest
import torch

from tembench.cost import count_spec
from tembench.models.build import build_from_spec

from conftest import resnet_variants

fvcore_nn = pytest.importorskip("fvcore.nn")


def fvcore_total(model, x):
    analysis = fvcore_nn.FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    return analysis.total()


@pytest.mark.parametrize("spec", [v for v in resnet_variants() if not v.is_ensemble], ids=lambda v: v.id)
def test_equal_to_fvcore_on_a_real_forward(spec):
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.manual_seed(0)
    model = build_from_spec(spec, frames=2, num_classes=10).eval()
    x = torch.randn(1, 3, 2, 64, 64)
    with torch.no_grad():
        expected = fvcore_total(model, x)
    ours = count_spec(spec, frames=2, size=64, num_classes=10, convention="fvcore-legacy").macs
    assert ours == expected


def test_the_cli_prints_both_totals_side_by_side(capsys):
    from conftest import run_cli

    code, out, err = run_cli(capsys, "profile", "tsn/tsn-r50", "--cross-check", "fvcore", "--frames", "2",
                             "--format", "json")
    (row,) = __import__("json").loads(out)
    assert code == 0 and row["equal"] and row["tembench_macs"] == row["fvcore_macs"] > 0
    assert (row["frames"], row["input_size"]) == (2, 64) and "1 of 1 variant equal to fvcore" in err


def test_a_difference_names_the_operators(monkeypatch):
    """When the totals differ, the unpaired operators of each side say where."""
    from tembench.cost import crosscheck
    from tembench.registry import registry

    real = crosscheck.count_spec

    def one_conv_less(*a, **k):
        r = real(*a, **k)
        r.by_operator = {**r.by_operator, "convolution": r.by_operator["convolution"] - 1000}
        r.macs -= 1000
        return r

    monkeypatch.setattr(crosscheck, "count_spec", one_conv_less)
    row = crosscheck.fvcore_crosscheck(registry().get("tsn/tsn-r18"), frames=2)
    assert not row["equal"] and row["fvcore_macs"] - row["tembench_macs"] == 1000
    assert "tembench convolution" in row["differing_ops"] and "fvcore conv" in row["differing_ops"]
