"""Equivalence with the official UniFormer and EMIM video models (PySlowFast code bases).

* UniFormer: Sense-X/UniFormer @ 52a0415e4e0dda880fab8ffbc710e4d8e171149d,
  ``video_classification/slowfast/models/uniformer.py`` (SpeicalPatchEmbed with temporal stride 2,
  PatchEmbed, CBlock, SABlock, Attention, Uniformer.forward).
* EMIM: PeiqinZhuang/EMIM @ f93d030346c853cd9ea938567cf2fff3bc1c3bcb,
  ``video_classification/slowfast/models/uniformer.py`` (the same network with a temporal stride 1
  stem and ``Attention`` of type ``extra_attn64`` in the even blocks of stages 3 and 4, CONTINUOUS_ATTN
  'lg'), whose local attention calls two CUDA kernels of ``video_classification/slowfast/nat_with_rpb``:

  - ``nattenqkrpb_cuda_kernel.cu``: for every query position (i, j) and window offset (ki, kj), the
    dot product over all channels of the query with the key at (i + ki, j + kj) of the key map padded
    by P//2 (the caller pads with 1e-6), plus ``rpb[head, ki, kj]``;
  - ``nattenav_cuda_kernel.cu``: the softmax-weighted sum of the padded value map over the same
    window, written into a buffer made by ``torch::zeros``. Its launch gives every head 8 threads
    along y (``DIM_DIV_DIMUNROLL_FORWARD``) and every thread 4 channels (``DIMUNROLL_FORWARD``) from
    4 x (y mod 8): channels 0-31 of each head are computed, the rest stay zero. UniFormer's heads have
    64 channels.

  The reference below does both in plain PyTorch with that arithmetic, the 32-channel limit included;
  ``released=False`` gives the full sum over all channels for comparison.

Checkpoints: PySlowFast ``.pyth`` = ``{"epoch", "model_state", "optimizer_state", "cfg"}`` with the model's
own names (saved from ``model.module``). The official EMIM attention hard-codes T = 16 (extra_attn64) and
square maps; the tests use 16 frames and 64 x 64 crops. See tests/test_official_clip.py for the method.
"""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from official import bn, perturbed, randomize_, rel_diff

from tembench.evaluate.checkpoint import load_checkpoint
from tembench.models.build import build_model
from tembench.models.temporal.emim import EMIMAttention
from tembench.registry import get_variant

TOL = 1e-5
CLASSES = 6
KERNEL_CHANNELS = 32  # channels per head the released weighted-sum kernel computes


def ln(x, sd, p, eps):
    return F.layer_norm(x, x.shape[-1:], sd[f"{p}.weight"], sd[f"{p}.bias"], eps)


def linear(x, sd, p):
    return F.linear(x, sd[f"{p}.weight"], sd[f"{p}.bias"])


def conv3d(x, sd, p, **kw):
    return F.conv3d(x, sd[f"{p}.weight"], sd[f"{p}.bias"], **kw)


# ------------------------------------------------------------------------------------------------
# The two NATTEN-derived kernels of the EMIM release, in plain PyTorch
# ------------------------------------------------------------------------------------------------

def natten_qk_rpb(q, k_padded, rpb):
    """q (..., heads, H, W, d), key map padded by P//2 (..., heads, H+P-1, W+P-1, d), rpb (heads, P, P)
    -> logits (..., heads, H, W, P*P), offset index ki * P + kj."""
    h, w = q.shape[-3:-1]
    p = rpb.shape[-1]
    out = [(q * k_padded[..., ki:ki + h, kj:kj + w, :]).sum(-1) + rpb[:, ki, kj].view(-1, 1, 1)
           for ki in range(p) for kj in range(p)]
    return torch.stack(out, dim=-1)


def natten_av(attn, v_padded, released=True):
    """Weights (..., heads, H, W, P*P) and the padded value map -> context (..., heads, H, W, d). The
    output starts at zero and, as released, only channels [0, 32) are accumulated."""
    h, w = attn.shape[-3:-1]
    p = round(attn.shape[-1] ** 0.5)
    d = v_padded.shape[-1]
    upto = min(KERNEL_CHANNELS, d) if released else d
    out = torch.zeros(attn.shape[:-1] + (d,), dtype=attn.dtype)
    for ki in range(p):
        for kj in range(p):
            out[..., :upto] += attn[..., ki * p + kj, None] * v_padded[..., ki:ki + h, kj:kj + w, :upto]
    return out


