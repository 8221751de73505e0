"""Arithmetic Temporal Module (Wu et al., "What Can Simple Arithmetic Operations Do for Temporal
Modeling?", ICCV 2023), following the paper (§3.2-3.3, Appendix A.1 and B) and the official code
(whwu95/ATM ``modules/ATM.py``, ``modules/temporal_modeling.py``), with the official state-dict names.

ATM works on frame features x of shape (N*T, C, H, W) and returns the same shape. For one arithmetic
operation (one *operation block*):

1. **stem** (``downsample``): Conv2d 3x3 C -> ``hidden`` (64) + BN + ReLU, stride 2 when
   ``downsample`` is set: the 28 -> 14 resolution trick of Appendix A.1 (ResNet res2/res3);
2. **context spanning** (§3.2): every frame t is paired with its Z context frames. Z = 1: the previous
   frame (frame 0 is paired with itself), as the code does (the paper's text says the next frame);
   Z = 2, 4, 6: frames t-Z/2 ... t+Z/2, *including t itself* (the code's ``window[0] = Z + 1``, zero
   frames beyond the clip), so Z = 4 gives five pairs. The published R18 GFLOPs of Table 1c
   (15.4 / 16.5 / 17.7 / 18.8 G for Z = 1 / 2 / 4 / 6) are reproduced only with these pair counts;
3. **arithmetic operation** (§3.3, Eq. 2-5) between the anchor a and the context frame b:
   ``add`` a + b, ``sub`` b - a, ``div`` log(1 + |b|) - log(1 + |a|) (Eq. 5 with epsilon = 1; the
   features are non-negative after the stem's ReLU), ``mul`` the local P x P correlation (cost volume,
   Eq. 4) of the L2-normalised features: for every anchor position, the cosine similarity with the
   context frame at the P*P displacements (zero outside the map), followed by the UV -> C encoder
   (``uv2c``: four Conv3d (1,3,3) + BN + ReLU layers, 1 -> 4 -> 16 -> 64 -> 64 channels, P x P -> 1 x 1).
   ``context`` uses the context frame's features themselves (Table A.4, "ATM (Context features)");
4. **feature extractor** (§3.2, Table 1e), per pair and frame: ``conv`` two 3x3 convolutions (Conv
   Stack, default), ``fc`` one 1x1 convolution, ``mlp`` three 1x1 convolutions (FC x 3); each + BN + ReLU;
5. **domain transformation** (§3.2): the Z pairs are regrouped into channels (Z*64), fused by a 3x3
   convolution to 64 (+ BN + ReLU) and projected back to C by a 1x1 convolution (a stride-2 transposed
   1x1 convolution with the 28 -> 14 trick), zero-initialised, no BN; the result is added to x
   (residual) and passed through ReLU, as in the code.

Steps 4-5 are the official ``DomainTransfer`` (``sim2vis``, ``diff2vis``, ...).

Combining operations (Appendix B, Figure A.1, Table A.5; ``combination``):

* ``atm`` (ATM-style, default, the code's ``ATMBlock``): one operation block after the other, each with
  its own stem and domain transformation, each added to the backbone features (x <- ReLU(x + block(x)));
* ``parallel``: every block reads the same x; x <- ReLU(x + sum of the blocks);
* ``cascade``: each block reads the previous block's output (in the visual domain, without the
  residual), only the last is added to x: x <- ReLU(x + block_k(...block_1(x))). Figure A.1 is not
  in the text we have; this is our reading of "cascade".

:class:`TokenATM` applies ATM to ViT tokens (L, N*T, D): the [CLS] token is kept, the patch tokens are
reshaped to (N*T, D, H, W) (Appendix A.1). :class:`TokenT1D` is ATM's "T-Conv" on ViT (§4.3): a
depthwise temporal convolution (kernel 3) on the [CLS] token only, initialised as a shift of 1/4 + 1/4
of the channels (the code's ``TokenT1D``, ``n_div = 4``).

Cost: the correlation is a batched matmul over unfolded P x P windows, so a counter (ours, and
fvcore's ``aten::bmm`` rule, exactly) sees its C * P^2 * H * W multiply-adds per pair, as category
``bmm`` (left out by the ``no-bmm`` convention, like attention matmuls). The official code's naive
path, a full HW x HW einsum, would count HW / P^2 times more; its optional CUDA correlation sampler
would count nothing.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from tembench.models.protocol import Option, Site, TemporalModule
from tembench.models.temporal.tconv import TemporalConv

OPERATIONS = ("mul", "sub", "add", "div", "context")
OPERATION_SYMBOLS = ("+", "-", "x", "*", "/", "÷", "×", "−")  # aliases of add, sub, mul, mul, div, div, mul, sub
COMBINATIONS = ("atm", "parallel", "cascade")
EXTRACTORS = ("conv", "fc", "mlp")
# official attribute names: the block of each operation in ATMBlock, its DomainTransfer inside the block
LAYER_NAMES = {"mul": "corrlayer", "sub": "difflayer", "add": "intelayer", "div": "divlayer", "context": "ctxlayer"}
TRANSFER_NAMES = {"mul": "sim2vis", "sub": "diff2vis", "add": "inte2vis", "div": "div2vis", "context": "ctx2vis"}


def num_pairs(context: int) -> int:
    """Number of (anchor, context) pairs per frame for the paper's context range Z."""
    if context == 1:
        return 1
    if context < 1 or context % 2:
        raise ValueError(f"ATM context range Z must be 1 or an even number, got {context!r}")
    return context + 1


