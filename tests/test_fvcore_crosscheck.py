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
