"""CLIP ViT visual towers: parameter counts, per-frame counts, CLIP's key names, attention written
with explicit matmuls (same result as nn.MultiheadAttention), and fvcore's real-forward count as a
cross-check on a tiny tower."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from tembench.cost.conventions import CONVENTIONS
from tembench.cost.counter import count_ops
from tembench.models import clip_video
from tembench.models.backbones.clip_vit import CONFIGS, Attention, VisionTransformer, clip_vit

# (params of the visual tower, fvcore multiply-adds per frame with attention counted; DESIGN.md)
KNOWN = {
    "vit-b32": (87_849_216, 4.414e9),
    "vit-b16": (86_192_640, 17.582e9),
    "vit-l14": (303_966_208, 81.077e9),
    "vit-l14-336": (304_293_888, 191.105e9),
}


def _count(model: nn.Module, shape, convention: str = "fvcore") -> int:
    counts = count_ops(model, torch.empty(*shape, device="meta"))
    conv = CONVENTIONS[convention]
    return sum(n for module, _, category, n in counts.items() if conv.counts(module, category))


@pytest.mark.parametrize("name", list(KNOWN))
def test_tower_params_and_per_frame_count(name):
    params, macs = KNOWN[name]
    res = CONFIGS[name].resolution
    with torch.device("meta"):
        tower = clip_vit(name)
    assert sum(p.numel() for p in tower.parameters()) == params
    measured = _count(tower, (1, 3, res, res))
    assert abs(measured - macs) / macs < 0.005, (name, measured)


def test_clip_names_and_aliases():
    with torch.device("meta"):
        tower = clip_vit("ViT-B/16")
    keys = set(tower.state_dict())
    expected = {"conv1.weight", "class_embedding", "positional_embedding", "ln_pre.weight", "ln_pre.bias",
                "ln_post.weight", "ln_post.bias", "proj"}
    for i in range(12):
        p = f"transformer.resblocks.{i}."
        expected |= {p + k for k in ("attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                                     "attn.out_proj.bias", "ln_1.weight", "ln_1.bias", "mlp.c_fc.weight",
                                     "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias", "ln_2.weight",
                                     "ln_2.bias")}
    assert keys == expected
    assert tower.state_dict()["positional_embedding"].shape == (197, 768)
    assert tower.state_dict()["proj"].shape == (768, 512)


def test_attention_equals_multihead_attention():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(32, 4).eval()
    nn.init.normal_(mha.in_proj_bias)
    ours = Attention(32, 4).eval()
    ours.load_state_dict(mha.state_dict())
    x = torch.randn(7, 3, 32)  # (L, N, D)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), mha(x, x, x, need_weights=False)[0], rtol=1e-5, atol=1e-5)


def test_attention_matmuls_are_seen_as_bmm():
    with torch.device("meta"):
        tower = clip_vit("vit-b16")
    counts = count_ops(tower, torch.empty(1, 3, 224, 224, device="meta"))
    bmm = sum(n for m, _, c, n in counts.items() if c == "bmm")
    assert bmm == 12 * 2 * 197 * 197 * 768  # q @ k^T and attn @ v, 12 blocks
    assert all(m.endswith(".attn") for m, _, c, n in counts.items() if c == "bmm")
    assert not any(c == "sdpa" for _, _, c, _ in counts.items())


def test_no_attention_convention_leaves_out_exactly_the_attention_subblocks():
    with torch.device("meta"):
        tower = clip_vit("vit-b16")
    counts = count_ops(tower, torch.empty(1, 3, 224, 224, device="meta"))
    conv = CONVENTIONS["no-attention"]
    left_out = {m for m, _, c, _ in counts.items() if not conv.counts(m, c)}
    assert left_out == {f"transformer.resblocks.{i}.{s}" for i in range(12) for s in ("attn", "attn.out_proj")}
    attn = 12 * (197 * 768 * 2304 + 2 * 197 * 197 * 768 + 197 * 768 * 768)
    assert _count(tower, (1, 3, 224, 224)) - _count(tower, (1, 3, 224, 224), "no-attention") == attn


def _tiny_tower() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(width=64, layers=2, patch=8, resolution=32, embed_dim=16).eval()


def test_fvcore_real_forward_agrees_on_a_tiny_tower():
    fvcore_nn = pytest.importorskip("fvcore.nn")
    tower = _tiny_tower()
    x = torch.randn(2, 3, 32, 32)
    analysis = fvcore_nn.FlopCountAnalysis(tower, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    fv = analysis.total()
    with torch.device("meta"):
        meta_tower = VisionTransformer(width=64, layers=2, patch=8, resolution=32, embed_dim=16)
    assert _count(meta_tower, x.shape) == fv
    assert _count(meta_tower, x.shape, "fvcore-legacy") == fv  # explicit matmuls: nothing hidden


def test_other_input_sizes_resize_the_positional_embedding():
    tower = _tiny_tower()
    with torch.no_grad():
        out = tower(torch.randn(1, 3, 48, 48))  # 6x6 grid instead of 4x4
    assert out.shape == (1, 16) and torch.isfinite(out).all()


def test_video_wrapper_is_the_frame_mean_of_the_tower():
    torch.manual_seed(0)
    model = clip_video.VideoCLIP(_tiny_tower(), 16, frames=3, num_classes=5).eval()
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        feats = model.visual(x.transpose(1, 2).reshape(6, 3, 32, 32)).view(2, 3, 16).mean(1)
        torch.testing.assert_close(model(x), model.fc(feats))
    assert set(k.split(".")[0] for k in model.state_dict()) == {"visual", "fc"}


def test_plain_clip_video_build_counts_frames_times_tower():
    with torch.device("meta"):
        model = clip_video.build("vit-b32", None, {}, 4, 400)
    per_frame = KNOWN["vit-b32"][1]
    head = 512 * 400
    assert abs(_count(model, (1, 3, 4, 224, 224)) - (4 * per_frame + head)) / (4 * per_frame) < 0.005
