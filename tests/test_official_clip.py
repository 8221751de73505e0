"""Equivalence with the official code of the CLIP-ViT seeds: ATM (ViT) and ILA (Kinetics-400 X-CLIP head).

For each family a small functional reference of the *official* forward is written here from reading
the official repository (cited per function; nothing is copied), reading its weights by the official
state-dict names. The test builds the registered variant's tembench model on a small CLIP tower (same
structure, 12 or 3 blocks of width 128, 6 x 6 patch grid), gives it random weights (zero-initialised
layers included, BatchNorm running statistics randomised), writes them as the official checkpoint
file would hold them (container key and names), loads that file through tembench's checkpoint loader
into a fresh model, and asserts the two forwards agree to a relative 1e-5 in eval mode. A negative
control perturbs one temporal weight in the file and checks that the difference shows.

Official code read:

* ATM: whwu95/ATM @ 98ba3aa2ac258cc1b91beefe9317136657ae3d8d -- ``clip/model.py`` (VisualTransformer,
  ResidualAttentionBlock with its control points), ``modules/ATM.py`` (ATMBlock = SimBlock then
  DiffBlock, SimTransform, Conv2D_UV2C, DomainTransfer), ``modules/temporal_modeling.py`` (TokenT1D),
  ``test_for_frame.py`` (VideoCLIP); DeepSpeed checkpoint ``{"module": state_dict}``.
* ILA: Francis-Rings/ILA (branch master) @ 1a912d933f96ca70ed39e34253df0054991e4134 -- ``models/xclip.py``
  (XCLIP.forward, encode_video), ``models/mat.py`` (MultiAxisTransformer, MultiAxisAttentionBlock),
  ``models/align.py`` (ILA, aligned_mask_generation, Depth_Separable_Convolution), ``models/mit.py``,
  ``models/prompt.py``; checkpoint ``{"model": state_dict, ...}`` with the text tower and ``logit_scale``.
  ILA's ``validate()`` sets every block's ``message_attn.is_training = False`` (no jittered masks), which
  the reference follows.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from official import bn, ln, perturbed, randomize_, rel_diff

from tembench.evaluate.checkpoint import load_checkpoint
from tembench.models import clip_video
from tembench.models.backbones import clip_vit
from tembench.registry import get_variant

TOL = 1e-5
FRAMES = 8
CLASSES = 5
TINY = "vit-official-test"  # CLIP tower of the real structure at small width (2 heads, 6 x 6 patches)


@pytest.fixture
def tiny_tower(monkeypatch):
    def use(layers: int) -> str:
        monkeypatch.setitem(clip_vit.CONFIGS, TINY, clip_vit.ViTConfig(width=128, layers=layers, patch=16,
                                                                       resolution=96, embed_dim=128))
        return TINY
    return use


# ------------------------------------------------------------------------------------------------
# Shared helpers
# ------------------------------------------------------------------------------------------------

def linear(x, sd, p, bias=True):
    return F.linear(x, sd[f"{p}.weight"], sd[f"{p}.bias"] if bias else None)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def mha(x, sd, p, heads):
    """``nn.MultiheadAttention(D, heads)(x, x, x)`` on (L, N, D) from its parameters (CLIP, MIT)."""
    out, _ = F.multi_head_attention_forward(
        x, x, x, x.shape[-1], heads, sd[f"{p}.in_proj_weight"], sd[f"{p}.in_proj_bias"], None, None, False, 0.0,
        sd[f"{p}.out_proj.weight"], sd[f"{p}.out_proj.bias"], training=False, need_weights=False)
    return out


def clip_mlp(x, sd, p):
    return linear(quick_gelu(linear(x, sd, f"{p}.c_fc")), sd, f"{p}.c_proj")


def clip_tokens(images, sd, patch):
    """CLIP's VisualTransformer up to the first block: patch conv (no bias), [CLS] first, positional
    embedding, ln_pre; returns (L, N, D) as the blocks see it."""
    x = F.conv2d(images, sd["visual.conv1.weight"], stride=patch)
    x = x.flatten(2).transpose(1, 2)
    cls = sd["visual.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + sd["visual.positional_embedding"]
    return ln(x, sd, "visual.ln_pre").permute(1, 0, 2)


def to_frames(clips):
    """Clips (B, 3, T, H, W) -> frames (B*T, 3, H, W), clip-major, as the official models fold time."""
    b, c, t, h, w = clips.shape
    return clips.transpose(1, 2).reshape(b * t, c, h, w)


def save_official(path, container: str, state: dict, **extra) -> None:
    torch.save({container: state, **extra}, path)


def build_tiny(backbone, variant: str) -> torch.nn.Module:
    spec = get_variant(variant)
    return clip_video.build(backbone, spec.temporal, dict(spec.options), FRAMES, CLASSES).eval()


# ------------------------------------------------------------------------------------------------
# ATM (whwu95/ATM @ 98ba3aa2): VideoCLIP, CLIP blocks with ATM at control_point_c of one block and
# TokenT1D at control_point1/2 of every block
# ------------------------------------------------------------------------------------------------

def conv_bn_relu3d(x, sd, p, stride=(1, 1, 1), padding=(0, 1, 1), conv="0", norm="1"):
    return F.relu(bn(F.conv3d(x, sd[f"{p}.{conv}.weight"], stride=stride, padding=padding), sd, f"{p}.{norm}"))


def atm_extract(x, sd, p):
    """The feature stem of each arithmetic block (``downsample``): 3x3 conv, no bias, stride 1 on ViT
    tokens (make_ATM passes downsample=False), BN, ReLU."""
    return F.relu(bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], padding=1), sd, f"{p}.downsample.1"))


def atm_pairs(f, frames, z):
    """Every frame against the z frames of its temporal window (t - z//2 .. t + z//2, zero frames
    outside the clip): (anchor, context), both (B, T, z, C, H, W)."""
    b_t, c, h, w = f.shape
    f = f.view(-1, frames, c, h, w)
    anchor = f.unsqueeze(2).expand(-1, -1, z, -1, -1, -1)
    padded = F.pad(f, (0, 0, 0, 0, 0, 0, z // 2, z // 2))
    context = torch.stack([padded[:, s:s + frames] for s in range(z)], dim=2)
    return anchor, context


def atm_domain_transfer(x, sd, p, z):
    """DomainTransfer: two (1,3,3) conv-BN-ReLU, the z context slots regrouped into channels, a fusing
    (1,3,3) conv-BN-ReLU, a 1x1x1 projection back to the token width (no BN); (B*z, 64, T, H, W) in,
    (B*T, D, H, W) out."""
    x = conv_bn_relu3d(x, sd, f"{p}.conv1")
    x = conv_bn_relu3d(x, sd, f"{p}.conv2")
    bz, c, t, h, w = x.shape
    x = x.view(bz // z, z * c, t, h, w)  # slot-major channels: (z c)
    x = conv_bn_relu3d(x, sd, f"{p}.conv3_fuse", conv="1", norm="2")
    x = F.conv3d(x, sd[f"{p}.upsample.0.weight"])
    b, d = x.shape[:2]
    return x.transpose(1, 2).reshape(b * t, d, h, w)


def atm_sim_block(x, sd, p, frames, z=5, window=9):
    """SimBlock: L2-normalised (eps 1e-6 under the root) features of each pair, the 9x9 local cosine
    cost volume of the context frame around every anchor position (zero outside the map), Conv2D_UV2C
    over (z, u, v) down to one 64-vector per position and slot, DomainTransfer, ReLU(out + input)."""
    f = atm_extract(x, sd, f"{p}.sim")
    anchor, context = atm_pairs(f, frames, z)
    normed = lambda t: t / (t.pow(2).sum(dim=3, keepdim=True) + 1e-6).sqrt()  # noqa: E731
    anchor, context = normed(anchor), normed(context)
    b, t, _, c, h, w = anchor.shape
    r = window // 2
    context = F.pad(context, (r, r, r, r))
    corr = torch.stack([torch.stack([(anchor * context[..., u:u + h, v:v + w]).sum(3) for v in range(window)], -1)
                        for u in range(window)], -2)  # (B, T, z, H, W, u, v)
    vol = corr.permute(0, 1, 3, 4, 2, 5, 6).reshape(b * t * h * w, 1, z, window, window)
    vol = conv_bn_relu3d(vol, sd, f"{p}.uv2c.conv0")
    vol = conv_bn_relu3d(vol, sd, f"{p}.uv2c.conv1", stride=(1, 2, 2))
    vol = conv_bn_relu3d(vol, sd, f"{p}.uv2c.conv2", stride=(1, 2, 2))
    vol = conv_bn_relu3d(vol, sd, f"{p}.uv2c.conv3", padding=(0, 0, 0))  # (BTHW, 64, z, 1, 1)
    vol = vol.view(b, t, h, w, -1, z).permute(0, 5, 4, 1, 2, 3).reshape(b * z, -1, t, h, w)
    return F.relu(atm_domain_transfer(vol, sd, f"{p}.sim2vis", z) + x)


def atm_diff_block(x, sd, p, frames, z=5):
    """DiffBlock: context minus anchor feature for every slot, DomainTransfer, ReLU(out + input)."""
    f = atm_extract(x, sd, p)
    anchor, context = atm_pairs(f, frames, z)
    diff = context - anchor  # (B, T, z, C, H, W)
    b, t, _, c, h, w = diff.shape
    diff = diff.permute(0, 2, 3, 1, 4, 5).reshape(b * z, c, t, h, w)
    return F.relu(atm_domain_transfer(diff, sd, f"{p}.diff2vis", z) + x)


def atm_block(x, sd, p, frames):
    """ATMBlock on tokens (L, B*T, D): [CLS] kept, the patch grid through SimBlock then DiffBlock."""
    cls, tokens = x[:1], x[1:]
    n, bt, d = tokens.shape
    side = math.isqrt(n)
    fmap = tokens.permute(1, 2, 0).reshape(bt, d, side, side)
    fmap = atm_sim_block(fmap, sd, f"{p}.corrlayer", frames)
    fmap = atm_diff_block(fmap, sd, f"{p}.difflayer", frames)
    return torch.cat([cls, fmap.flatten(2).permute(2, 0, 1)], dim=0)


def token_t1d(x, sd, p, frames):
    """TokenT1D: a depthwise 3-tap temporal convolution (no bias) of the [CLS] token; patches kept."""
    length, bt, d = x.shape
    cls = x[0].view(bt // frames, frames, d).transpose(1, 2)
    cls = F.conv1d(cls, sd[f"{p}.conv.weight"], padding=1, groups=d).transpose(1, 2).reshape(1, bt, d)
    return torch.cat([cls, x[1:]], dim=0)


def official_atm(clips, sd, layers, position, heads, patch):
    """ATM's VideoCLIP: per-frame CLIP embedding ([CLS] -> ln_post -> proj), mean over T, ``fc``."""
    b, t = clips.shape[0], clips.shape[2]
    x = clip_tokens(to_frames(clips), sd, patch)
    for i in range(layers):
        p = f"visual.transformer.resblocks.{i}"
        if i == position:
            x = atm_block(x, sd, f"{p}.control_point_c", t)
        x = token_t1d(x, sd, f"{p}.control_point1", t)
        x = x + mha(ln(x, sd, f"{p}.ln_1"), sd, f"{p}.attn", heads)
        x = token_t1d(x, sd, f"{p}.control_point2", t)
        x = x + clip_mlp(ln(x, sd, f"{p}.ln_2"), sd, f"{p}.mlp")
    emb = ln(x[0], sd, "visual.ln_post") @ sd["visual.proj"]
    return linear(emb.view(b, t, -1).mean(dim=1), sd, "fc")


