"""Temporal Adaptive Module (Liu et al., "TAM: Temporal Adaptive Module for Video Recognition",
ICCV 2021, §3.2-3.3), with the variants of its Table 2 (§4.4 "Variants of TAM").

TAM works on the output of a bottleneck's ``conv1`` (TANet-b, §4.3), x of shape (N*T, C, H, W):

* global spatial average pooling gives a (N, C, T) descriptor;
* **local branch** L (§3.2, Eq. 2): Conv1d(C -> C/beta, k=3) -> BN -> ReLU -> Conv1d(C/beta -> C, k=1)
  -> sigmoid, a location-sensitive importance map; the BatchNorm is kept as in the official code
  (``ops/temporal_module.py``), which the published parameter counts need;
* **global branch** G (§3.2, Eq. 3): per channel, Linear(T -> alpha*T) -> BN -> ReLU ->
  Linear(alpha*T -> K) -> softmax, a K-tap aggregation kernel for each (video, channel);
* **aggregation** (§3.3, Eq. 4): Y = G ⊗ (L ⊙ X), a depthwise temporal convolution of L ⊙ X with the
  per-channel kernel (one grouped conv over a (T, H*W) plane, as the official code does).

Variants (``branches``/``order``): ``global`` (aggregation only), ``local`` (excitation only),
``global+se`` (L replaced by a squeeze-and-excitation on each frame's channels, Hu et al. 2018,
reduction ``se_reduction``), and TANet-R, ``order="global-first"``: Y = L(X) ⊙ (G ⊗ X).
State-dict names follow the official release: ``G.0``, ``G.1``, ``G.3``, ``L.0``, ``L.1``, ``L.3``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from tembench.models.protocol import Option, per_block

BRANCHES = ("global+local", "global", "local", "global+se")
ORDERS = ("local-first", "global-first")


class TAM(nn.Module):
    def __init__(
        self,
        channels: int,
        frames: int,
        alpha: int = 2,
        beta: int = 4,
        kernel: int = 3,
        branches: str = "global+local",
        order: str = "local-first",
        local_bn: bool = True,
        se_reduction: int = 8,
    ):
        super().__init__()
        if branches not in BRANCHES:
            raise ValueError(f"TAM branches must be one of {BRANCHES}, got {branches!r}")
        if order not in ORDERS:
            raise ValueError(f"TAM order must be one of {ORDERS}, got {order!r}")
        self.channels, self.frames, self.kernel = channels, frames, kernel
        self.branches, self.order = branches, order
        if branches != "local":
            self.G = nn.Sequential(
                nn.Linear(frames, frames * alpha, bias=False),
                nn.BatchNorm1d(frames * alpha),
                nn.ReLU(inplace=True),
                nn.Linear(frames * alpha, kernel, bias=False),
                nn.Softmax(-1),
            )
        if branches in ("global+local", "local"):
            self.L = nn.Sequential(
                nn.Conv1d(channels, channels // beta, 3, padding=1, bias=False),
                nn.BatchNorm1d(channels // beta) if local_bn else nn.Identity(),
                nn.ReLU(inplace=True),
                nn.Conv1d(channels // beta, channels, 1, bias=False),
                nn.Sigmoid(),
            )
        elif branches == "global+se":
            self.L = nn.Sequential(
                nn.Linear(channels, channels // se_reduction),
                nn.ReLU(inplace=True),
                nn.Linear(channels // se_reduction, channels),
                nn.Sigmoid(),
            )
        if branches != "local":  # official/mmaction init of the global branch
            nn.init.normal_(self.G[0].weight, 0, 0.001)
            nn.init.normal_(self.G[3].weight, 0, 0.001)

    def _importance(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled (N, C, T) -> multiplicative map (N, C, T, 1, 1)."""
        if self.branches == "global+se":
            n, c, t = pooled.shape
            s = self.L(pooled.transpose(1, 2).reshape(n * t, c))
            return s.view(n, t, c).transpose(1, 2).reshape(n, c, t, 1, 1)
        return self.L(pooled).view(*pooled.shape, 1, 1)

    def _aggregate(self, x: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """Depthwise temporal convolution of x (N, C, T, H, W) with the per-(n, c) kernel from G."""
        n, c, t, h, w = x.shape
        theta = self.G(pooled.reshape(n * c, t)).view(n * c, 1, self.kernel, 1)
        y = F.conv2d(x.reshape(1, n * c, t, h * w), theta, padding=(self.kernel // 2, 0), groups=n * c)
        return y.view(n, c, t, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        n, t = nt // self.frames, self.frames
        x = x.view(n, t, c, h, w).permute(0, 2, 1, 3, 4).contiguous()  # (N, C, T, H, W)
        pooled = F.adaptive_avg_pool2d(x.view(n * c, t, h, w), (1, 1)).view(n, c, t)
        if self.branches == "local":
            y = x * self._importance(pooled)
        elif self.branches == "global":
            y = self._aggregate(x, pooled)
        elif self.order == "local-first":
            y = self._aggregate(x * self._importance(pooled), pooled)
        else:
            y = self._importance(pooled) * self._aggregate(x, pooled)
        return y.permute(0, 2, 1, 3, 4).reshape(nt, c, h, w)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, frames={self.frames}, branches={self.branches}, order={self.order}"


RESNET = per_block(
    "tam", "resnet.after_conv1", lambda site, **options: TAM(site.channels, site.frames, **options),
    doc="Temporal Adaptive Module after conv1 of every bottleneck (TANet-b, TAM §4.3)",
    alpha=Option(2, doc="global branch: hidden width alpha*T"),
    beta=Option(4, doc="local branch: channel reduction C/beta"),
    kernel=Option(3, doc="K, taps of the aggregation kernel"),
    branches=Option("global+local", choices=BRANCHES, doc="Table 2 variants"),
    order=Option("local-first", choices=ORDERS, doc="global-first: TANet-R"),
    local_bn=Option(True, doc="BatchNorm in the local branch (the official code)"),
    se_reduction=Option(8, doc="reduction of the SE branch (branches global+se)"),
)
SPECS = (RESNET,)
