"""UniFormer video backbones (Li et al., "UniFormer: Unified Transformer for Efficient Spatiotemporal
Representation Learning", ICLR 2022, §3), the PySlowFast version of Sense-X/UniFormer
(``video_classification/slowfast/models/uniformer.py``).

Four stages at 1/4, 1/8, 1/16 and 1/32 of the input resolution, widths 64-128-320-512, head dim 64:

* stages 1-2: :class:`CBlock` ("local MHRA"): x += DWConv3x3x3(x) (dynamic position embedding);
  x += Conv1x1(DWConv5x5x5(Conv1x1(BN(x)))); x += CMlp(BN(x)) (1x1x1 convolutions, GELU);
* stages 3-4: :class:`SABlock` ("global MHRA"): x += DWConv3x3x3(x); tokens (B, T*H*W, C);
  x += Attention(LN(x)); x += Mlp(LN(x)), joint space-time self-attention;
* 3-D patch embeddings: stage 1 Conv3d k(3,4,4) stride (``stem_stride``,4,4) pad (1,0,0) + LN; stages
  2-4 Conv3d k(1,2,2) stride (1,2,2) + LN; after stage 4 BatchNorm3d, global mean, Linear head.

``stem_stride`` is 2 in the original UniFormer (T/2 tokens in time) and 1 in EMIM (Zhuang et al., §4.2
"we also remove the temporal downsampling strategy in Stage 1"; ``conv_3xnxn`` with stride (1, 4, 4)
in the EMIM code), which keeps all frames and roughly doubles the cost.

Attention is written with explicit matmuls (no ``scaled_dot_product_attention``) so that its two
activation matmuls are counted. Any stage-3/4 block's attention can be swapped through the
``attention`` hook, keeping the block's ``qkv``/``proj`` names (the video host,
:mod:`tembench.models.uniformer_video`, fills it through the temporal-module protocol: EMIM).

State-dict names are the official ones: ``patch_embed{1-4}.{proj,norm}``, ``blocks{1-4}.{i}.{pos_embed,
norm1,conv1,conv2,attn,norm2,mlp.fc1,mlp.fc2}`` (CBlock), ``blocks{3,4}.{i}.{pos_embed,norm1,attn.qkv,
attn.proj,norm2,mlp.fc1,mlp.fc2}`` (SABlock), ``norm`` (BatchNorm3d) and ``head``.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn

__all__ = ["UniFormer", "CBlock", "SABlock", "Attention", "PatchEmbed", "ARCH_SETTINGS", "AttentionHook"]

# name -> depths of the four stages (widths and head dim are shared)
ARCH_SETTINGS: dict[str, tuple[int, int, int, int]] = {
    "uniformer-s": (3, 4, 8, 3),
    "uniformer-b": (5, 8, 20, 7),
    "uniformer-tiny": (1, 1, 1, 1),  # the motion benchmark's small network (with TINY_DIMS)
}
EMBED_DIMS = (64, 128, 320, 512)
HEAD_DIM = 64
# name -> (stage widths, head dim) where they differ from UniFormer's
WIDTHS: dict[str, tuple[tuple[int, int, int, int], int]] = {"uniformer-tiny": ((16, 32, 64, 128), 32)}

# (stage 3|4, block index in stage, dim, heads) -> attention module, or None for global attention
AttentionHook = Optional[Callable[[int, int, int, int], Optional[nn.Module]]]


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv3d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv3d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CBlock(nn.Module):
    """Local MHRA block (UniFormer §3.2, Eq. 4 with a learnable 5x5x5 depthwise affinity)."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.pos_embed = nn.Conv3d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.BatchNorm3d(dim)
        self.conv1 = nn.Conv3d(dim, dim, 1)
        self.attn = nn.Conv3d(dim, dim, 5, padding=2, groups=dim)
        self.conv2 = nn.Conv3d(dim, dim, 1)
        self.norm2 = nn.BatchNorm3d(dim)
        self.mlp = CMlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        x = x + self.conv2(self.attn(self.conv1(self.norm1(x))))
        return x + self.mlp(self.norm2(x))


