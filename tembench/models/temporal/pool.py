"""Temporal average pooling at TAM's position (C2D-Pool, TAM paper §4.4 "Baselines", Table 2):
a K x 1 x 1 average pool, stride 1, zero padding K//2, so the frame count is kept. No parameters;
fvcore's rules give it no multiply-adds (pooling other than adaptive 2-D pooling is not counted).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from tembench.models.protocol import Option, Site, TemporalModule


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


def _make(site: Site, stages: list[int], kernel: int) -> TemporalPool | None:
    return TemporalPool(site.frames, kernel) if site.stage in stages else None


RESNET = TemporalModule(
    name="pool",
    slots=("resnet.after_conv1",),
    factory=_make,
    options={
        "stages": Option([1, 2, 3, 4], choices=(1, 2, 3, 4), doc="ResNet stages with a pooling (1 = res2)"),
        "kernel": Option(3, doc="K, temporal window"),
    },
    doc="K x 1 x 1 temporal average pooling after conv1 (C2D-Pool, TAM Table 2)",
)
SPECS = (RESNET,)
