"""UniFormer video backbones: structure, official names, cost against the published numbers, and a
real forward of every registered UniFormer/EMIM variant."""
from __future__ import annotations

import pytest
import torch

from tembench.cost import count, count_spec
from tembench.models.build import build_from_spec
from tembench.models import uniformer_video
from tembench.models.backbones.uniformer import Attention, CBlock, SABlock, uniformer
from tembench.registry import registry


# Per-view GFLOPs (fvcore, stride-2 stem, 224x224), seed-code-digest §0.1 / DESIGN.md; within 0.5%.
PUBLISHED = {
    ("uniformer/uniformer-s", 8): 17.61, ("uniformer/uniformer-s", 16): 41.76, ("uniformer/uniformer-s", 32): 109.63,
    ("uniformer/uniformer-b", 8): 40.23, ("uniformer/uniformer-b", 16): 96.74, ("uniformer/uniformer-b", 32): 258.63,
}


@pytest.mark.parametrize("variant, frames", list(PUBLISHED))
def test_uniformer_gflops_per_view(variant, frames):
    r = count(variant, frames=frames, size=224)
    assert abs(r.macs / 1e9 - PUBLISHED[variant, frames]) / PUBLISHED[variant, frames] < 0.005
    assert r.by_category["bmm"] > 0  # global attention matmuls are counted
    assert "sdpa" not in r.by_category and "einsum" not in r.by_category


def test_uniformer_params_exact():
    assert count("uniformer/uniformer-s", num_classes=400).params == 21_400_400
    assert count("uniformer/uniformer-b", num_classes=400).params == 49_813_200
    assert count("uniformer/uniformer-s", num_classes=174).params == 21_400_400 - 226 * 513


def test_stride_one_stem_doubles_time():
    assert count("emim/uniformer-s16-t1").macs == count("uniformer/uniformer-s", frames=32, num_classes=174).macs
    with torch.device("meta"):
        m2 = uniformer("uniformer-s", stem_stride=2)
        m1 = uniformer("uniformer-s", stem_stride=1)
    x = torch.empty(1, 3, 8, 64, 64, device="meta")
    assert m2.patch_embed1(x).shape[2] == 4 and m1.patch_embed1(x).shape[2] == 8
    with pytest.raises(ValueError):
        uniformer("uniformer-s", stem_stride=3)


def test_official_names_and_block_types():
    with torch.device("meta"):
        m = uniformer("uniformer-b", num_classes=400)
    assert [len(m.blocks1), len(m.blocks2), len(m.blocks3), len(m.blocks4)] == [5, 8, 20, 7]
    assert all(isinstance(b, CBlock) for b in (*m.blocks1, *m.blocks2))
    assert all(isinstance(b, SABlock) and isinstance(b.attn, Attention) for b in (*m.blocks3, *m.blocks4))
    sd = m.state_dict()
    expected = {
        "patch_embed1.proj.weight": (64, 3, 3, 4, 4), "patch_embed2.proj.weight": (128, 64, 1, 2, 2),
        "patch_embed4.norm.weight": (512,), "blocks1.0.pos_embed.weight": (64, 1, 3, 3, 3),
        "blocks1.0.attn.weight": (64, 1, 5, 5, 5), "blocks2.7.mlp.fc1.weight": (512, 128, 1, 1, 1),
        "blocks1.0.norm1.running_var": (64,), "blocks3.19.attn.qkv.weight": (960, 320),
        "blocks4.6.attn.proj.weight": (512, 512), "blocks4.6.mlp.fc2.weight": (512, 2048),
        "norm.running_mean": (512,), "head.weight": (400, 512),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key


def test_plain_checkpoint_loads_strictly():
    # A UniFormer state dict (pretrained .pth / SlowFast model_state) has exactly these names.
    src = uniformer("uniformer-s", num_classes=174)
    dst = uniformer_video.build("uniformer-s", None, {}, 8, 174)
    result = dst.load_state_dict({"model_state": src.state_dict()}["model_state"], strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_attention_is_explicit_and_exact():
    torch.manual_seed(0)
    attn = Attention(64, 2).eval()
    x = torch.randn(2, 10, 64)
    q, k, v = attn.qkv(x).view(2, 10, 3, 2, 32).permute(2, 0, 3, 1, 4)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 10, 64)
    torch.testing.assert_close(attn(x), attn.proj(ref), rtol=1e-5, atol=1e-6)


def test_options_are_validated():
    assert uniformer_video.option_defaults(None) == {"stem_stride": 2}
    assert uniformer_video.option_defaults("emim")["stem_stride"] == 1
    with pytest.raises(ValueError):
        uniformer_video.build("uniformer-s", "emim", {"replacement": "E-X"}, 8, 10)
    with pytest.raises(ValueError):
        uniformer_video.build("uniformer-s", None, {"neighbourhood": 3}, 8, 10)


def _uniformer_specs():
    return [s for s in registry().select() if s.arch == "uniformer"]


def test_registry_has_the_uniformer_and_emim_variants():
    ids = {s.id for s in _uniformer_specs()}
    assert {"uniformer/uniformer-s", "uniformer/uniformer-b", "emim/emim-s16", "emim/emim-b16", "emim/emim-b32",
            "emim/uniformer-s16-t1"} <= ids
    tables = registry().tables
    for n in (1, 3, 4, 5, 6, 7, 8, 9, 11):
        assert f"EMIM Table {n}" in tables
        assert any(c.source == f"EMIM Table {n}" for s in _uniformer_specs() for c in s.claims), n


def _quick_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Materialise a meta-built model with random weights (faster than the full initialisation)."""
    model.to_empty(device="cpu")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.05 if p.dim() > 1 else 0.01)
        for name, b in model.named_buffers():
            b.fill_(1 if name.endswith("running_var") else 0)
    return model


def test_forward_uses_real_initialisation():
    torch.manual_seed(0)
    model = uniformer_video.build("uniformer-s", "emim", {}, 2, 7).eval()
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 2, 64, 64))).all()


@pytest.mark.parametrize("spec", _uniformer_specs(), ids=lambda s: s.id)
def test_forward_two_frames_small_input(spec):
    torch.manual_seed(0)
    with torch.device("meta"):
        model = build_from_spec(spec, frames=2, num_classes=7)
    model = _quick_weights(model).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 2, 32, 32))
    assert logits.shape == (1, 7)
    assert torch.isfinite(logits).all()


@pytest.mark.serial  # a wall-clock budget: runs alone (see tests/conftest.py)
def test_counts_are_fast_enough_for_the_whole_registry():
    # Budget: a whole-registry count at 8/16/32 frames in 60 s; the largest model, uncached, well under 1 s.
    import time

    spec = registry().get("emim/emim-b32")
    count_spec(spec, frames=8, size=112)  # warm up the dispatcher
    start = time.perf_counter()
    count_spec(spec, frames=31, size=224, num_classes=11, temporal_baseline=False)
    assert time.perf_counter() - start < 3.0
