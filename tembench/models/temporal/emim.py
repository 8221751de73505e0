"""Explicit Motion Information Mining (Zhuang et al., "A Renaissance of Explicit Motion Information
Mining from Transformers for Action Recognition", §3.3, Fig. 3), in pure PyTorch.

EMIM replaces the self-attention of a UniFormer SABlock (§4.2: the first block of every two in stages
3 and 4, "E-O") and reuses its ``qkv`` and ``proj`` layers. For tokens of shape (T, H, W):

* **affinity** (§3.3 Eq. 3): the query of frame t at (x, y) is compared with the keys of frame t+Δ in
  the P x P window centred on (x, y) (sliding window, "query-based neighbouring area"); the key map is
  padded by P//2 with the constant 1e-6 as the official code does (``nn.ConstantPad2d(P // 2, 1e-6)``
  before its NATTEN-derived kernel), so border queries see near-zero keys instead of a shifted window.
  Logits are q·k/sqrt(d) + B[head, Δx, Δy], one learnable bias per displacement (``rpb``, heads x P x P);
* **contextual aggregation** (Eq. 4): softmax over the P² logits, weighted sum of the P x P values;
* **motion feature** (Eq. 5): the raw logits (with the bias) go through ``motion_conv`` = Linear(P² ->
  4P²) -> QuickGELU -> Linear(4P² -> head dim), per head; the last layer starts at zero;
* the two are summed per head, heads are concatenated and projected by ``proj``.

P is the window side here, as in the code (``ATTN_MAX_DISP: [7, 7]``) and Table 5 ("7 x 7"); Eq. 3 writes
the same window as displacements in [-P', P'] with P' = P // 2.

Frame pairing follows the official code: slot t < T-Δ pairs query t with keys/values of frame t+Δ;
the last Δ slots repeat the last valid pair (for Δ=1 the last frame reuses (T-2, T-1)). Δ larger than
T-1 is clamped to T-1; Δ=0 attends within the same frame (the static-image setting of Table 9).

Ablations (§4.4): ``neighbourhood`` P (Table 5), ``sampling="non-sliding"`` (Table 6: keys taken from
the non-overlapping P x P window of the next frame that contains the query, as EMA does; frames are
padded to a multiple of P and the bias is per key slot), ``motion=False`` (Table 7), the block
replacement strategy (Table 8, ``replacement``) and the temporal interval Δ (Table 11).

Where it goes (:data:`UNIFORMER`, slot ``uniformer.attention`` of :mod:`tembench.models.protocol`): the
attention of the SABlocks of ``stages`` (default 3 and 4) that ``replacement`` picks of every two
successive blocks: ``E-O`` the first (even index, the official ``CONTINUOUS_ATTN: lg``), ``O-E`` the
second, ``E-E`` both, ``O-O`` neither. EMIM sets the host's ``stem_stride`` default to 1 (§4.2).

Both local operations are ``torch.einsum`` calls over unfolded key/value windows, so the cost engine
prices them (category ``einsum``: B·heads·T·H·W·P²·d each, the figure of EMIM's own fvcore handles in
``nat_with_rpb/flops.py``; B·heads·T·H·W·P²·32 for the released weighted sum, see below). The official
release computes them with CUDA kernels derived from NATTEN (Hassani et al., CVPR 2023); this module
needs no extension and runs on any device, at the price of materialising the P x P key and value
windows (P² times the key map) inside each einsum.

**The released kernel's weighted sum** (``av_dims``). PeiqinZhuang/EMIM @ f93d0303,
``video_classification/slowfast/nat_with_rpb/nattenav_cuda_kernel.cu`` (the forward kernel and its
launch in ``nattenav_cuda_forward``): the output is allocated with ``torch::zeros``; the y axis of the
launch grid has 8 x heads threads (``DIM_DIV_DIMUNROLL_FORWARD`` = 8 per head) and every thread writes
4 consecutive channels (``DIMUNROLL_FORWARD`` = 4) starting at 4 x (its index mod 8), so only channels
0-31 of each head's context are ever computed. Written for NATTEN's head dim of 32 (the bundled
``NeighborhoodAttention`` asserts it); EMIM calls the kernel directly with UniFormer's head dim of 64,
so channels 32-63 of every head's context stay zero in the released models (the motion feature
covers all 64; the query-key kernel sums over all 64). Its backward kernels cover the same 32
channels. ``av_dims="released"`` computes the weighted sum over the first min(32, d) channels of the
values and pads the rest with zeros -- what the official checkpoints were trained and tested with;
``"full"`` computes all d channels, Eq. 4 as written.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from tembench.models.layers import QuickGELU  # the activation of the official ``motion_conv``
from tembench.models.protocol import Option, Site, TemporalModule

__all__ = ["EMIMAttention", "QuickGELU", "SAMPLINGS", "AV_DIMS", "RELEASED_AV_DIMS", "PAD_VALUE", "REPLACEMENTS",
           "UNIFORMER"]

SAMPLINGS = ("sliding", "non-sliding")
AV_DIMS = ("released", "full")  # context channels per head: the released kernel's first 32, or all
RELEASED_AV_DIMS = 32  # nattenav forward kernel: 8 threads per head x 4 channels each
PAD_VALUE = 1e-6  # the official boundary padding constant (§3.3 "pad the boundary with ... 1e-6")
# which block of every two successive blocks gets EMIM (§4.2, Table 8; see the module docstring)
REPLACEMENTS = ("E-O", "O-E", "E-E", "O-O")


class EMIMAttention(nn.Module):
    """Drop-in replacement for UniFormer's attention: ``forward(tokens (B, T*H*W, C), (T, H, W))``."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, neighbourhood: int = 7,
                 sampling: str = "sliding", motion: bool = True, temporal_interval: int = 1,
                 av_dims: str = "full"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by {num_heads} heads")
        if isinstance(neighbourhood, bool) or not isinstance(neighbourhood, int) or neighbourhood < 1 \
                or neighbourhood % 2 == 0:
            raise ValueError(f"EMIM neighbourhood must be a positive odd integer, got {neighbourhood!r}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"EMIM sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if isinstance(temporal_interval, bool) or not isinstance(temporal_interval, int) or temporal_interval < 0:
            raise ValueError(f"EMIM temporal_interval must be a non-negative integer, got {temporal_interval!r}")
        if av_dims not in AV_DIMS:
            raise ValueError(f"EMIM av_dims must be one of {AV_DIMS}, got {av_dims!r}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.av_dims = av_dims
        # channels of each head's context the weighted sum computes (the rest are zero)
        self.context_dims = self.head_dim if av_dims == "full" else min(self.head_dim, RELEASED_AV_DIMS)
        self.scale = self.head_dim ** -0.5
        self.neighbourhood, self.sampling = neighbourhood, sampling
        self.temporal_interval = temporal_interval
        p2 = neighbourhood * neighbourhood
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.motion_conv = (
            nn.Sequential(nn.Linear(p2, 4 * p2), QuickGELU(), nn.Linear(4 * p2, self.head_dim)) if motion else None
        )
        self.rpb = nn.Parameter(torch.zeros(num_heads, neighbourhood, neighbourhood))
        self.init_weights()

    def init_weights(self) -> None:
        """The official initialisation (re-applied by the backbone after its own)."""
        nn.init.trunc_normal_(self.rpb, std=0.02)
        if self.motion_conv is not None:
            nn.init.xavier_uniform_(self.motion_conv[0].weight)
            nn.init.zeros_(self.motion_conv[0].bias)
            nn.init.zeros_(self.motion_conv[2].weight)
            nn.init.zeros_(self.motion_conv[2].bias)

    def extra_repr(self) -> str:
        return (f"heads={self.num_heads}, neighbourhood={self.neighbourhood}, sampling={self.sampling}, "
                f"motion={self.motion_conv is not None}, temporal_interval={self.temporal_interval}, "
                f"av_dims={self.av_dims} ({self.context_dims} of {self.head_dim} context channels)")

    # ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        t, h, w = size
        b, n, c = x.shape
        if n != t * h * w:
            raise ValueError(f"EMIM got {n} tokens for a (T, H, W) = {size} grid")
        nh, d = self.num_heads, self.head_dim
        qkv = self.qkv(x).view(b, t, h, w, 3, nh, d).permute(4, 0, 1, 5, 2, 3, 6)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, T, heads, H, W, d)
        q, k, v = self.pair_frames(q, k, v, t)
        q = q.reshape(b * t, nh, h, w, d) * self.scale
        k = k.reshape(b * t, nh, h, w, d)
        v = v.reshape(b * t, nh, h, w, d)
        local = self._sliding if self.sampling == "sliding" else self._non_sliding
        logits, context = local(q, k, v)  # (B*T, heads, H, W, P²), (B*T, heads, H, W, d)
        out = context if self.motion_conv is None else context + self.motion_conv(logits)
        out = out.view(b, t, nh, h, w, d).permute(0, 1, 3, 4, 2, 5).reshape(b, n, c)
        return self.proj(out)

    def pair_frames(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, t: int):
        """Queries of frame s and keys/values of frame s+Δ for each slot s (dim 1 is time)."""
        delta = min(self.temporal_interval, t - 1)
        if delta == 0:
            return q, k, v
        last = t - delta  # number of valid pairs; the remaining slots repeat the last one

        def repeat(z: torch.Tensor, frame: int) -> torch.Tensor:
            return z[:, frame:frame + 1].expand(-1, delta, *z.shape[2:])

        q = torch.cat([q[:, :last], repeat(q, last - 1)], dim=1)
        k = torch.cat([k[:, delta:], repeat(k, t - 1)], dim=1)
        v = torch.cat([v[:, delta:], repeat(v, t - 1)], dim=1)
        return q, k, v

    def _zero_fill(self, context: torch.Tensor) -> torch.Tensor:
        """Context (..., context_dims) -> (..., head_dim), the channels not computed left at zero."""
        missing = self.head_dim - context.shape[-1]
        return F.pad(context, (0, missing)) if missing else context

    def _sliding(self, q, k, v):
        p, r = self.neighbourhood, self.neighbourhood // 2
        pad = (0, 0, r, r, r, r)  # d, W, H
        kw = F.pad(k, pad, value=PAD_VALUE).unfold(2, p, 1).unfold(3, p, 1)  # (Z, n, H, W, d, P, P)
        v = v[..., : self.context_dims]
        vw = F.pad(v, pad, value=PAD_VALUE).unfold(2, p, 1).unfold(3, p, 1)
        logits = torch.einsum("znhwd,znhwdij->znhwij", q, kw).flatten(-2)
        logits = logits + self.rpb.view(1, self.num_heads, 1, 1, p * p).to(logits.dtype)
        context = torch.einsum("znhwij,znhwdij->znhwd", _softmax(logits).unflatten(-1, (p, p)), vw)
        return logits, self._zero_fill(context)

    def _non_sliding(self, q, k, v):
        p = self.neighbourhood
        z, nh, h, w, d = q.shape
        hp, wp = math.ceil(h / p) * p, math.ceil(w / p) * p
        pad = (0, 0, 0, wp - w, 0, hp - h)

        def windows(x, value):  # (Z, n, Hp, Wp, e) -> (Z, n, Gh, Gw, P², e)
            e = x.shape[-1]
            x = F.pad(x, pad, value=value) if pad != (0,) * 6 else x
            x = x.view(z, nh, hp // p, p, wp // p, p, e).permute(0, 1, 2, 4, 3, 5, 6)
            return x.reshape(z, nh, hp // p, wp // p, p * p, e)

        def unwindow(x):  # (Z, n, Gh, Gw, P², e) -> (Z, n, H, W, e)
            e = x.shape[-1]
            x = x.view(z, nh, hp // p, wp // p, p, p, e).permute(0, 1, 2, 4, 3, 5, 6)
            return x.reshape(z, nh, hp, wp, e)[:, :, :h, :w]

        qw, kw = windows(q, 0.0), windows(k, PAD_VALUE)
        vw = windows(v[..., : self.context_dims], PAD_VALUE)
        logits = torch.einsum("znabqd,znabkd->znabqk", qw, kw)
        logits = logits + self.rpb.view(1, nh, 1, 1, 1, p * p).to(logits.dtype)
        context = torch.einsum("znabqk,znabkd->znabqd", _softmax(logits), vw)
        return unwindow(logits), self._zero_fill(unwindow(context))


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the window in at least single precision (the official code turns autocast off)."""
    if logits.dtype in (torch.float32, torch.float64):
        return torch.softmax(logits, dim=-1)
    return torch.softmax(logits, dim=-1, dtype=torch.float32).to(logits.dtype)


def _make(site: Site, stages: list[int], replacement: str, neighbourhood: int, sampling: str, motion: bool,
          temporal_interval: int, av_dims: str) -> EMIMAttention | None:
    if replacement not in REPLACEMENTS:
        raise ValueError(f"EMIM replacement must be one of {', '.join(REPLACEMENTS)}, got {replacement!r}")
    first, second = (part == "E" for part in replacement.split("-"))
    if site.stage not in stages or not (first if site.block % 2 == 0 else second):
        return None
    return EMIMAttention(site.channels, site.heads, neighbourhood=neighbourhood, sampling=sampling,
                         motion=bool(motion), temporal_interval=temporal_interval, av_dims=av_dims)


UNIFORMER = TemporalModule(
    name="emim",
    slots=("uniformer.attention",),
    factory=_make,
    options={
        "stages": Option([3, 4], choices=(3, 4), doc="UniFormer stages whose SABlocks may get EMIM"),
        "replacement": Option("E-O", choices=REPLACEMENTS, doc="which of every two blocks (Table 8)"),
        "neighbourhood": Option(7, doc="P, the window side (Table 5)"),
        "sampling": Option("sliding", choices=SAMPLINGS, doc="sliding | non-sliding windows (Table 6)"),
        "motion": Option(True, doc="the motion feature of Eq. 5 (Table 7)"),
        "temporal_interval": Option(1, doc="Δ, the frame distance of a pair (Table 11)"),
        "av_dims": Option("full", choices=AV_DIMS,
                          doc="full: Eq. 4; released: the official kernel's weighted sum over 32 channels per head"),
    },
    host_defaults={"stem_stride": 1},  # §4.2: no temporal downsampling in stage 1
    doc="EMIM attention in place of the self-attention of SABlocks (EMIM §3.3, §4.2)",
)
SPECS = (UNIFORMER,)
