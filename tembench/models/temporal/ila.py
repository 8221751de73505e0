"""Implicit Learnable Alignment (Tu et al., "Implicit Temporal Modeling with Learnable Alignment for
Video Recognition", ICCV 2023), following the paper (§3.1-3.3, Eq. 2-7 and 9-10, Appendix A-B) and
the released code (Francis-Rings/ILA: ``models/align.py``, ``models/mat.py``; branch ``master`` is the
Kinetics-400 variant, branch ``SSV2`` the Something-Something v2 one), with the released state-dict
names (``visual.transformer.resblocks.{i}.{message_fc, message_ln, message_attn.*,
temporal_skip_fc, temporal_skip_align_fc}``).

An IST block (§3.1) is a CLIP residual block plus ILA. ILA works on the tokens (L, N*T, D) of the
block input; L = 1 + h*w ([CLS] first):

1. **frame pairs** (§3.2): the clip is duplicated into the T-1 adjacent pairs (z_{t-1}, z_t) ("pre",
   "cur"), concatenated on channels: (N*(T-1), 2D, h, w). In the released code the tokens first go
   through ``message_fc`` (Linear D x D) and ``message_ln`` (LayerNorm); ``message=False`` feeds z itself,
   as the paper's Eq. 5 reads;
2. **interactive points** (Eq. 5, :class:`ILA`): a convolution module on the pair. ``interactive_block``
   is, for Kinetics-400 (``interactive="k400"``, branch master), a depthwise-separable convolution
   (depthwise 3x3 on 2D channels + BN + ReLU, pointwise 1x1 2D -> 256 + BN + ReLU) then a 3x3 convolution
   256 -> 256 + BN + ReLU; for SSv2 (``"ssv2"``, branch SSV2) a full 3x3 convolution 2D -> 256 + BN + ReLU
   then 3x3 256 -> 256 + BN + ReLU (the paper's Appendix A calls this "two additional 3x3 convolution
   layers"; we follow the code). ``prediction_block``: 3x3 256 -> 128 + BN + max-pool 2 + ReLU, 3x3
   128 -> 128 + BN + max-pool 2 + ReLU, global max-pool, then per pair two grouped 1x1 Conv1d (128 -> 64,
   ReLU, 64 -> 4, zero-initialised, tanh), times 0.75: the points (x, y) of frame t-1 and of frame t,
   in [-0.75, 0.75] (the centre at initialisation). ``align="window"`` replaces the convolutions of
   ``interactive_block`` by a 3x3 window attention on the pair (Table 8);
3. **align masks** (Eq. 6, :func:`aligned_mask`): coordinates scaled to [-1, 1]; per axis the weight is
   eta = 1 within delta = 0.25 of the point and max(0, 1 - beta (s - delta)) beyond, beta = 1.5 (the
   code's constants; the 2D mask is the outer product of the two axes). Training averages the masks
   of the point and its 8 neighbours at +-0.2 ("jitter", halved by :meth:`ILA.align_decay`);
4. **aligned features** (Eq. 7): mask x patch tokens, for both frames of every pair. A frame in two
   pairs gets the average of the two (first frame: pair 0's "pre", last frame: the last pair's "cur"),
   as the code merges them; the pooled (sum over h, w) pair feeds the alignment loss (Eq. 9-10,
   :func:`alignment_loss`);
5. **fusion** with the spatial attention (``fusion``):

   * ``released`` (the code, default): x <- x + temporal_skip_align_fc(aligned tokens) +
     temporal_skip_fc(interactive tokens), both Linear D x D zero-initialised; the interactive tokens are
     the 256 interactive channels split 128 (frame t-1) / 128 (frame t), merged per frame as above, a
     temporal Conv3d (3,1,1) 128 -> 128 (``conv``) and Linear 128 -> D (``fc``). Nothing is appended to
     the attention sequence; the pooled features are used only by the loss;
   * ``token`` (the paper, Eq. 3): the aligned features of frame t (from the pair (t-1, t); frame 0 from
     the pair (0, 1)) are mean-pooled into one mutual-information token, appended to the frame's tokens
     for the spatial self-attention and dropped before the MLP (Eq. 4). With ``align="none"`` the token
     is the plain average of the frame's patch features ("Average Pooling", Table 4);
   * ``add``: the aligned features are added element-wise to the frame's patch tokens (Table 9);
   * ``concat``: the aligned patch tokens are appended to the frame's tokens in the spatial attention,
     2x the tokens, and dropped before the MLP (Table 9).

On the ``clip_vit`` host (:data:`VIT`, slot ``clip_vit.block`` of :mod:`tembench.models.protocol`) the CLIP
residual blocks listed in ``blocks`` become :class:`ILABlock` (same CLIP sub-modules and names). Cost:
every convolution, linear layer and the attention over the extra tokens is counted by the fvcore rules;
masks, pooling and merges are elementwise (free), max-pools are not counted (as fvcore).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from tembench.models.layers import LayerNorm
from tembench.models.protocol import Option, Site, TemporalModule

INTERACTIVE = ("k400", "ssv2")
ALIGN = ("conv", "window", "none")
FUSIONS = ("released", "token", "add", "concat")

FLAT = 0.25  # delta: flat radius of the mask (normalised coordinates)
SLOPE = 1.5  # beta: fall-off beyond the flat radius
POINT_SCALE = 0.75  # tanh output x 0.75
JITTER = 0.2  # training-time offsets of the 3x3 jittered points
JITTER_OFFSETS = ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1))
HIDDEN = 256  # interactive channels (128 per frame of a pair)
POINT_HIDDEN = 128


def cat(tensors: list[torch.Tensor], dim: int) -> torch.Tensor:
    """``torch.cat``; on the meta device only the shape is made (concatenation is free under every
    counting convention, and PyTorch's meta ``cat`` is slow Python reference code)."""
    if tensors[0].is_meta:
        shape = list(tensors[0].shape)
        shape[dim] = sum(t.shape[dim] for t in tensors)
        return tensors[0].new_empty(shape)
    return torch.cat(tensors, dim)


def aligned_mask(points: torch.Tensor, grid: int, flat: float = FLAT, slope: float = SLOPE) -> torch.Tensor:
    """Eq. 6: points (..., 2) as (x, y) in [-1, 1] -> masks (..., grid, grid), rows = y, columns = x.

    Per axis: 1 where |g - p| <= ``flat``, else max(0, 1 - ``slope`` (|g - p| - ``flat``)), g the cell
    centres scaled to [-1, 1]; the 2D mask is the product of the two axes. On the meta device (cost
    counting) only the shape is made: the mask is elementwise work, free under every convention."""
    if points.is_meta:
        return points.new_empty(points.shape[:-1] + (grid, grid))
    g = torch.arange(grid, device=points.device, dtype=points.dtype)
    g = g / (grid - 1) * 2 - 1 if grid > 1 else g
    d = (g.view(grid, 1) - points.unsqueeze(-2)).abs()  # (..., grid, 2)
    m = torch.where(d <= flat, torch.ones_like(d), (1 - (d - flat) * slope).clamp(min=0))
    return m[..., :, 1].unsqueeze(-1) * m[..., :, 0].unsqueeze(-2)


def run_layers(layers: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply the layers of a container in order through their ``forward`` (no per-layer module call:
    the ops count under the container's path, and counting on the meta device stays fast)."""
    for layer in layers:
        if isinstance(layer, nn.Sequential):
            x = run_layers(layer, x)
        elif not (x.is_meta and isinstance(layer, _FREE_SAME_SHAPE)):  # free and shape-preserving: skip on meta
            x = layer.forward(x)
    return x


_FREE_SAME_SHAPE = (nn.ReLU, nn.Tanh)


class Layers(nn.Sequential):
    """``nn.Sequential`` (same names and state-dict keys as the released code's) run by :func:`run_layers`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self, x)


class DepthSeparableConv(nn.Module):
    """Depthwise 3x3 (with bias) + BN + ReLU, pointwise 1x1 + BN + ReLU (code: ``Depth_Separable_Convolution``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise_conv = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin), nn.BatchNorm2d(cin),
                                            nn.ReLU())
        self.pointwise_conv = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self.pointwise_conv, run_layers(self.depthwise_conv, x))


class WindowAttention(nn.Module):
    """3x3 window self-attention on a feature map (N, C, h, w) -> (N, cout, h, w) (ILA Table 8).

    Every position attends to its 3x3 neighbourhood (zero padding outside the map) with ``heads``
    heads; query/key/value projections keep the width C, the output projection maps to ``cout``."""

    def __init__(self, channels: int, cout: int, window: int = 3):
        super().__init__()
        self.window, self.heads = window, max(1, channels // 64)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        p, heads = self.window, self.heads
        q, k, v = self.qkv(x.flatten(2).transpose(1, 2)).chunk(3, dim=-1)  # (N, hw, C)
        q = q.reshape(n, h * w, heads, c // heads)

        def windows(t):  # (N, hw, C) -> (N, hw, heads, C/heads, p*p)
            t = F.unfold(t.transpose(1, 2).reshape(n, c, h, w), p, padding=p // 2)  # (N, C*p*p, hw)
            return t.reshape(n, heads, c // heads, p * p, h * w).permute(0, 4, 1, 2, 3)

        attn = torch.einsum("nlhc,nlhcp->nlhp", q * (c // heads) ** -0.5, windows(k)).softmax(dim=-1)
        out = torch.einsum("nlhp,nlhcp->nlhc", attn, windows(v)).reshape(n, h * w, c)
        return self.proj(out).transpose(1, 2).reshape(n, -1, h, w)


class MaxPool(nn.MaxPool2d):
    """2x2 max-pooling; skipped on maps smaller than the window (tiny test inputs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.kernel_size:
            return x
        if x.is_meta:  # free (not counted, as fvcore): shape only
            return x.new_empty(x.shape[:-2] + (x.shape[-2] // self.kernel_size, x.shape[-1] // self.kernel_size))
        return super().forward(x)


class GlobalMaxPool(nn.AdaptiveMaxPool2d):
    """Global max-pooling to 1 x 1 (shape only on the meta device: not counted, as fvcore)."""

    def __init__(self):
        super().__init__(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_empty(x.shape[:-2] + (1, 1)) if x.is_meta else super().forward(x)


class PairsToChannels(nn.Module):
    """(N*(T-1), C, 1, 1) -> (N, C, T-1) (code: ``SqueezeAndRerange``)."""

    def __init__(self, pairs: int):
        super().__init__()
        self.pairs = pairs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return x.view(-1, self.pairs, x.shape[1]).transpose(1, 2)


def _interactive_block(width: int, interactive: str, align: str) -> nn.Module:
    if align == "window":
        return Layers(WindowAttention(2 * width, HIDDEN), nn.BatchNorm2d(HIDDEN), nn.ReLU())
    if interactive == "k400":
        return Layers(DepthSeparableConv(2 * width, HIDDEN),
                      nn.Conv2d(HIDDEN, HIDDEN, 3, padding=1), nn.BatchNorm2d(HIDDEN), nn.ReLU())
    if interactive == "ssv2":
        return Layers(nn.Conv2d(2 * width, HIDDEN, 3, padding=1), nn.BatchNorm2d(HIDDEN), nn.ReLU(),
                      nn.Conv2d(HIDDEN, HIDDEN, 3, padding=1), nn.BatchNorm2d(HIDDEN), nn.ReLU())
    raise ValueError(f"ILA interactive block must be one of {', '.join(INTERACTIVE)}, got {interactive!r}")


class ILA(nn.Module):
    """The alignment of one IST block (code: ``models/align.py`` class ``ILA``): frame pairs in,
    aligned features, interactive tokens and pooled pair features out.

    ``interactive``: ``k400`` | ``ssv2``; ``align``: ``conv`` (Eq. 5) | ``window`` (Table 8) | ``none``
    (no point prediction: masks of ones, the average-pooling ablation); ``tokens``: build the
    released code's interactive tokens (``conv``, ``fc``)."""

    def __init__(self, width: int, frames: int, interactive: str = "k400", align: str = "conv",
                 tokens: bool = True):
        super().__init__()
        if frames < 2:
            raise ValueError(f"ILA aligns adjacent frames and needs at least 2 frames, got {frames}")
        if align not in ALIGN:
            raise ValueError(f"ILA align must be one of {', '.join(ALIGN)}, got {align!r}")
        self.width, self.frames, self.align = width, frames, align
        self.jitter = JITTER  # scale of the training-time offsets (halved by align_decay)
        if align == "none":
            return
        self.interactive_block = _interactive_block(width, interactive, align)
        if tokens:
            self.fc = nn.Linear(POINT_HIDDEN, width)
            self.conv = nn.Conv3d(POINT_HIDDEN, POINT_HIDDEN, (3, 1, 1), padding=(1, 0, 0))
        self.prediction_block = Layers(
            nn.Conv2d(HIDDEN, POINT_HIDDEN, 3, padding=1), nn.BatchNorm2d(POINT_HIDDEN), MaxPool(2), nn.ReLU(),
            nn.Conv2d(POINT_HIDDEN, POINT_HIDDEN, 3, padding=1), nn.BatchNorm2d(POINT_HIDDEN), MaxPool(2), nn.ReLU(),
            GlobalMaxPool(), PairsToChannels(frames - 1),
            nn.Conv1d(POINT_HIDDEN, 64, 1, groups=2), nn.ReLU(), nn.Conv1d(64, 4, 1, groups=2), nn.Tanh(),
        )
        nn.init.zeros_(self.prediction_block[12].weight)
        nn.init.zeros_(self.prediction_block[12].bias)

    def align_decay(self) -> None:
        """Halve the training-time jitter (the code does it every epoch from epoch 30 on)."""
        self.jitter *= 0.5

    def predict_points(self, interactive: torch.Tensor) -> torch.Tensor:
        """(N*(T-1), 256, h, w) -> (N, T-1, 4): (x, y) of frame t-1, (x, y) of frame t."""
        return self.prediction_block(interactive).transpose(1, 2) * POINT_SCALE

    def masks(self, points: torch.Tensor, grid: int) -> torch.Tensor:
        """(N, T-1, 2) -> (N, T-1, grid, grid), averaged over the jittered points in training."""
        if self.training and not points.is_meta:
            offsets = torch.tensor(JITTER_OFFSETS, dtype=points.dtype, device=points.device) * self.jitter
            return aligned_mask(points.unsqueeze(2) + offsets, grid).mean(2)
        return aligned_mask(points, grid)

    def forward(self, pre: torch.Tensor, cur: torch.Tensor):
        """pre, cur: (N, T-1, h*w, D) patch features of frames t-1 and t of every pair.

        Returns ``(pre_aligned, cur_aligned, interactive)``: the masked features (N, T-1, h*w, D) and the
        interactive map (N*(T-1), 256, h, w) (None with ``align="none"``)."""
        n, pairs, hw, d = pre.shape
        grid = math.isqrt(hw)
        if grid * grid != hw:
            raise ValueError(f"ILA needs a square patch grid, got {hw} patches")
        if self.align == "none":
            return pre, cur, None
        pair = cat([pre, cur], dim=-1).reshape(n * pairs, grid, grid, 2 * d).permute(0, 3, 1, 2)
        interactive = self.interactive_block(pair)
        points = self.predict_points(interactive)  # (N, T-1, 4)
        m_pre = self.masks(points[..., :2], grid).reshape(n, pairs, hw, 1)
        m_cur = self.masks(points[..., 2:], grid).reshape(n, pairs, hw, 1)
        return pre * m_pre, cur * m_cur, interactive

    def interactive_tokens(self, interactive: torch.Tensor, n: int) -> torch.Tensor:
        """Interactive map (N*(T-1), 256, h, w) -> per-frame tokens (N, T, h*w, D) (the released code)."""
        pairs = self.frames - 1
        _, c, h, w = interactive.shape
        x = interactive.view(n, pairs, c, h, w)
        x = merge_pairs(x[:, :, : c // 2], x[:, :, c // 2:])  # (N, T, 128, h, w)
        x = self.conv(x.transpose(1, 2))  # temporal conv over the T frames
        return self.fc(x.flatten(3).permute(0, 2, 3, 1))  # (N, T, hw, D)


def merge_pairs(pre: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
    """Per-pair features of frames t-1 (``pre``) and t (``cur``), (N, T-1, ...) -> per-frame (N, T, ...):
    frame 0 <- pair 0's pre, frame t <- mean(pair t's pre, pair t-1's cur), frame T-1 <- last cur."""
    if pre.is_meta:  # elementwise work: shape only (see :func:`cat`)
        return pre.new_empty((pre.shape[0], pre.shape[1] + 1) + tuple(pre.shape[2:]))
    return torch.cat([pre[:, :1], (pre[:, 1:] + cur[:, :-1]) / 2, cur[:, -1:]], dim=1)


class ILABlock(nn.Module):
    """A CLIP residual block with ILA: the IST block (§3.1). Built from a CLIP
    :class:`~tembench.models.backbones.clip_vit.ResidualAttentionBlock`, whose sub-modules (and
    state-dict names) it keeps; tokens (L, N*T, D) in and out."""

    def __init__(self, base: nn.Module, width: int, frames: int, fusion: str = "released",
                 interactive: str = "k400", align: str = "conv", message: bool = True):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"ILA fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        if fusion == "released" and align == "none":
            raise ValueError("ILA fusion 'released' needs the interactive block (align 'conv' or 'window')")
        self.frames, self.fusion = frames, fusion
        self.attn, self.ln_1, self.mlp, self.ln_2 = base.attn, base.ln_1, base.mlp, base.ln_2
        self.control_point_c, self.control_point1, self.control_point2 = (
            base.control_point_c, base.control_point1, base.control_point2)
        if message:
            self.message_fc = nn.Linear(width, width)
            self.message_ln = LayerNorm(width)
        self.message_attn = ILA(width, frames, interactive, align, tokens=fusion == "released")
        if fusion == "released":
            self.temporal_skip_fc = nn.Linear(width, width)
            self.temporal_skip_align_fc = nn.Linear(width, width)
            for fc in (self.temporal_skip_fc, self.temporal_skip_align_fc):
                nn.init.zeros_(fc.weight)
                nn.init.zeros_(fc.bias)
        self.pooled: torch.Tensor | None = None  # (N, T-1, 2, D), for the alignment loss

    def _align(self, x: torch.Tensor):
        length, nt, d = x.shape
        n, t = nt // self.frames, self.frames
        a = self.message_ln(self.message_fc(x)) if hasattr(self, "message_fc") else x
        a = a.view(length, n, t, d).permute(1, 2, 0, 3)  # (N, T, L, D)
        pre, cur, interactive = self.message_attn(a[:, :-1, 1:], a[:, 1:, 1:])
        if self.training:  # only the alignment loss reads it
            self.pooled = torch.stack([pre.sum(2), cur.sum(2)], dim=2)
        return a, pre, cur, interactive, n

    def _spatial(self, x: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        """Eq. 3-4: attention over the frame's tokens plus ``extra`` (dropped before the MLP)."""
        length = x.shape[0]
        if extra is not None:
            x = cat([x, extra], dim=0)
        x = x + self.attn(self.ln_1(x))
        x = x[:length]
        x = self.control_point2(x)
        return x + self.mlp(self.ln_2(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.control_point_c(x)
        length, nt, d = x.shape
        a, pre, cur, interactive, n = self._align(x)
        x = self.control_point1(x)
        if self.fusion == "released":
            aligned = cat([a[:, :, :1], merge_pairs(pre, cur)], dim=2)  # (N, T, L, D), [CLS] of a
            inter = self.message_attn.interactive_tokens(interactive, n)
            inter = cat([a[:, :, :1], inter], dim=2)
            to_tokens = lambda t: t.permute(2, 0, 1, 3).reshape(length, nt, d)  # noqa: E731
            x = x + self.temporal_skip_align_fc(to_tokens(aligned))
            x = x + self.temporal_skip_fc(to_tokens(inter))
            return self._spatial(x, None)
        # the paper: frame t's aligned features come from the pair (t-1, t); frame 0 from (0, 1)
        own = cat([pre[:, :1], cur], dim=1)  # (N, T, hw, D)
        if self.fusion == "token":
            extra = own.mean(2).reshape(1, nt, d)  # the mutual-information token
            return self._spatial(x, extra)
        if self.fusion == "add":
            patches = x[1:] + own.permute(2, 0, 1, 3).reshape(length - 1, nt, d)
            return self._spatial(cat([x[:1], patches], 0), None)
        return self._spatial(x, own.permute(2, 0, 1, 3).reshape(length - 1, nt, d))  # concat


def parse_blocks(blocks, layers: int) -> list[int]:
    """``"all"`` or a list of 0-based block indices."""
    if blocks == "all":
        return list(range(layers))
    if (not isinstance(blocks, list) or not blocks or len(set(blocks)) != len(blocks)
            or not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < layers for b in blocks)):
        raise ValueError(f"ILA blocks must be 'all' or distinct block indices in [0, {layers}), got {blocks!r}")
    return sorted(blocks)


def alignment_loss(model: nn.Module) -> torch.Tensor:
    """Eq. 9-10 as the code computes it: for every IST block that ran, the mean over pairs of
    1 - cos(pooled aligned t-1, pooled aligned t) (``CosineEmbeddingLoss`` with target 1), summed."""
    losses = [1 - F.cosine_similarity(m.pooled[:, :, 0], m.pooled[:, :, 1], dim=-1).mean()
              for m in model.modules() if isinstance(m, ILABlock) and m.pooled is not None]
    return torch.stack(losses).sum() if losses else torch.zeros(())


def _make(site: Site, blocks, **options) -> ILABlock | None:
    if site.block not in parse_blocks(blocks, site.blocks):
        return None
    return ILABlock(site.current, site.channels, site.frames, **options)


VIT = TemporalModule(
    name="ila",
    slots=("clip_vit.block",),
    factory=_make,
    options={
        "blocks": Option("all", type=(str, list),
                         doc='"all" or 0-based block indices (Table 7: [0, 1, 2] is "Block 1-3")'),
        "fusion": Option("released", choices=FUSIONS, doc="released | token (the paper's MI token) | add | concat"),
        "interactive": Option("k400", choices=INTERACTIVE, doc="k400 (depthwise-separable) | ssv2 (full 3x3)"),
        "align": Option("conv", choices=ALIGN, doc="conv (interactive points) | window (Table 8) | none (pooling)"),
        "message": Option(True, doc="the released code's message_fc + message_ln before the alignment"),
    },
    doc="IST blocks: CLIP block + implicit learnable alignment (ILA §3.1-3.3)",
)
SPECS = (VIT,)
