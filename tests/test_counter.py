"""The counter's per-operator formulas against hand-computed integers, and the known anchors."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tembench.cost.conventions import CONVENTIONS
from tembench.cost.counter import conv_macs, count_ops, meta_build


def total(counts, convention="fvcore"):
    conv = CONVENTIONS[convention]
    return conv.factor * sum(n for m, _, c, n in counts.items() if conv.counts(m, c))


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *x):
        return self.fn(*x)


def meta(*shape):
    return torch.empty(*shape, device="meta")


def test_conv_formula_counts_weight_times_output_positions():
    assert conv_macs((2, 3, 8, 8), (4, 3, 3, 3), (2, 4, 8, 8), False) == 2 * 4 * 3 * 9 * 64
    assert conv_macs((1, 4, 5, 5), (4, 2, 3, 3), (1, 2, 11, 11), True) == 4 * 2 * 9 * 25


def test_linear_bmm_and_norms_on_meta():
    lin = nn.Linear(16, 32, device="meta")
    assert total(count_ops(lin, meta(5, 7, 16))) == 5 * 7 * 16 * 32
    bmm = Fn(lambda a, b: torch.matmul(a, b))
    assert total(count_ops(bmm, (meta(3, 10, 16), meta(3, 16, 4)))) == 3 * 10 * 16 * 4
    # broadcast batch dims are counted in full (fvcore's matmul rule undercounts them)
    assert total(count_ops(bmm, (meta(10, 16), meta(4, 16, 16)))) == 4 * 10 * 16 * 16
    bn = nn.BatchNorm2d(4, device="meta")
    assert total(count_ops(bn, meta(2, 4, 5, 5))) == 2 * 2 * 4 * 25  # eval, affine: 2 per element
    ln = nn.LayerNorm(8, device="meta")
    assert total(count_ops(ln, meta(3, 8))) == 5 * 24
    gn = nn.GroupNorm(2, 4, affine=False, device="meta")
    assert total(count_ops(gn, meta(1, 4, 3, 3))) == 4 * 36


def test_pooling_upsample_and_free_ops():
    pool = Fn(lambda x: F.adaptive_avg_pool2d(x, 1))
    assert total(count_ops(pool, meta(2, 3, 7, 7))) == 2 * 3 * 49
    mean = Fn(lambda x: x.mean((-2, -1), keepdim=True))  # not adaptive pooling: free under fvcore
    assert total(count_ops(mean, meta(2, 3, 7, 7))) == 0
    up = Fn(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"))
    assert total(count_ops(up, meta(1, 2, 4, 4))) == 4 * 2 * 64
    c = count_ops(Fn(lambda x: torch.relu(x) + x.sigmoid()), meta(3, 3))
    assert total(c) == 0
    assert "add" in c.uncounted and "sigmoid" in c.uncounted and "relu" not in c.uncounted


def test_attention_is_counted_as_two_matmuls_except_in_legacy():
    sdpa = Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v))
    c = count_ops(sdpa, (meta(2, 4, 10, 8), meta(2, 4, 12, 8), meta(2, 4, 12, 6)))
    assert total(c) == 2 * 4 * 10 * 12 * (8 + 6)
    assert total(c, "fvcore-legacy") == 0
    assert total(c, "flops") == 2 * total(c)


def test_sdpa_counted_the_same_on_cpu_kernels():
    sdpa = Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v))
    q = torch.randn(1, 2, 5, 4)
    assert total(count_ops(sdpa, (q, q, q))) == 2 * 5 * 5 * 8


def test_einsum_counted_like_its_contraction():
    ein = Fn(lambda a, b: torch.einsum("bij,bjk->bik", a, b))
    assert total(count_ops(ein, (meta(2, 3, 4), meta(2, 4, 5)))) == 2 * 3 * 4 * 5


def test_resnet50_anchor_on_meta():
    from tembench.models.backbones.resnet import resnet

    with meta_build():
        model = resnet("resnet50")
    c = count_ops(model, meta(1, 3, 224, 224))
    assert total(c) == 4_111_512_576
    assert c.params == 25_557_032


def test_per_module_attribution_sums_to_total():
    from tembench import count

    r = count("tam/tanet-r50")
    assert sum(r.by_module.values()) == r.macs
    assert sum(r.by_operator.values()) == r.macs
    stages = r.module_totals(depth=1)
    assert set(stages) >= {"conv1", "layer1", "layer4", "fc"}
    tam = sum(n for m, n in r.by_module.items() if ".temporal" in m)
    assert tam > 0 and r.temporal_macs == pytest.approx(tam, rel=0.05)