def official_emim_attention(x, sd, p, size, heads, released=True):
    """Attention(attn_type='extra_attn64').forward: tokens (B, T*H*W, C) -> (B, T*H*W, C).

    Slot t pairs the query of frame t with the key/value of frame t+1; the last slot repeats the pair
    (T-2, T-1). Key and value maps are padded by P//2 with 1e-6; q is scaled by d^-0.5. The raw
    logits (with rpb) feed motion_conv (Linear P²->4P², QuickGELU, Linear 4P²->d) per head; their
    softmax weighs the values (NATTEN AV kernel); context + motion -> proj."""
    t, h, w = size
    b, n, c = x.shape
    d = c // heads
    qkv = linear(x, sd, f"{p}.qkv").view(b, t, h, w, 3, heads, d).permute(4, 0, 1, 5, 2, 3, 6)
    q, k, v = qkv[0], qkv[1], qkv[2]  # (B, T, heads, H, W, d)
    q = torch.cat([q[:, :-1], q[:, -2:-1]], dim=1) * d ** -0.5
    k = torch.cat([k[:, 1:], k[:, -1:]], dim=1)
    v = torch.cat([v[:, 1:], v[:, -1:]], dim=1)
    rpb = sd[f"{p}.rpb"]
    r = rpb.shape[-1] // 2
    pad = lambda z: F.pad(z, (0, 0, r, r, r, r), value=1e-6)  # noqa: E731  (W then H of each map)
    logits = natten_qk_rpb(q, pad(k), rpb)
    motion = linear(logits, sd, f"{p}.motion_conv.0")
    motion = linear(motion * torch.sigmoid(1.702 * motion), sd, f"{p}.motion_conv.2")
    context = natten_av(logits.softmax(dim=-1), pad(v), released)
    out = (context + motion).permute(0, 1, 3, 4, 2, 5).reshape(b, n, c)
    return linear(out, sd, f"{p}.proj")


def official_global_attention(x, sd, p, heads):
    b, n, c = x.shape
    qkv = linear(x, sd, f"{p}.qkv").reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(dim=-1)
    return linear((attn @ v).transpose(1, 2).reshape(b, n, c), sd, f"{p}.proj")


# ------------------------------------------------------------------------------------------------
# The UniFormer network (Sense-X) and its EMIM version
# ------------------------------------------------------------------------------------------------

