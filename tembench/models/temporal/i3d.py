"""I3D 3x1x1 inflation as used in the TAM paper's Table 2 (§4.4, "Baselines"; Wang et al., Non-local
Neural Networks, CVPR 2018, §4): the first 1x1 convolution of *every* bottleneck is inflated to a
3x1x1 convolution (temporal padding 1, no temporal stride), the rest of the network stays 2-D.

It replaces ``conv1`` and keeps its name, so an inflated ImageNet ``conv1.weight`` of shape
(C_out, C_in, 3, 1, 1) loads under the torchvision key.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from tembench.models.protocol import Option, Site, per_block


class InflatedConv1x1(nn.Conv3d):
    def __init__(self, in_channels: int, out_channels: int, frames: int, time_kernel: int = 3):
        super().__init__(
            in_channels, out_channels, (time_kernel, 1, 1), padding=(time_kernel // 2, 0, 0), bias=False
        )
        self.frames = frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        y = x.view(nt // self.frames, self.frames, c, h, w).transpose(1, 2)
        y = super().forward(y)
        return y.transpose(1, 2).reshape(nt, -1, h, w)


def _make(site: Site, time_kernel: int) -> InflatedConv1x1:
    if site.kernel != 1:
        raise ValueError("i3d 3x1x1 inflation is defined for bottleneck ResNets (50/101/152)")
    return InflatedConv1x1(site.in_channels, site.channels, site.frames, time_kernel)


RESNET = per_block("i3d", "resnet.conv1", _make,
                   doc="conv1 of every bottleneck inflated to 3x1x1 (I3D 3x1x1, TAM Table 2)",
                   time_kernel=Option(3, doc="temporal taps of the inflated conv1"))
SPECS = (RESNET,)
