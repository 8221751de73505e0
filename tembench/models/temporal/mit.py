"""X-CLIP's video parts (Ni et al., "Expanding Language-Image Pretrained Models for General Video
Recognition", ECCV 2022, §3.2-3.3), which ILA reuses (ILA §3.1 and Eq. 8; Francis-Rings/ILA
``models/xclip.py``, ``models/mit.py``, ``models/prompt.py``), with their state-dict names:

* :class:`CrossFrameBlock` -- X-CLIP's cross-frame communication (the "frame-level temporal attention"
  of ILA Table 4 / 15, code ``CrossFramelAttentionBlock``): per frame a message token
  ``message_fc`` ([CLS]), ``message_ln``, multi-head attention over the T message tokens of the clip
  (``message_attn``, residual); each frame's message token joins the frame's tokens in the spatial
  attention and is dropped before the MLP.
* :class:`MultiframeIntegrationTransformer` (``mit``): learned temporal position embedding, ``layers``
  pre-LN transformer layers over the T frame embeddings (heads E/64, MLP 4x QuickGELU), residual to
  the input, mean over T (Eq. 8's Avg(MSA(...))). With ``classes`` it ends in ILA's SSv2 head
  (branch SSV2): L2-normalise, LayerNorm, Dropout 0.5, Linear -> ``mit.classify_head.{0,2}``.
* :class:`VideoSpecificPrompt` (``prompts_generator``): ``layers`` (2) cross-attention layers, the class
  text features querying the frame-averaged patch embeddings (``prompts_visual_ln`` + ``prompts_visual_proj``
  in the video model), MLP 4x QuickGELU, output scaled by the learnable per-channel ``alpha`` (0.1).

Attention is written with explicit matmuls (counted), parameters keep ``nn.MultiheadAttention``'s
names where the original used it.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn as nn

from tembench.models.layers import Attention, LayerNorm, QuickGELU
from tembench.models.protocol import Site, TemporalModule


class CrossFrameBlock(nn.Module):
    """A CLIP residual block with X-CLIP's message tokens (``message_fc``, ``message_ln``, ``message_attn``).
    Keeps the CLIP block's sub-modules and names; tokens (L, N*T, D) in and out."""

    def __init__(self, base: nn.Module, width: int, frames: int):
        super().__init__()
        self.frames = frames
        self.attn, self.ln_1, self.mlp, self.ln_2 = base.attn, base.ln_1, base.mlp, base.ln_2
        self.control_point_c, self.control_point1, self.control_point2 = (
            base.control_point_c, base.control_point1, base.control_point2)
        self.message_fc = nn.Linear(width, width)
        self.message_ln = LayerNorm(width)
        self.message_attn = Attention(width, width // 64 or 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.control_point_c(x)
        length, nt, d = x.shape
        t = self.frames
        msg = self.message_fc(x[0]).view(nt // t, t, d).transpose(0, 1)  # (T, N, D)
        msg = msg + self.message_attn(self.message_ln(msg))
        x = self.control_point1(x)
        x = torch.cat([x, msg.transpose(0, 1).reshape(1, nt, d)], dim=0)
        x = x + self.attn(self.ln_1(x))
        x = self.control_point2(x[:length])
        return x + self.mlp(self.ln_2(x))


class MITBlock(nn.Module):
    """Pre-LN transformer layer (MIT's ``ResidualAttentionBlock``; nn.LayerNorm, QuickGELU)."""

    def __init__(self, width: int):
        super().__init__()
        self.attn = Attention(width, max(1, width // 64))
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(width * 4, width))]))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class MultiframeIntegrationTransformer(nn.Module):
    """Frame embeddings (N, T, E) -> video embedding (N, E), or logits (N, classes) with ``classes``."""

    def __init__(self, frames: int, embed_dim: int, layers: int = 1, classes: int | None = None,
                 dropout: float = 0.5):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.zeros(1, frames, embed_dim))
        nn.init.trunc_normal_(self.positional_embedding, std=0.02)
        self.resblocks = nn.Sequential(*[MITBlock(embed_dim) for _ in range(layers)])
        if classes is not None:
            self.classify_head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Dropout(dropout),
                                               nn.Linear(embed_dim, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.resblocks((x + self.positional_embedding).transpose(0, 1)).transpose(0, 1)
        x = (x + y).mean(dim=1)
        if hasattr(self, "classify_head"):
            return self.classify_head(x / x.norm(dim=-1, keepdim=True))
        return x


class CrossAttention(nn.Module):
    """Multi-head cross-attention, bias-free q/k/v projections (X-CLIP's ``MulitHeadAttention``)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, n, c = q.shape
        m, h = kv.shape[1], self.heads
        q = self.q_proj(q).view(b, n, h, c // h).transpose(1, 2)
        k = self.k_proj(kv).view(b, m, h, c // h).transpose(1, 2)
        v = self.v_proj(kv).view(b, m, h, c // h).transpose(1, 2)
        attn = (q @ k.transpose(-2, -1) * (c // h) ** -0.5).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class PromptGeneratorLayer(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.cross_attn = CrossAttention(dim, max(1, dim // 64))
        self.norm1 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), QuickGELU(), nn.Dropout(0.0), nn.Linear(dim * 4, dim))

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        text = text + self.cross_attn(self.norm1(text), visual)
        return text + self.mlp(self.norm3(text))


class VideoSpecificPrompt(nn.Module):
    """Class text features (N, K, E) and the video's patch embeddings (N, hw, E) -> prompts (N, K, E)."""

    def __init__(self, embed_dim: int, layers: int = 2, alpha: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim)
        self.decoder = nn.ModuleList([PromptGeneratorLayer(embed_dim) for _ in range(layers)])
        self.alpha = nn.Parameter(torch.full((embed_dim,), alpha))

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        visual = self.norm(visual)
        for layer in self.decoder:
            text = layer(text, visual)
        return self.alpha * text


LOGIT_SCALE = math.log(1 / 0.07)


def _make(site: Site) -> CrossFrameBlock:
    return CrossFrameBlock(site.current, site.channels, site.frames)


VIT = TemporalModule(
    name="xclip",
    slots=("clip_vit.block",),
    factory=_make,
    doc="X-CLIP's cross-frame communication (message tokens) in every block (X-CLIP §3.2)",
)
SPECS = (VIT,)