@pytest.fixture
def atm_checkpoint(tiny_tower, tmp_path):
    backbone = tiny_tower(12)
    torch.manual_seed(0)
    model = build_tiny(backbone, "atm/atm-vit-b16")
    randomize_(model, seed=1)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "mp_rank_00_model_states.pt"
    save_official(path, "module", sd)
    return backbone, sd, path


def test_atm_vit_matches_the_official_forward(atm_checkpoint):
    backbone, sd, path = atm_checkpoint
    assert "visual.transformer.resblocks.7.control_point_c.corrlayer.uv2c.conv3.0.weight" in sd  # make_ATM: block 7 of 12
    torch.manual_seed(5)
    model = build_tiny(backbone, "atm/atm-vit-b16")
    report = load_checkpoint(model, path)
    assert report.container == "module" and report.clean and not report.ignored, report.summary()
    x = torch.randn(2, 3, FRAMES, 96, 96)
    with torch.no_grad():
        want = official_atm(x, sd, layers=12, position=7, heads=2, patch=16)
        got = model.eval()(x)
    assert rel_diff(got, want) < TOL, rel_diff(got, want)


def test_atm_vit_negative_control(atm_checkpoint):
    backbone, sd, path = atm_checkpoint
    x = torch.randn(2, 3, FRAMES, 96, 96)
    with torch.no_grad():
        want = official_atm(x, sd, layers=12, position=7, heads=2, patch=16)
    key = "visual.transformer.resblocks.7.control_point_c.difflayer.diff2vis.upsample.0.weight"
    perturbed(sd, key, path, "module")
    model = build_tiny(backbone, "atm/atm-vit-b16")
    load_checkpoint(model, path)
    with torch.no_grad():
        got = model.eval()(x)
    assert rel_diff(got, want) > 1e-3


