"""Building blocks shared by the backbones and the temporal modules (neither imports the other).

From OpenAI CLIP (Radford et al., ICML 2021; ``clip/model.py``), with its parameter names:

* :class:`LayerNorm` -- computed in fp32 (CLIP's fp16-safe subclass);
* :class:`QuickGELU` -- x * sigmoid(1.702 x);
* :class:`Attention` -- multi-head self-attention with ``nn.MultiheadAttention``'s parameter names
  (``in_proj_weight``, ``in_proj_bias``, ``out_proj``) written with explicit ``q @ k^T`` and
  ``attn @ v`` batched matmuls, so that a counter sees them (``nn.MultiheadAttention`` dispatches to
  ``scaled_dot_product_attention``, which fvcore does not count).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LayerNorm", "QuickGELU", "Attention"]


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 (CLIP's fp16-safe subclass)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        return super().forward(x.float()).to(dtype)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names, explicit matmuls.

    x: (L, N, D) -> (L, N, D). Same result as ``nn.MultiheadAttention(D, heads)(x, x, x)[0]``.
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.width, self.heads = width, heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, n, d = x.shape
        h, hd = self.heads, d // self.heads
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        # (L, N, D) -> (N*heads, L, head_dim)
        q, k, v = (t.reshape(length, n * h, hd).transpose(0, 1) for t in (q, k, v))
        attn = torch.bmm(q * hd**-0.5, k.transpose(1, 2)).softmax(dim=-1)  # (N*h, L, L)
        out = torch.bmm(attn, v)  # (N*h, L, hd)
        out = out.transpose(0, 1).reshape(length, n, d)
        return self.out_proj(out)