def span_context(x: torch.Tensor, frames: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N*T, C, H, W) -> (anchors, contexts), each (N*T*Z', C, H, W), pairs ordered (n, t, z)."""
    nt, c, h, w = x.shape
    x = x.view(nt // frames, frames, c, h, w)
    if context == 1:
        previous = torch.cat([x[:, :1], x[:, :-1]], dim=1)
        return previous.reshape(nt, c, h, w), x.reshape(nt, c, h, w)
    z = num_pairs(context)
    anchor = x.unsqueeze(2).expand(-1, -1, z, -1, -1, -1).reshape(nt * z, c, h, w)
    padded = F.pad(x, (0, 0, 0, 0, 0, 0, z // 2, z // 2))  # zero frames beyond the clip
    ctx = padded.unfold(1, z, 1)  # (N, T, C, H, W, Z)
    return anchor, ctx.permute(0, 1, 5, 2, 3, 4).reshape(nt * z, c, h, w)


def l2_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Over channels, eps added to the sum of squares (as the code does)."""
    return x / (x.pow(2).sum(dim=1, keepdim=True) + eps).sqrt()


def local_correlation(anchor: torch.Tensor, context: torch.Tensor, window: int) -> torch.Tensor:
    """Cosine cost volume: (M, C, H, W) x2 -> (M, P, P, H, W).

    out[m, v, u, h, w] = <a[m, :, h, w], b[m, :, h + v - k, w + u - k]>, k = P // 2, zero outside the
    map; the first displacement axis is vertical (the code's ``_corr_abs_to_rel`` layout).
    """
    a, b = l2_normalize(anchor), l2_normalize(context)
    m, c, h, w = a.shape
    k = window // 2
    windows = F.pad(b, (k, k, k, k)).unfold(2, window, 1).unfold(3, window, 1)  # (M, C, H, W, P, P)
    windows = windows.permute(0, 2, 3, 1, 4, 5).reshape(m * h * w, c, window * window)
    # one (1 x C) @ (C x P^2) product per anchor position: C * P^2 multiply-adds each
    corr = torch.bmm(a.permute(0, 2, 3, 1).reshape(m * h * w, 1, c), windows)
    return corr.view(m, h, w, window, window).permute(0, 3, 4, 1, 2)


def _conv3d_bn_relu(cin: int, cout: int, kernel=(1, 3, 3), stride=(1, 1, 1), padding=(0, 1, 1)) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


def _stem(channels: int, hidden: int, downsample: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, hidden, kernel_size=3, stride=2 if downsample else 1, padding=1, bias=False),
        nn.BatchNorm2d(hidden),
        nn.ReLU(inplace=True),
    )


class _RegroupContext(nn.Module):
    """(N*Z, C, T, H, W) -> (N, Z*C, T, H, W): the Z axis joins the channels (context-major)."""

    def __init__(self, pairs: int):
        super().__init__()
        self.pairs = pairs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nz, c, t, h, w = x.shape
        return x.reshape(nz // self.pairs, self.pairs * c, t, h, w)


class _FoldTime(nn.Module):
    """(N, C, T, H, W) -> (N*T, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        return x.transpose(1, 2).reshape(n * t, c, h, w)


class DomainTransfer(nn.Module):
    """Feature extractor + domain transformation (the code's ``DomainTransfer``).

    (N*Z, hidden, T, h, w) -> (N*T, channels, H, W); H, W = h, w, or 2h, 2w (``downsample``).
    """

    def __init__(self, hidden: int, channels: int, pairs: int, extractor: str = "conv", downsample: bool = False):
        super().__init__()
        if extractor not in EXTRACTORS:
            raise ValueError(f"ATM extractor must be one of {EXTRACTORS}, got {extractor!r}")
        if extractor == "conv":  # Conv Stack: two 3x3 convolutions over the spatial axes
            layers = [_conv3d_bn_relu(hidden, hidden), _conv3d_bn_relu(hidden, hidden)]
        else:  # FC: one 1x1; MLP: FC x 3
            n = 1 if extractor == "fc" else 3
            layers = [_conv3d_bn_relu(hidden, hidden, (1, 1, 1), padding=(0, 0, 0)) for _ in range(n)]
        for i, layer in enumerate(layers, 1):
            setattr(self, f"conv{i}", layer)
        self.extractor_layers = len(layers)
        self.conv3_fuse = nn.Sequential(
            _RegroupContext(pairs),
            nn.Conv3d(hidden * pairs, hidden, (1, 3, 3), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(hidden),
            nn.ReLU(inplace=True),
        )
        if downsample:
            project = nn.ConvTranspose3d(hidden, channels, 1, stride=(1, 2, 2), output_padding=(0, 1, 1), bias=False)
        else:
            project = nn.Conv3d(hidden, channels, 1, bias=False)
        nn.init.zeros_(project.weight)  # the block starts as the identity (before the ReLU)
        self.upsample = nn.Sequential(project, _FoldTime())

    def forward(self, x: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
        for i in range(1, self.extractor_layers + 1):
            x = getattr(self, f"conv{i}")(x)
        x = self.conv3_fuse(x)
        project, fold = self.upsample
        if isinstance(project, nn.ConvTranspose3d):
            x = project(x, output_size=(x.shape[2], *out_hw))
        else:
            x = project(x)
        return fold(x)


class UV2C(nn.Module):
    """The correlation encoder (the code's ``Conv2D_UV2C``): each P x P x Z' volume -> 64 x Z'."""

    def __init__(self, channels=(4, 16, 64, 64)):
        super().__init__()
        self.conv0 = _conv3d_bn_relu(1, channels[0])
        self.conv1 = _conv3d_bn_relu(channels[0], channels[1], stride=(1, 2, 2))
        self.conv2 = _conv3d_bn_relu(channels[1], channels[2], stride=(1, 2, 2))
        self.conv3 = _conv3d_bn_relu(channels[2], channels[3], padding=(0, 0, 0))

    def forward(self, corr: torch.Tensor, frames: int, pairs: int) -> torch.Tensor:
        """corr (N*T*Z', P, P, h, w) -> (N*Z', 64, T, h, w)."""
        ntz, p, _, h, w = corr.shape
        n = ntz // (frames * pairs)
        x = corr.view(n, frames, pairs, p, p, h, w).permute(0, 1, 5, 6, 2, 3, 4)  # n t h w z v u
        x = x.reshape(n * frames * h * w, 1, pairs, p, p)
        x = self.conv3(self.conv2(self.conv1(self.conv0(x))))  # (n t h w, 64, z, 1, 1)
        if x.shape[-2:] != (1, 1):
            raise ValueError(f"ATM correlation window P={p} does not reduce to 1x1 (use 9, 10, 11 or 12)")
        c = x.shape[1]
        x = x.view(n, frames, h, w, c, pairs).permute(0, 5, 4, 1, 2, 3)  # n z c t h w
        return x.reshape(n * pairs, c, frames, h, w)


class SimTransform(nn.Module):
    """Stem, context spanning and the P x P correlation (the code's ``SimTransform``)."""

    def __init__(self, channels: int, hidden: int, frames: int, context: int, window: int, downsample: bool):
        super().__init__()
        self.frames, self.context, self.window = frames, context, window
        self.downsample = _stem(channels, hidden, downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        anchor, ctx = span_context(self.downsample(x), self.frames, self.context)
        return local_correlation(anchor, ctx, self.window)


class CorrelationBlock(nn.Module):
    """ATM(x): multiplication as local correlation (the code's ``SimBlock``); returns the residual."""

    operation = "mul"

    def __init__(self, channels, frames, context=4, window=9, extractor="conv", hidden=64, downsample=False):
        super().__init__()
        self.frames, self.pairs = frames, num_pairs(context)
        self.sim = SimTransform(channels, hidden, frames, context, window, downsample)
        self.uv2c = UV2C((4, 16, 64, hidden))
        self.sim2vis = DomainTransfer(hidden, channels, self.pairs, extractor, downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corr = self.uv2c(self.sim(x), self.frames, self.pairs)
        return self.sim2vis(corr, x.shape[-2:])


class PairBlock(nn.Module):
    """ATM(+), ATM(-), ATM(÷) and ATM(context features) (the code's ``IntegrationBlock``,
    ``DiffBlock``, ``DivBlock``); returns the residual."""

    def __init__(self, operation, channels, frames, context=4, extractor="conv", hidden=64, downsample=False):
        super().__init__()
        if operation not in ("add", "sub", "div", "context"):
            raise ValueError(f"not a pair-wise elementwise ATM operation: {operation!r}")
        self.operation, self.frames, self.context = operation, frames, context
        self.pairs = num_pairs(context)
        self.downsample = _stem(channels, hidden, downsample)
        setattr(self, TRANSFER_NAMES[operation], DomainTransfer(hidden, channels, self.pairs, extractor, downsample))

    def combine(self, anchor: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        if self.operation == "sub":
            return ctx - anchor
        if self.operation == "add":
            return ctx + anchor
        if self.operation == "div":
            return torch.log1p(ctx.abs()) - torch.log1p(anchor.abs())
        return ctx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        anchor, ctx = span_context(self.downsample(x), self.frames, self.context)
        y = self.combine(anchor, ctx)  # (N*T*Z', hidden, h, w)
        ntz, c, h, w = y.shape
        n = ntz // (self.frames * self.pairs)
        y = y.view(n, self.frames, self.pairs, c, h, w).permute(0, 2, 3, 1, 4, 5)  # (N, Z', C, T, h, w)
        y = y.reshape(n * self.pairs, c, self.frames, h, w)
        return getattr(self, TRANSFER_NAMES[self.operation])(y, x.shape[-2:])


def _operation_name(op: str) -> str:
    aliases = {"+": "add", "-": "sub", "x": "mul", "*": "mul", "/": "div", "÷": "div", "×": "mul", "−": "sub"}
    op = aliases.get(op, op)
    if op not in OPERATIONS:
        raise ValueError(f"unknown ATM operation {op!r}; one of {', '.join(OPERATIONS)} (or + - x /)")
    return op


class ATM(nn.Module):
    """Arithmetic Temporal Module on frame features (N*T, C, H, W) -> same shape."""

    def __init__(
        self,
        channels: int,
        frames: int,
        operations=("mul", "sub"),
        context: int = 4,
        window: int = 9,
        extractor: str = "conv",
        combination: str = "atm",
        hidden: int = 64,
        downsample: bool = False,
    ):
        super().__init__()
        ops = [_operation_name(op) for op in operations]
        if not ops or len(set(ops)) != len(ops):
            raise ValueError(f"ATM needs one or more distinct operations, got {list(operations)!r}")
        if combination not in COMBINATIONS:
            raise ValueError(f"ATM combination must be one of {COMBINATIONS}, got {combination!r}")
        self.channels, self.frames, self.operations, self.combination = channels, frames, tuple(ops), combination
        self.context, self.window, self.downsample = context, window, downsample
        for op in ops:
            if op == "mul":
                block = CorrelationBlock(channels, frames, context, window, extractor, hidden, downsample)
            else:
                block = PairBlock(op, channels, frames, context, extractor, hidden, downsample)
            setattr(self, LAYER_NAMES[op], block)

    def blocks(self):
        return [getattr(self, LAYER_NAMES[op]) for op in self.operations]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.combination == "atm":
            for block in self.blocks():
                x = F.relu(x + block(x))
            return x
        if self.combination == "parallel":
            out = x
            for block in self.blocks():
                out = out + block(x)
            return F.relu(out)
        y = x
        for block in self.blocks():
            y = block(y)
        return F.relu(x + y)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, frames={self.frames}, operations={list(self.operations)}, "
                f"Z={self.context}, P={self.window}, combination={self.combination}, downsample={self.downsample}")


class TokenATM(ATM):
    """ATM on ViT tokens (L, N*T, D): the [CLS] token passes unchanged, the H x W patch tokens go
    through ATM as a (N*T, D, H, W) map (Appendix A.1; the code's ``ATMBlock.forward``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls, tokens = x[:1], x[1:]
        n, nt, d = tokens.shape
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"ATM needs a square token grid, got {n} patch tokens")
        fmap = tokens.permute(1, 2, 0).reshape(nt, d, side, side)
        fmap = super().forward(fmap)
        return torch.cat([cls, fmap.flatten(2).permute(2, 0, 1)], dim=0)


class TokenT1D(nn.Module):
    """ATM's T-Conv on ViT: depthwise Conv1d (kernel 3, no bias) over time on the [CLS] token of
    (L, N*T, D) tokens; channels [0, D/4) start as "take t+1", [D/4, D/2) as "take t-1", the rest as
    the identity (the code's ``TokenT1D``, mode ``shift``)."""

    def __init__(self, channels: int, frames: int, n_div: int = 4):
        super().__init__()
        self.frames, self.n_div = frames, n_div
        self.conv = nn.Conv1d(channels, channels, kernel_size=3, padding=1, groups=channels, bias=False)
        fold = channels // n_div
        with torch.no_grad():
            w = self.conv.weight
            w.zero_()
            w[:fold, 0, 2] = 1
            w[fold : 2 * fold, 0, 0] = 1
            w[2 * fold :, 0, 1] = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, nt, d = x.shape
        cls = x[0].view(nt // self.frames, self.frames, d).transpose(1, 2)  # (N, D, T)
        cls = self.conv(cls).transpose(1, 2).reshape(1, nt, d)
        return torch.cat([cls, x[1:]], dim=0)

    def extra_repr(self) -> str:
        return f"frames={self.frames}, n_div={self.n_div}"


# ------------------------------------------------------------------------------------------
# Where ATM goes (the temporal-module protocol, :mod:`tembench.models.protocol`)
# ------------------------------------------------------------------------------------------

def _common_options(downsample: Option) -> tuple[dict[str, Option], dict[str, Option]]:
    """The options ATM takes on every host, in two parts (a host's ``position`` goes between them)."""
    return {
        "operations": Option(["mul", "sub"], choices=OPERATIONS + OPERATION_SYMBOLS,
                             doc="applied in this order (the code: SimBlock, then DiffBlock)"),
        "context": Option(4, doc="Z, the context range (the code's window[0] = Z + 1, anchor included)"),
        "window": Option(9, doc="P, the correlation neighbourhood P x P"),
    }, {
        "extractor": Option("conv", choices=EXTRACTORS, doc="feature extractor (Table 1e)"),
        "combination": Option("atm", choices=COMBINATIONS, doc="how operations combine (Appendix B)"),
        "hidden": Option(64, doc="channels inside ATM"),
        "downsample": downsample,
        "tconv": Option(True, doc="ATM's T-Conv (§4.3) as well"),
    }


def _resnet_options() -> dict[str, Option]:
    head, tail = _common_options(Option("auto", type=(str, bool), choices=("auto", True, False),
                                        doc="the 28 -> 14 trick; auto: at res2/res3 (Appendix A.1)"))
    return {
        "stages": Option([3, 4], choices=(1, 2, 3, 4), doc="ResNet stages with the T-Conv (1 = res2; res4, res5)"),
        **head,
        "position": Option(3, choices=(2, 3, 4, 5), doc="ATM after the last block of res<position>"),
        **tail,
    }


def _make_resnet(site: Site, stages: list[int], position: int, tconv: bool, downsample, **options):
    """T-Conv after conv1 of the blocks of ``stages``; ATM after the last block of res``position``."""
    if site.slot == "resnet.after_conv1":
        return TemporalConv(site.channels, site.frames, 3, channelwise=True) if tconv and site.stage in stages else None
    if position not in (2, 3, 4, 5):
        raise ValueError(f"ATM position on a ResNet is a stage number 2-5 (res2-res5), got {position!r}")
    if site.stage != position - 1:
        return None
    if downsample == "auto":
        downsample = position in (2, 3)
    return ATM(site.channels, site.frames, downsample=downsample, **options)


def atm_position(position, layers: int) -> int:
    """The ViT block ATM sits in: ``"auto"`` is block 7 of 12, 14 of 24 (the official configs)."""
    if position == "auto":
        return 7 if layers == 12 else 14 if layers == 24 else layers // 2
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < layers:
        raise ValueError(f"ATM position must be a block index in [0, {layers}) or 'auto', got {position!r}")
    return position


def _vit_options() -> dict[str, Option]:
    head, tail = _common_options(Option(False, doc="the 28 -> 14 trick (for CNN feature maps)"))
    return {**head, "position": Option("auto", type=(str, int), doc="block index; auto: 7 of 12, 14 of 24"),
            **tail}


def _make_vit(site: Site, position, tconv: bool, **options):
    """TokenATM as ``control_point_c`` of block ``position``; T-Conv on [CLS] before the attention and the MLP."""
    if site.slot == "clip_vit.block_start":
        if site.block != atm_position(position, site.blocks):
            return None
        return TokenATM(site.channels, site.frames, **options)
    return TokenT1D(site.channels, site.frames) if tconv else None


def _make_vit_tconv(site: Site, n_div: int) -> TokenT1D:
    return TokenT1D(site.channels, site.frames, n_div)


RESNET = TemporalModule(
    name="atm",
    slots=("resnet.after_conv1", "resnet.stage_end"),
    factory=_make_resnet,
    options=_resnet_options(),
    doc="ATM after the last block of res<position> (ATM §3.2, App. A.1); T-Conv in res4-res5 (§4.3)",
)
VIT = TemporalModule(
    name="atm",
    slots=("clip_vit.block_start", "clip_vit.before_attention", "clip_vit.before_mlp"),
    factory=_make_vit,
    options=_vit_options(),
    doc="TokenATM at the start of block <position>; T-Conv on [CLS] in every block (ATM App. A.1, §4.3)",
)
VIT_TCONV = TemporalModule(
    name="tconv",
    slots=("clip_vit.before_attention", "clip_vit.before_mlp"),
    factory=_make_vit_tconv,
    options={"n_div": Option(4, doc="1/n_div of the channels start as a shift each way")},
    doc="ATM's T-Conv alone: depthwise temporal conv on [CLS] (ATM Table 2b)",
)
SPECS = (RESNET, VIT, VIT_TCONV)