# ------------------------------------------------------------------------------------------------
# ILA (Francis-Rings/ILA master @ 1a912d93): XCLIP with MultiAxisAttentionBlocks, MIT, video prompts
# ------------------------------------------------------------------------------------------------

def ila_mask(points, grid):
    """aligned_mask_generation: per axis 1 within 0.25 of the point, then a linear fall-off of slope
    1.5 clipped at 0, on cell coordinates i/(grid-1)*2-1; the map is the y-profile (rows) times the
    x-profile (columns). points (..., 2) as (x, y) -> (..., grid, grid)."""
    cells = torch.arange(grid, dtype=points.dtype) / (grid - 1) * 2 - 1
    dist = (cells.view(grid, 1) - points.unsqueeze(-2)).abs()  # (..., grid, 2)
    profile = torch.where(dist <= 0.25, torch.ones_like(dist), F.relu(1 - (dist - 0.25) * 1.5))
    return profile[..., :, 1].unsqueeze(-1) * profile[..., :, 0].unsqueeze(-2)


def conv_bn_relu2d(x, sd, conv, norm, padding=1, groups=1, pool=False):
    x = bn(F.conv2d(x, sd[f"{conv}.weight"], sd[f"{conv}.bias"], padding=padding, groups=groups), sd, norm)
    return F.relu(F.max_pool2d(x, 2) if pool else x)


