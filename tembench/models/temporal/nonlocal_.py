"""Non-local block, embedded Gaussian (Wang et al., "Non-local Neural Networks", CVPR 2018, §3.2-3.3),
as used for NL C2D in the TAM paper's Table 2 (§4.4, "Other temporal counterparts").

Layout of the TSM/TAM repositories' ``ops/non_local.py``: theta, phi, g are 1x1x1 convolutions to
C/2 channels (with bias); phi and g are sub-sampled by a (1, 2, 2) max-pool; the affinity
softmax(theta^T phi) over all T*H*W positions weights g; W is a 1x1x1 convolution back to C followed
by a BatchNorm3d whose weight and bias start at zero, added to the input (residual). Five blocks sit
after blocks 0 and 2 of ``layer2`` and 0, 2 and 4 of ``layer3`` (§4.4, "5 non-local blocks").

The two affinity products are batched matmuls; conventions that leave those out (``no-bmm``) give
the paper's 64.49 G, conventions that count them give about 20 G more.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from tembench.models.protocol import RESNET_STAGES, Option, Site, TemporalModule

POSITIONS = {"layer2": [0, 2], "layer3": [0, 2, 4]}


class NonLocal3d(nn.Module):
    def __init__(self, channels: int, frames: int, sub_sample: bool = True):
        super().__init__()
        self.frames = frames
        inter = channels // 2
        self.g = nn.Conv3d(channels, inter, 1)
        self.theta = nn.Conv3d(channels, inter, 1)
        self.phi = nn.Conv3d(channels, inter, 1)
        self.W = nn.Sequential(nn.Conv3d(inter, channels, 1), nn.BatchNorm3d(channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)
        self.pool = nn.MaxPool3d((1, 2, 2)) if sub_sample else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        n = nt // self.frames
        x5 = x.view(n, self.frames, c, h, w).transpose(1, 2)  # (N, C, T, H, W)
        theta = self.theta(x5).flatten(2).transpose(1, 2)  # (N, THW, C/2)
        phi = self.pool(self.phi(x5)).flatten(2)  # (N, C/2, THW/4)
        g = self.pool(self.g(x5)).flatten(2).transpose(1, 2)  # (N, THW/4, C/2)
        affinity = torch.matmul(theta, phi).softmax(dim=-1)
        y = torch.matmul(affinity, g).transpose(1, 2).reshape(n, -1, *x5.shape[2:])
        z = self.W(y) + x5
        return z.transpose(1, 2).reshape(nt, c, h, w)


def _make(site: Site, stages: list[int], positions: dict[str, list[int]]) -> NonLocal3d | None:
    stage = f"layer{site.stage}"
    chosen = positions.get(stage, [])
    if site.block == 0:
        unknown = sorted(set(positions) - {f"layer{s}" for s in range(1, 5)})
        if unknown:
            raise ValueError(f"non-local positions are keyed by ResNet stage layer1-layer4, got {unknown[0]!r}")
        bad = [i for i in chosen if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < site.blocks]
        if bad:
            raise ValueError(f"non-local position {stage}[{bad[0]!r}]: {stage} has blocks 0-{site.blocks - 1}")
    if site.stage not in stages or site.block not in chosen:
        return None
    return NonLocal3d(site.channels, site.frames)


RESNET = TemporalModule(
    name="nonlocal",
    slots=("resnet.after_block",),
    factory=_make,
    options={
        "stages": RESNET_STAGES,
        "positions": Option(POSITIONS, doc="stage -> indices of the blocks a non-local block follows"),
    },
    doc="non-local blocks after the blocks listed in positions (NL C2D, TAM Table 2)",
)
SPECS = (RESNET,)
