"""Temporal average pooling at TAM's position (C2D-Pool, TAM paper §4.4 "Baselines", Table 2):
a K x 1 x 1 average pool, stride 1, zero padding K//2, so the frame count is kept. No parameters;
fvcore's rules give it no multiply-adds (pooling other than adaptive 2-D pooling is not counted).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from tembench.models.protocol import Option, per_block


class TemporalPool(nn.Module):
    def __init__(self, frames: int, kernel: int = 3):
        super().__init__()
        self.frames, self.kernel = frames, kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        y = x.view(nt // self.frames, self.frames, c, h, w).transpose(1, 2)
        pad = self.kernel // 2  # explicit zero padding (counted in the average), works for T < kernel
        y = F.avg_pool3d(F.pad(y, (0, 0, 0, 0, pad, pad)), (self.kernel, 1, 1), stride=1)
        return y.transpose(1, 2).reshape(nt, c, h, w)


RESNET = per_block("pool", "resnet.after_conv1", lambda site, kernel: TemporalPool(site.frames, kernel),
                   doc="K x 1 x 1 temporal average pooling after conv1 (C2D-Pool, TAM Table 2)",
                   kernel=Option(3, doc="K, temporal window"))
SPECS = (RESNET,)