def ila_module(support, query, cls, sd, p, frames):
    """models/align.py ILA.forward in evaluation (``is_training`` False: one mask per point).

    support/query: (B, T-1, L, D) message tokens of frames 0..T-2 and 1..T-1; cls: (1, B, T, D).
    Returns (aligned frames (B, T, L, D), interactive tokens (L, B*T, D))."""
    b, pairs, length, d = support.shape
    grid = math.isqrt(length - 1)
    patches = lambda t: t[:, :, 1:].reshape(b, pairs, grid, grid, d).permute(0, 4, 1, 2, 3)  # noqa: E731
    pre, cur = patches(support), patches(query)  # (B, D, T-1, H, W)
    pair = torch.cat([pre, cur], dim=1).transpose(1, 2).reshape(b * pairs, 2 * d, grid, grid)
    ib = f"{p}.interactive_block"
    y = conv_bn_relu2d(pair, sd, f"{ib}.0.depthwise_conv.0", f"{ib}.0.depthwise_conv.1", groups=2 * d)
    y = conv_bn_relu2d(y, sd, f"{ib}.0.pointwise_conv.0", f"{ib}.0.pointwise_conv.1", padding=0)
    inter = conv_bn_relu2d(y, sd, f"{ib}.1", f"{ib}.2")  # (B*(T-1), 256, H, W)
    pb = f"{p}.prediction_block"
    y = conv_bn_relu2d(inter, sd, f"{pb}.0", f"{pb}.1", pool=True)
    y = conv_bn_relu2d(y, sd, f"{pb}.4", f"{pb}.5", pool=True)
    y = y.amax(dim=(2, 3)).view(b, pairs, -1).transpose(1, 2)  # (B, 128, T-1)
    y = F.relu(F.conv1d(y, sd[f"{pb}.10.weight"], sd[f"{pb}.10.bias"], groups=2))
    points = torch.tanh(F.conv1d(y, sd[f"{pb}.12.weight"], sd[f"{pb}.12.bias"], groups=2)).transpose(1, 2) * 0.75

    def per_frame(first, second):  # pair features -> frames: first, means of the two copies, last
        return torch.cat([first[:, :1], (first[:, 1:] + second[:, :-1]) / 2, second[:, -1:]], dim=1)

    # interactive tokens: channels 0-127 belong to frame t, 128-255 to frame t+1
    f = inter.view(b, pairs, 256, grid, grid)
    f = per_frame(f[:, :, :128], f[:, :, 128:]).transpose(1, 2)  # (B, 128, T, H, W)
    f = F.conv3d(f, sd[f"{p}.conv.weight"], sd[f"{p}.conv.bias"], padding=(1, 0, 0))
    f = linear(f.flatten(3).permute(3, 0, 2, 1), sd, f"{p}.fc")  # (HW, B, T, D)
    inter_tokens = torch.cat([cls, f], dim=0).reshape(length, b * frames, d)

    def aligned(tokens, xy):  # masked patch tokens, the pair's own [CLS] in front: (B, T-1, L, D)
        m = ila_mask(xy, grid).reshape(b, pairs, grid * grid, 1)
        return torch.cat([tokens[:, :, :1], tokens[:, :, 1:] * m], dim=2)

    frames_aligned = per_frame(aligned(support, points[..., :2]), aligned(query, points[..., 2:]))
    return frames_aligned, inter_tokens


