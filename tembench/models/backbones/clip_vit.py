"""OpenAI CLIP visual towers (Radford et al., ICML 2021, §2.4 and Table 20): ViT-B/32, ViT-B/16,
ViT-L/14 and ViT-L/14@336px, with CLIP's state-dict names so that the released weights (keys
``visual.*`` of the ``.pt`` files, minus the prefix) load unchanged:

``conv1.weight``, ``class_embedding``, ``positional_embedding``, ``ln_pre``,
``transformer.resblocks.{i}.{attn.in_proj_weight, attn.in_proj_bias, attn.out_proj, ln_1, mlp.c_fc,
mlp.c_proj, ln_2}``, ``ln_post``, ``proj``.

Pre-LN blocks, QuickGELU (x * sigmoid(1.702 x)), LayerNorm computed in fp32, sequence-first token
layout (L, N, D) as in CLIP. Attention is written with explicit ``q @ k^T`` and ``attn @ v`` batched
matmuls (not ``nn.MultiheadAttention.forward`` or ``scaled_dot_product_attention``) so that a counter
sees them; the parameters keep ``nn.MultiheadAttention``'s names. These three building blocks live in
:mod:`tembench.models.layers`, shared with the temporal modules.

Module paths a counting convention can single out (``visual.`` prefix in the video model):

* ``transformer.resblocks.{i}.attn`` -- the whole attention sub-block (QKV projection, the two
  attention matmuls, output projection ``attn.out_proj``);
* ``transformer.resblocks.{i}.mlp`` -- the MLP sub-block (``mlp.c_fc``, ``mlp.c_proj``).

Temporal slots (ATM's "control points", ATM code ``clip/model.py``): every block has three identity
modules that a temporal module may replace, each taking and returning the (L, N*T, D) token tensor
(the video host, :mod:`tembench.models.clip_video`, fills them through the temporal-module protocol):

* ``control_point_c`` -- at the very start of the block (ATM sits here, in one block);
* ``control_point1``  -- right before ``ln_1`` + attention (ATM's T-Conv on the [CLS] token);
* ``control_point2``  -- right before ``ln_2`` + MLP (T-Conv again).

When the input is not the tower's native resolution, the patch positional embeddings are resized
bicubically (as timm does), so costs can be counted at any input size.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from tembench.models.layers import Attention, LayerNorm, QuickGELU

__all__ = ["VisionTransformer", "ResidualAttentionBlock", "Attention", "LayerNorm", "QuickGELU", "ControlPoint",
           "CONFIGS", "CLIP_NAMES", "clip_vit"]


@dataclass(frozen=True)
class ViTConfig:
    width: int
    layers: int
    patch: int
    resolution: int
    embed_dim: int

    @property
    def heads(self) -> int:
        return self.width // 64

    @property
    def grid(self) -> int:
        return self.resolution // self.patch


CONFIGS: dict[str, ViTConfig] = {
    "vit-b32": ViTConfig(width=768, layers=12, patch=32, resolution=224, embed_dim=512),
    "vit-b16": ViTConfig(width=768, layers=12, patch=16, resolution=224, embed_dim=512),
    "vit-l14": ViTConfig(width=1024, layers=24, patch=14, resolution=224, embed_dim=768),
    "vit-l14-336": ViTConfig(width=1024, layers=24, patch=14, resolution=336, embed_dim=768),
    # small-width tower of the motion-sensitivity benchmark (trained from scratch on CPU)
    "vit-tiny": ViTConfig(width=64, layers=4, patch=8, resolution=32, embed_dim=64),
}
CLIP_NAMES = {"ViT-B/32": "vit-b32", "ViT-B/16": "vit-b16", "ViT-L/14": "vit-l14", "ViT-L/14@336px": "vit-l14-336"}


class ControlPoint(nn.Identity):
    """An identity slot for a temporal module; ``inplanes`` is the token width (ATM's ``AfterReconstruction``)."""

    def __init__(self, inplanes: int):
        super().__init__()
        self.inplanes = inplanes


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = Attention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = LayerNorm(width)
        self.control_point_c = ControlPoint(width)
        self.control_point1 = ControlPoint(width)
        self.control_point2 = ControlPoint(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.control_point_c(x)
        x = self.control_point1(x)
        x = x + self.attn(self.ln_1(x))
        x = self.control_point2(x)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    """CLIP's ``VisualTransformer``: images (N, 3, R, R) -> embeddings (N, embed_dim)."""

    def __init__(self, width: int, layers: int, patch: int, resolution: int, embed_dim: int):
        super().__init__()
        self.resolution, self.patch = resolution, patch
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((resolution // patch) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, width // 64)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, embed_dim))
        self._init_blocks(width, layers)

    def _init_blocks(self, width: int, layers: int) -> None:
        """CLIP's ``initialize_parameters`` for the visual blocks (weights are normally loaded)."""
        proj_std = width**-0.5 * (2 * layers) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=width**-0.5)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=(2 * width) ** -0.5)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)

    @property
    def blocks(self) -> nn.Sequential:
        return self.transformer.resblocks

    def _pos_embed(self, grid_h: int, grid_w: int) -> torch.Tensor:
        pos = self.positional_embedding
        native = int(math.isqrt(pos.shape[0] - 1))
        if (grid_h, grid_w) == (native, native):
            return pos
        cls_pos, patch_pos = pos[:1], pos[1:]
        patch_pos = patch_pos.reshape(1, native, native, -1).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=(grid_h, grid_w), mode="bicubic", align_corners=False)
        return torch.cat([cls_pos, patch_pos.permute(0, 2, 3, 1).reshape(grid_h * grid_w, -1)])

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> the token sequence after the last block, (L, N, width)."""
        x = self.conv1(x)  # (N, width, gh, gw)
        n, width, gh, gw = x.shape
        x = x.reshape(n, width, gh * gw).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype).expand(n, 1, width)
        x = torch.cat([cls, x], dim=1) + self._pos_embed(gh, gw).to(x.dtype)
        x = self.ln_pre(x)
        return self.transformer(x.permute(1, 0, 2))  # NLD -> LND

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_tokens(x)
        return self.ln_post(x[0]) @ self.proj


def clip_vit(name: str) -> VisionTransformer:
    """``clip_vit("vit-b16")``; names as in :data:`CONFIGS` (CLIP's own names map through :data:`CLIP_NAMES`)."""
    name = CLIP_NAMES.get(name, name)
    try:
        c = CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown CLIP tower {name!r}; one of {', '.join(CONFIGS)}") from None
    return VisionTransformer(c.width, c.layers, c.patch, c.resolution, c.embed_dim)
