"""TEI module (Liu et al., "TEINet: Towards an Efficient Architecture for Video Recognition",
AAAI 2020, §3): a Motion Enhanced Module followed by a Temporal Interaction Module, placed where TAM
sits (after a bottleneck's ``conv1``).

* **MEM** (§3.1): spatially pooled features of frames t and t+1 are each reduced by a fully connected
  layer (C -> C/r), their difference is expanded back (C/r -> C) and squashed by a sigmoid into
  channel weights that scale frame t; the last frame has no successor and is left unchanged.
* **TIM** (§3.2): a channel-wise temporal convolution, kernel 3, TSM-style initialisation
  (:class:`tembench.models.temporal.tconv.TemporalConv`).

The TEINet paper is not among tembench's seed papers; the MEM layout follows its text as described
by third-party implementations. ``reduction`` is the MEM's r.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from tembench.models.protocol import Option, per_block
from tembench.models.temporal.tconv import TemporalConv


class MEM(nn.Module):
    def __init__(self, channels: int, frames: int, reduction: int = 8):
        super().__init__()
        self.frames = frames
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels, channels // reduction)
        self.fc3 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        n, t = nt // self.frames, self.frames
        pooled = F.adaptive_avg_pool2d(x, (1, 1)).view(n, t, c)
        diff = self.fc2(pooled[:, 1:]) - self.fc1(pooled[:, :-1])  # (N, T-1, C/r)
        weight = torch.sigmoid(self.fc3(diff))
        weight = torch.cat([weight, weight.new_ones(n, 1, c)], dim=1)  # last frame unchanged
        return x * weight.view(nt, c, 1, 1)


class TEI(nn.Module):
    def __init__(self, channels: int, frames: int, reduction: int = 8):
        super().__init__()
        self.mem = MEM(channels, frames, reduction)
        self.tim = TemporalConv(channels, frames, kernel=3, channelwise=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tim(self.mem(x))


RESNET = per_block("teinet", "resnet.after_conv1", lambda site, reduction: TEI(site.channels, site.frames, reduction),
                   doc="MEM + TIM after conv1 (TEINet, cited in TAM Table 2)",
                   reduction=Option(8, doc="r, the MEM's channel reduction"))
SPECS = (RESNET,)