def ila_block(x, sd, p, frames, heads):
    """MultiAxisAttentionBlock.forward: message_fc + message_ln, ILA on the adjacent pairs, both
    zero-initialised skip layers added to the raw tokens, then the CLIP block."""
    length, bt, d = x.shape
    b = bt // frames
    a = ln(linear(x.view(length, b, frames, d), sd, f"{p}.message_fc"), sd, f"{p}.message_ln")
    cls = a[:1]
    a = a.permute(1, 2, 0, 3)  # (B, T, L, D)
    frames_aligned, inter = ila_module(a[:, :-1], a[:, 1:], cls, sd, f"{p}.message_attn", frames)
    frames_aligned = frames_aligned.permute(2, 0, 1, 3).reshape(length, bt, d)
    x = x + linear(frames_aligned, sd, f"{p}.temporal_skip_align_fc")
    x = x + linear(inter, sd, f"{p}.temporal_skip_fc")
    x = x + mha(ln(x, sd, f"{p}.ln_1"), sd, f"{p}.attn", heads)
    return x + clip_mlp(ln(x, sd, f"{p}.ln_2"), sd, f"{p}.mlp")


def mit(frames_emb, sd, heads):
    """models/mit.py: temporal position embedding, pre-LN transformer layers (nn.LayerNorm, QuickGELU),
    residual to the input, mean over time."""
    x = (frames_emb + sd["mit.positional_embedding"]).transpose(0, 1)
    i = 0
    while f"mit.resblocks.{i}.ln_1.weight" in sd:
        p = f"mit.resblocks.{i}"
        x = x + mha(ln(x, sd, f"{p}.ln_1"), sd, f"{p}.attn", heads)
        x = x + clip_mlp(ln(x, sd, f"{p}.ln_2"), sd, f"{p}.mlp")
        i += 1
    return (x.transpose(0, 1) + frames_emb).mean(dim=1)


