"""Fixed temporal convolutions at TAM's position (TAM paper §4.4, "Baselines", Table 2).

* ``C2D-TConv``: a standard K x 1 x 1 temporal convolution C -> C, randomly initialised.
* ``C2D-TIM``: the channel-wise (depthwise) temporal convolution of TEINet's Temporal Interaction
  Module (Liu et al., AAAI 2020, §3.2), initialised like TSM: 1/8 of the channels copy frame t+1,
  1/8 copy frame t-1, the rest are the identity.

Both take (N*T, C, H, W) and keep the shape (stride 1, zero padding K//2 in time, no bias).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from tembench.models.protocol import Option, per_block


def shift_init_(weight: torch.Tensor, fold_div: int = 8) -> None:
    """TSM-style init of a depthwise (C, 1, K, 1, 1) temporal kernel (K = 3)."""
    c, k = weight.shape[0], weight.shape[2]
    fold = c // fold_div
    with torch.no_grad():
        weight.zero_()
        weight[:fold, 0, k // 2 + 1] = 1  # takes t+1
        weight[fold : 2 * fold, 0, k // 2 - 1] = 1  # takes t-1
        weight[2 * fold :, 0, k // 2] = 1


class TemporalConv(nn.Module):
    def __init__(self, channels: int, frames: int, kernel: int = 3, channelwise: bool = False, shift_init: bool | None = None):
        super().__init__()
        self.frames = frames
        groups = channels if channelwise else 1
        self.conv = nn.Conv3d(
            channels, channels, (kernel, 1, 1), padding=(kernel // 2, 0, 0), groups=groups, bias=False
        )
        if shift_init if shift_init is not None else channelwise:
            shift_init_(self.conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        n = nt // self.frames
        y = x.view(n, self.frames, c, h, w).transpose(1, 2)
        y = self.conv(y)
        return y.transpose(1, 2).reshape(nt, c, h, w)


RESNET_TCONV = per_block(
    "tconv", "resnet.after_conv1",
    lambda site, kernel: TemporalConv(site.channels, site.frames, kernel, channelwise=False),
    doc="full K x 1 x 1 temporal convolution after conv1 (C2D-TConv, TAM Table 2)",
    kernel=Option(3, doc="K, temporal taps"))
RESNET_TIM = per_block(
    "tim", "resnet.after_conv1",
    lambda site, kernel: TemporalConv(site.channels, site.frames, kernel, channelwise=True),
    doc="channel-wise temporal convolution after conv1, TSM-style init (C2D-TIM, TAM Table 2)",
    kernel=Option(3, doc="K, temporal taps"))
SPECS = (RESNET_TCONV, RESNET_TIM)