class Attention(nn.Module):
    """Global multi-head self-attention over all T*H*W tokens, with explicit matmuls."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, size: tuple[int, int, int] | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class SABlock(nn.Module):
    """Global MHRA block (UniFormer §3.2, Eq. 5). ``attn`` may be any module taking (tokens, (T, H, W))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 attn: nn.Module | None = None):
        super().__init__()
        self.pos_embed = nn.Conv3d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = attn if attn is not None else Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        b, c, t, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = x + self.attn(self.norm1(x), (t, h, w))
        x = x + self.mlp(self.norm2(x))
        return x.transpose(1, 2).reshape(b, c, t, h, w)


class PatchEmbed(nn.Module):
    """Conv3d patch embedding followed by LayerNorm over channels."""

    def __init__(self, in_chans: int, dim: int, kernel: tuple[int, int, int], stride: tuple[int, int, int],
                 padding: tuple[int, int, int] = (0, 0, 0)):
        super().__init__()
        self.proj = nn.Conv3d(in_chans, dim, kernel, stride, padding)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        b, c, t, h, w = x.shape
        x = self.norm(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).reshape(b, c, t, h, w)


class UniFormer(nn.Module):
    """UniFormer video network: clip (B, 3, T, H, W) -> logits (B, classes)."""

    def __init__(self, depths: tuple[int, int, int, int], num_classes: int = 400, stem_stride: int = 2,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, in_chans: int = 3,
                 attention: AttentionHook = None, dims: tuple[int, int, int, int] = EMBED_DIMS,
                 head_dim: int = HEAD_DIM):
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 (EMIM) or 2 (UniFormer), got {stem_stride!r}")
        d = dims
        heads = [dim // head_dim for dim in d]
        self.depths, self.stem_stride = tuple(depths), stem_stride
        self.patch_embed1 = PatchEmbed(in_chans, d[0], (3, 4, 4), (stem_stride, 4, 4), (1, 0, 0))
        self.patch_embed2 = PatchEmbed(d[0], d[1], (1, 2, 2), (1, 2, 2))
        self.patch_embed3 = PatchEmbed(d[1], d[2], (1, 2, 2), (1, 2, 2))
        self.patch_embed4 = PatchEmbed(d[2], d[3], (1, 2, 2), (1, 2, 2))
        self.blocks1 = nn.ModuleList(CBlock(d[0], mlp_ratio) for _ in range(depths[0]))
        self.blocks2 = nn.ModuleList(CBlock(d[1], mlp_ratio) for _ in range(depths[1]))

        def sa(stage: int, i: int) -> SABlock:
            dim, nh = d[stage - 1], heads[stage - 1]
            attn = attention(stage, i, dim, nh) if attention is not None else None
            return SABlock(dim, nh, mlp_ratio, qkv_bias, attn=attn)

        self.blocks3 = nn.ModuleList(sa(3, i) for i in range(depths[2]))
        self.blocks4 = nn.ModuleList(sa(4, i) for i in range(depths[3]))
        self.norm = nn.BatchNorm3d(d[3])
        self.head = nn.Linear(d[3], num_classes)
        self.apply(_init_weights)
        for m in self.modules():  # sub-modules with their own initialisation (EMIM's motion path)
            if m is not self and callable(getattr(m, "init_weights", None)):
                m.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed1(x)
        for blk in self.blocks1:
            x = blk(x)
        x = self.patch_embed2(x)
        for blk in self.blocks2:
            x = blk(x)
        x = self.patch_embed3(x)
        for blk in self.blocks3:
            x = blk(x)
        x = self.patch_embed4(x)
        for blk in self.blocks4:
            x = blk(x)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        return self.head(x.flatten(2).mean(-1))


def _init_weights(m: nn.Module) -> None:
    """The official initialisation: truncated normal (std 0.02) Linear weights, zero biases."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def uniformer(name: str, num_classes: int = 400, stem_stride: int = 2, attention: AttentionHook = None) -> UniFormer:
    """``uniformer("uniformer-s")`` / ``uniformer("uniformer-b")``."""
    try:
        depths = ARCH_SETTINGS[name]
    except KeyError:
        raise ValueError(f"unknown UniFormer {name!r}; one of {', '.join(ARCH_SETTINGS)}") from None
    dims, head_dim = WIDTHS.get(name, (EMBED_DIMS, HEAD_DIM))
    return UniFormer(depths, num_classes=num_classes, stem_stride=stem_stride, attention=attention,
                     dims=dims, head_dim=head_dim)
