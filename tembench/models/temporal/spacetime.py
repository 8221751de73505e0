"""Space-time attention variants on CLIP ViT blocks, the comparison models of ILA (ICCV 2023) Tables 3,
4 and 15:

* :class:`JointBlock` -- joint space-time attention (TimeSformer, Bertasius et al., ICML 2021, §3
  "Joint Space-Time"). ``mode="replace"`` (TimeSformer): the CLIP attention runs over all T x L tokens
  of a clip (each frame keeps its [CLS]); ``mode="add"``: the CLIP spatial attention is kept and a new
  joint attention over the T x h x w patch tokens (pre-LN, output Linear zero-initialised, residual)
  runs before it -- the "CLIP + temporal module" form of :class:`DividedBlock`, with the temporal
  attention widened to space-time.
* :class:`DividedBlock` -- divided space-time attention (TimeSformer §3, Fig. 1 "Divided Space-Time",
  the TimeSformer code's ``temporal_norm1``, ``temporal_attn``, ``temporal_fc``): a temporal attention
  over the T tokens at each patch position (patch tokens only; pre-LN, output Linear D x D
  zero-initialised, residual), then the CLIP spatial attention and MLP.
* :class:`ATABlock` -- alignment-guided temporal attention (ATA, Zhao et al., NeurIPS 2022): the patches
  of every frame are matched to the previous frame's by the Hungarian algorithm on the cosine
  similarity of their features (a (h w) x (h w) matrix per frame pair, ``scipy.optimize.
  linear_sum_assignment``), chained back to frame 0, so each tube follows matched patches; the temporal
  attention of :class:`DividedBlock` runs along the aligned tubes; the result is put back in place
  (de-alignment), then spatial attention and MLP. Cost: the similarity matrices are counted (bmm,
  (T-1) (h w)^2 D); the assignment itself is a serial O((h w)^3) CPU algorithm per frame pair, not a
  multiply-add count: a counter sees nothing of it (on the meta device the identity matching is used).
* :class:`TokenShift` -- temporal shift of all tokens (TSM, Lin et al. ICCV 2019, on CLIP tokens as
  ActionCLIP's "shift", ILA Table 4 "Temporal Shift"): 1/``n_div`` of the channels from t+1, 1/``n_div``
  from t-1, zero padding; a control point before the attention of every block; no multiply-adds.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from tembench.models.layers import Attention, LayerNorm
from tembench.models.protocol import Option, Site, TemporalModule


def _take_clip_parts(block: nn.Module, base: nn.Module) -> None:
    block.attn, block.ln_1, block.mlp, block.ln_2 = base.attn, base.ln_1, base.mlp, base.ln_2
    block.control_point_c, block.control_point1, block.control_point2 = (
        base.control_point_c, base.control_point1, base.control_point2)


class JointBlock(nn.Module):
    """CLIP block with joint space-time attention (``mode``: ``replace`` or ``add``, see the module doc)."""

    def __init__(self, base: nn.Module, width: int, frames: int, mode: str = "replace"):
        super().__init__()
        if mode not in ("replace", "add"):
            raise ValueError(f"joint attention mode must be 'replace' or 'add', got {mode!r}")
        self.frames, self.mode = frames, mode
        _take_clip_parts(self, base)
        if mode == "add":
            self.temporal = TemporalAttention(width, frames, joint=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.control_point1(self.control_point_c(x))
        if self.mode == "add":
            x = torch.cat([x[:1], x[1:] + self.temporal(x[1:])])
            x = x + self.attn(self.ln_1(x))
            x = self.control_point2(x)
            return x + self.mlp(self.ln_2(x))
        length, nt, d = x.shape
        t = self.frames
        # (L, N*T, D) -> (T*L, N, D)
        y = x.view(length, nt // t, t, d).permute(2, 0, 1, 3).reshape(t * length, nt // t, d)
        y = self.attn(self.ln_1(y))
        x = x + y.view(t, length, nt // t, d).permute(1, 2, 0, 3).reshape(length, nt, d)
        x = self.control_point2(x)
        return x + self.mlp(self.ln_2(x))


class TemporalAttention(nn.Module):
    """Pre-LN attention over time at every patch position (``joint``: over all T x h x w patches of
    the clip), output Linear zero-initialised (TimeSformer)."""

    def __init__(self, width: int, frames: int, joint: bool = False):
        super().__init__()
        self.frames, self.joint = frames, joint
        self.temporal_ln = LayerNorm(width)
        self.temporal_attn = Attention(width, max(1, width // 64))
        self.temporal_fc = nn.Linear(width, width)
        nn.init.zeros_(self.temporal_fc.weight)
        nn.init.zeros_(self.temporal_fc.bias)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """(hw, N*T, D) -> the temporal update (hw, N*T, D)."""
        hw, nt, d = patches.shape
        t, n = self.frames, nt // self.frames
        y = patches.view(hw, n, t, d).permute(2, 0, 1, 3)  # (T, hw, N, D)
        y = y.reshape(t * hw, n, d) if self.joint else y.reshape(t, hw * n, d)
        y = self.temporal_fc(self.temporal_attn(self.temporal_ln(y)))
        return y.view(t, hw, n, d).permute(1, 2, 0, 3).reshape(hw, nt, d)


class DividedBlock(nn.Module):
    def __init__(self, base: nn.Module, width: int, frames: int):
        super().__init__()
        _take_clip_parts(self, base)
        self.temporal = TemporalAttention(width, frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.control_point1(self.control_point_c(x))
        x = torch.cat([x[:1], x[1:] + self.temporal(x[1:])])
        x = x + self.attn(self.ln_1(x))
        x = self.control_point2(x)
        return x + self.mlp(self.ln_2(x))


def hungarian_alignment(patches: torch.Tensor, frames: int) -> torch.Tensor:
    """(hw, N*T, D) -> index (N, T, hw): for frame t, which of its patches lies on each tube (tubes in
    frame 0's order). Pairwise cosine similarity of adjacent frames is a counted bmm; the assignment is
    scipy's Hungarian algorithm on CPU (identity on the meta device)."""
    hw, nt, d = patches.shape
    n, t = nt // frames, frames
    p = patches.view(hw, n, t, d).permute(1, 2, 0, 3)  # (N, T, hw, D)
    p = p / p.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    sim = torch.bmm(p[:, 1:].reshape(-1, hw, d), p[:, :-1].reshape(-1, hw, d).transpose(1, 2))  # cur x prev
    identity = torch.arange(hw, device=patches.device).expand(n, t, hw)
    if patches.is_meta:
        return identity
    from scipy.optimize import linear_sum_assignment

    sim = sim.detach().view(n, t - 1, hw, hw).float().cpu().numpy()  # the assignment is not differentiated
    index = np.tile(np.arange(hw), (n, t, 1))
    for b in range(n):
        for k in range(1, t):
            cur, prev = linear_sum_assignment(-sim[b, k - 1])  # cur[i] matched to prev[i]
            match = np.empty(hw, dtype=np.int64)
            match[prev] = cur  # for each patch of frame k-1, its match in frame k
            index[b, k] = match[index[b, k - 1]]  # follow the tube from frame 0
    return torch.as_tensor(index, device=patches.device)


class ATABlock(nn.Module):
    def __init__(self, base: nn.Module, width: int, frames: int):
        super().__init__()
        self.frames = frames
        _take_clip_parts(self, base)
        self.temporal = TemporalAttention(width, frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.control_point1(self.control_point_c(x))
        length, nt, d = x.shape
        patches = x[1:]
        hw, n, t = length - 1, nt // self.frames, self.frames
        index = hungarian_alignment(patches, t).reshape(n * t, hw)  # (N*T, hw)
        gather = index.t().unsqueeze(-1).expand(hw, nt, d)
        aligned = torch.gather(patches, 0, gather)  # tube order
        update = self.temporal(aligned)
        restored = torch.zeros_like(update).scatter(0, gather, update)  # de-alignment
        x = torch.cat([x[:1], patches + restored])
        x = x + self.attn(self.ln_1(x))
        x = self.control_point2(x)
        return x + self.mlp(self.ln_2(x))


class TokenShift(nn.Module):
    """Temporal shift of all tokens (L, N*T, D): 1/n_div of the channels from t+1, 1/n_div from t-1."""

    def __init__(self, frames: int, n_div: int = 8):
        super().__init__()
        self.frames, self.n_div = frames, n_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, nt, d = x.shape
        t, fold = self.frames, d // self.n_div
        x = x.view(length, nt // t, t, d)
        out = torch.zeros_like(x)
        out[:, :, :-1, :fold] = x[:, :, 1:, :fold]
        out[:, :, 1:, fold:2 * fold] = x[:, :, :-1, fold:2 * fold]
        out[:, :, :, 2 * fold:] = x[:, :, :, 2 * fold:]
        return out.view(length, nt, d)


def _make_joint(site: Site, mode: str) -> JointBlock:
    return JointBlock(site.current, site.channels, site.frames, mode)


def _make_divided(site: Site) -> DividedBlock:
    return DividedBlock(site.current, site.channels, site.frames)


def _make_ata(site: Site) -> ATABlock:
    return ATABlock(site.current, site.channels, site.frames)


def _make_token_shift(site: Site, n_div: int) -> TokenShift:
    return TokenShift(site.frames, n_div)


JOINT = TemporalModule(
    name="joint",
    slots=("clip_vit.block",),
    factory=_make_joint,
    options={"mode": Option("replace", choices=("replace", "add"),
                            doc="replace: TimeSformer's joint attention; add: CLIP + a joint attention")},
    doc="joint space-time attention in every block (TimeSformer §3)",
)
DIVIDED = TemporalModule(
    name="divided", slots=("clip_vit.block",), factory=_make_divided,
    doc="divided space-time attention in every block (TimeSformer §3)",
)
ATA = TemporalModule(
    name="ata", slots=("clip_vit.block",), factory=_make_ata,
    doc="alignment-guided temporal attention in every block (ATA, NeurIPS 2022)",
)
TSHIFT = TemporalModule(
    name="tshift",
    slots=("clip_vit.before_attention",),
    factory=_make_token_shift,
    options={"n_div": Option(8, doc="1/n_div of the channels shifted each way")},
    doc="temporal shift of all tokens before the attention of every block (ILA Table 4)",
)
SPECS = (JOINT, DIVIDED, ATA, TSHIFT)
