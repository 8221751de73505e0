"""Temporal Shift Module (Lin et al., "TSM: Temporal Shift Module for Efficient Video Understanding",
ICCV 2019, §3): a fraction 1/fold_div of the channels takes its values from the next frame, another
1/fold_div from the previous frame, the rest stay; borders are zero-filled. No parameters, no
multiply-adds, real time (memory movement). Placed on the residual branch before ``conv1``
("residual shift", TSM §3.3), as in the official ``make_temporal_shift(place='blockres')``.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from tembench.models.protocol import Option, Site, per_block


def temporal_shift(x: torch.Tensor, frames: int, fold_div: int = 8) -> torch.Tensor:
    """x: (N*T, C, ...) -> same shape, channels [0, C/d) shifted left, [C/d, 2C/d) shifted right."""
    nt, c = x.shape[:2]
    x = x.view(nt // frames, frames, c, *x.shape[2:])
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]  # frame t takes t+1
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]  # frame t takes t-1
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, c, *x.shape[3:])


class TemporalShift(nn.Module):
    def __init__(self, frames: int, fold_div: int = 8):
        super().__init__()
        self.frames = frames
        self.fold_div = fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_shift(x, self.frames, self.fold_div)

    def extra_repr(self) -> str:
        return f"frames={self.frames}, fold_div={self.fold_div}"


def _make(site: Site, fold_div: int, every: int) -> TemporalShift | None:
    return None if site.block % every else TemporalShift(site.frames, fold_div)


RESNET = per_block("tsm", "resnet.before_conv1", _make,
                   doc="temporal shift on the residual branch before conv1 (TSM §3.3)",
                   fold_div=Option(8, doc="1/fold_div of the channels shifted each way"),
                   every=Option(1, doc="shift in every every-th block of a stage (TSM-R101: 2)"))
SPECS = (RESNET,)