def video_prompts(text, visual, sd, heads):
    """models/prompt.py VideoSpecificPrompt: LN on the visual tokens, per layer the class texts cross-
    attend (bias-free q/k/v, projected output) to them and go through a QuickGELU MLP; times alpha."""
    visual = ln(visual, sd, "prompts_generator.norm")
    j = 0
    while f"prompts_generator.decoder.{j}.norm1.weight" in sd:
        p = f"prompts_generator.decoder.{j}"
        q = ln(text, sd, f"{p}.norm1")
        n, k_, e = q.shape
        m = visual.shape[1]
        split = lambda t, length: t.view(n, length, heads, e // heads).transpose(1, 2)  # noqa: E731
        qh = split(linear(q, sd, f"{p}.cross_attn.q_proj", bias=False), k_)
        kh = split(linear(visual, sd, f"{p}.cross_attn.k_proj", bias=False), m)
        vh = split(linear(visual, sd, f"{p}.cross_attn.v_proj", bias=False), m)
        attn = ((qh @ kh.transpose(-2, -1)) * (e // heads) ** -0.5).softmax(dim=-1)
        text = text + linear((attn @ vh).transpose(1, 2).reshape(n, k_, e), sd, f"{p}.cross_attn.proj")
        h = quick_gelu(linear(ln(text, sd, f"{p}.norm3"), sd, f"{p}.mlp.0"))
        text = text + linear(h, sd, f"{p}.mlp.3")
        j += 1
    return sd["prompts_generator.alpha"] * text


def official_ila(clips, sd, text_features, layers, heads, patch):
    """XCLIP.forward (Kinetics-400 head): logits = exp(logit_scale) * cos(video, text + prompts)."""
    b, t = clips.shape[0], clips.shape[2]
    x = clip_tokens(to_frames(clips), sd, patch)
    for i in range(layers):
        x = ila_block(x, sd, f"visual.transformer.resblocks.{i}", t, heads)
    x = x.permute(1, 0, 2)
    cls = ln(x[:, 0], sd, "visual.ln_post") @ sd["visual.proj"]
    patches = ln(x[:, 1:], sd, "prompts_visual_ln") @ sd["prompts_visual_proj"]
    video = mit(cls.view(b, t, -1), sd, heads)
    patches = patches.view(b, t, -1, patches.shape[-1]).mean(dim=1)
    text = text_features.unsqueeze(0).expand(b, -1, -1)
    text = text + video_prompts(text, patches, sd, heads)
    video = video / video.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    return torch.einsum("bd,bkd->bk", video, sd["logit_scale"].exp() * text)


# the text tower an ILA checkpoint carries besides the video model (frozen CLIP text encoder)
TEXT_TOWER = {"token_embedding.weight": (10, 16), "positional_embedding": (7, 16), "text_projection": (16, 128),
              "ln_final.weight": (16,), "ln_final.bias": (16,),
              "transformer.resblocks.0.attn.in_proj_weight": (48, 16)}


@pytest.fixture
def ila_checkpoint(tiny_tower, tmp_path):
    backbone = tiny_tower(3)
    torch.manual_seed(0)
    model = build_tiny(backbone, "ila/ila-vit-b32")
    randomize_(model, seed=2)
    sd = {k: v.clone() for k, v in model.state_dict().items() if k != "text_features"}
    sd["logit_scale"] = torch.tensor(math.log(100.0))  # CLIP's trained temperature (clamped at 100)
    sd.update({k: torch.randn(s) for k, s in TEXT_TOWER.items()})
    path = tmp_path / "best.pth"
    save_official(path, "model", sd, epoch=29, max_accuracy=81.3)
    text = torch.randn(CLASSES, 128, generator=torch.Generator().manual_seed(3))
    return backbone, sd, text, path


def test_ila_matches_the_official_forward(ila_checkpoint):
    backbone, sd, text, path = ila_checkpoint
    torch.manual_seed(5)
    model = build_tiny(backbone, "ila/ila-vit-b32")
    report = load_checkpoint(model, path)
    model.set_class_features(text)  # official checkpoints carry the text tower, not these features
    x = torch.randn(2, 3, FRAMES, 96, 96)
    with torch.no_grad():
        want = official_ila(x, sd, text, layers=3, heads=2, patch=16)
        got = model.eval()(x)
    assert rel_diff(got, want) < TOL, (
        f"relative difference {rel_diff(got, want):.3g}; tembench logit scale {model.logit_scale.exp().item():.2f}, "
        f"checkpoint's {sd['logit_scale'].exp().item():.2f}")
    assert report.container == "model" and report.source == "clip"
    assert sorted(report.ignored) == sorted(TEXT_TOWER)  # the text tower, never a parameter of the model
    assert report.missing == ["text_features"] and not report.unexpected and not report.shape_mismatch


def test_ila_negative_control(ila_checkpoint):
    backbone, sd, text, path = ila_checkpoint
    x = torch.randn(2, 3, FRAMES, 96, 96)
    with torch.no_grad():
        want = official_ila(x, sd, text, layers=3, heads=2, patch=16)
    key = "visual.transformer.resblocks.1.message_attn.conv.weight"  # the temporal (3,1,1) convolution
    perturbed(sd, key, path, "model")
    model = build_tiny(backbone, "ila/ila-vit-b32")
    load_checkpoint(model, path)
    model.set_class_features(text)
    with torch.no_grad():
        got = model.eval()(x)
    assert rel_diff(got, want) > 1e-3