def patch_embed(x, sd, p, kernel_t, stride):
    x = conv3d(x, sd, f"{p}.proj", stride=stride, padding=(kernel_t // 2, 0, 0))
    b, c, t, h, w = x.shape
    x = ln(x.flatten(2).transpose(1, 2), sd, f"{p}.norm", 1e-5)
    return x.transpose(1, 2).reshape(b, c, t, h, w)


def cblock(x, sd, p):
    """CBlock: depthwise 3x3x3 position embedding; BN, 1x1x1, depthwise 5x5x5 'attention', 1x1x1; BN, MLP
    of 1x1x1 convolutions with GELU; all three residual."""
    c = x.shape[1]
    x = x + conv3d(x, sd, f"{p}.pos_embed", padding=1, groups=c)
    y = conv3d(bn(x, sd, f"{p}.norm1"), sd, f"{p}.conv1")
    x = x + conv3d(conv3d(y, sd, f"{p}.attn", padding=2, groups=c), sd, f"{p}.conv2")
    y = F.gelu(conv3d(bn(x, sd, f"{p}.norm2"), sd, f"{p}.mlp.fc1"))
    return x + conv3d(y, sd, f"{p}.mlp.fc2")


def sablock(x, sd, p, heads, released):
    """SABlock: depthwise 3x3x3 position embedding, then pre-LN (eps 1e-6) attention and MLP over all
    T*H*W tokens; EMIM's local attention where the checkpoint has its weights (``attn.rpb``)."""
    c = x.shape[1]
    x = x + conv3d(x, sd, f"{p}.pos_embed", padding=1, groups=c)
    b, c, t, h, w = x.shape
    tokens = x.flatten(2).transpose(1, 2)
    y = ln(tokens, sd, f"{p}.norm1", 1e-6)
    if f"{p}.attn.rpb" in sd:
        y = official_emim_attention(y, sd, f"{p}.attn", (t, h, w), heads, released)
    else:
        y = official_global_attention(y, sd, f"{p}.attn", heads)
    tokens = tokens + y
    y = linear(F.gelu(linear(ln(tokens, sd, f"{p}.norm2", 1e-6), sd, f"{p}.mlp.fc1")), sd, f"{p}.mlp.fc2")
    return (tokens + y).transpose(1, 2).reshape(b, c, t, h, w)


def official_uniformer(clips, sd, depths, stem_stride, released=True, dims=(64, 128, 320, 512)):
    """Uniformer.forward_features + head: stem Conv3d (3,4,4) with temporal stride ``stem_stride``
    (2 in UniFormer, 1 in EMIM), stride-2 patch embeddings, BatchNorm3d, global mean, Linear."""
    x = patch_embed(clips, sd, "patch_embed1", 3, (stem_stride, 4, 4))
    for stage, depth in enumerate(depths, 1):
        if stage > 1:
            x = patch_embed(x, sd, f"patch_embed{stage}", 1, (1, 2, 2))
        for i in range(depth):
            p = f"blocks{stage}.{i}"
            x = cblock(x, sd, p) if stage <= 2 else sablock(x, sd, p, dims[stage - 1] // 64, released)
    x = bn(x, sd, "norm")
    return linear(x.flatten(2).mean(-1), sd, "head")


def _checkpoint(variant, frames, path, seed):
    torch.manual_seed(0)
    model = build_model(variant, frames, num_classes=CLASSES)
    randomize_(model, seed)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({"epoch": 60, "model_state": sd, "optimizer_state": {}, "cfg": "TRAIN:\n  ENABLE: False\n"}, path)
    return sd


def _load(variant_or_spec, frames, path):
    torch.manual_seed(5)
    model = build_model(variant_or_spec, frames, num_classes=CLASSES)
    report = load_checkpoint(model, path)
    return model.eval(), report


# ------------------------------------------------------------------------------------------------
# EMIM-S16
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emim_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("emim") / "checkpoint_epoch_00060.pyth"
    sd = _checkpoint("emim/emim-s16", 16, path, seed=1)
    assert sum(k.endswith("attn.rpb") for k in sd) == 4 + 2  # blocks3.{0,2,4,6}, blocks4.{0,2}
    x = torch.randn(1, 3, 16, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        released = official_uniformer(x, sd, (3, 4, 8, 3), stem_stride=1, released=True)
        full = official_uniformer(x, sd, (3, 4, 8, 3), stem_stride=1, released=False)
    return path, x, released, full


def test_emim_s16_released_mode_matches_the_released_kernels(emim_checkpoint):
    path, x, released, _ = emim_checkpoint
    model, report = _load("emim/emim-s16", 16, path)  # the registered variant: av_dims = released
    assert model.blocks3[0].attn.av_dims == "released"
    assert report.container == "model_state" and report.source == "uniformer" and report.clean, report.summary()
    with torch.no_grad():
        got = model(x)
    assert rel_diff(got, released) < TOL, rel_diff(got, released)


def test_emim_s16_full_mode_is_eq4_and_differs_from_the_release(emim_checkpoint):
    path, x, released, full = emim_checkpoint
    model, _ = _load("emim/emim-s16-full", 16, path)
    with torch.no_grad():
        got = model(x)
    assert rel_diff(got, full) < TOL, rel_diff(got, full)  # all 64 channels: the intended maths
    assert rel_diff(got, released) > 1e-2  # but not what the official checkpoints compute


def test_emim_s16_negative_control(emim_checkpoint, tmp_path):
    path, x, released, _ = emim_checkpoint
    sd = torch.load(path, weights_only=True)["model_state"]
    bad = perturbed(sd, "blocks3.2.attn.rpb", tmp_path / "perturbed.pyth", "model_state")
    model, _ = _load("emim/emim-s16", 16, bad)
    with torch.no_grad():
        got = model(x)
    assert rel_diff(got, released) > 1e-3


@pytest.mark.parametrize("neighbourhood", [3, 7])
def test_emim_attention_matches_the_kernels_on_a_14x14_map(neighbourhood):
    """One stage-3 EMIM attention of EMIM-S (320 channels, 5 heads) at 16 x 14 x 14, the map size of a
    224 input: every window position, the border padding and the kernel's 32-channel sum; the full
    mode against the full sum."""
    torch.manual_seed(0)
    mods = {mode: EMIMAttention(320, 5, neighbourhood=neighbourhood, av_dims=mode) for mode in ("released", "full")}
    randomize_(mods["released"], seed=3)
    mods["full"].load_state_dict(mods["released"].state_dict())
    sd = {f"attn.{k}": v for k, v in mods["released"].state_dict().items()}
    size = (16, 14, 14)
    x = torch.randn(1, 16 * 14 * 14, 320)
    with torch.no_grad():
        for mode, mod in mods.items():
            want = official_emim_attention(x, sd, "attn", size, 5, released=mode == "released")
            assert rel_diff(mod(x, size), want) < TOL, (mode, rel_diff(mod(x, size), want))


# ------------------------------------------------------------------------------------------------
# UniFormer-S (Sense-X), temporal stride 2 stem
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def uniformer_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("uniformer") / "checkpoint_best.pyth"
    sd = _checkpoint("uniformer/uniformer-s", 16, path, seed=4)
    x = torch.randn(1, 3, 16, 64, 64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        want = official_uniformer(x, sd, (3, 4, 8, 3), stem_stride=2)
    return path, x, want


def test_uniformer_s_matches_the_official_forward(uniformer_checkpoint):
    path, x, want = uniformer_checkpoint
    model, report = _load("uniformer/uniformer-s", 16, path)
    assert report.container == "model_state" and report.clean, report.summary()
    with torch.no_grad():
        got = model(x)
    assert rel_diff(got, want) < TOL, rel_diff(got, want)


def test_uniformer_s_negative_control(uniformer_checkpoint, tmp_path):
    path, x, want = uniformer_checkpoint
    sd = torch.load(path, weights_only=True)["model_state"]
    key = "blocks1.1.attn.weight"  # the 5x5x5 depthwise affinity of a local MHRA block (spans time)
    bad = perturbed(sd, key, tmp_path / "perturbed.pyth", "model_state")
    model, _ = _load("uniformer/uniformer-s", 16, bad)
    with torch.no_grad():
        got = model(x)
    assert rel_diff(got, want) > 1e-3
