"""2-D ResNets on video (TSN-style, Wang et al. ECCV 2016) and the temporal modules that plug into them.

The frames of a clip are folded into the batch, every frame goes through the 2-D network, and the
per-frame logits are averaged (TSN's "avg" consensus). A temporal module is a per-block module built
by :data:`TEMPORAL` from the registry entry's ``temporal`` name and ``options``; where it goes is
written here, in one place:

================  ===========================================================================
``tsm``           shift on the residual branch before ``conv1`` (TSM §3.3), every ``every``-th block
``tam``           after ``conv1`` of every bottleneck (TANet-b, TAM §4.3)
``tconv``         full K x 1 x 1 temporal conv after ``conv1`` (C2D-TConv, TAM Table 2)
``tim``           channel-wise temporal conv after ``conv1`` (C2D-TIM, TAM Table 2)
``pool``          K x 1 x 1 temporal average pooling after ``conv1`` (C2D-Pool, TAM Table 2)
``teinet``        MEM + TIM after ``conv1`` (TEINet, cited in TAM Table 2)
``i3d``           ``conv1`` inflated to 3x1x1 in every bottleneck (I3D 3x1x1, TAM Table 2)
``nonlocal``      non-local blocks after the blocks listed in ``positions`` (NL C2D, TAM Table 2)
``atm``           one ATM after the last block of res``position`` (default 3: ``layer2.atm``, ATM §3.2,
                  App. A.1), stride-2 stem + stride-2 transposed projection (the 28->14->28 trick) when
                  ``downsample`` ("auto": at res2/res3); with ``tconv``, a channel-wise 3x1x1 temporal
                  conv after ``conv1`` of every block of ``stages`` (default res4, res5; ATM §4.3 "T-Conv")
================  ===========================================================================

``stages`` (default ``[1, 2, 3, 4]``, i.e. res2-res5) restricts per-block modules to some stages.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from tembench.models.backbones.resnet import ARCH_SETTINGS, ResNet, append_to_stage, insert_after, stage_channels
from tembench.models.meta import building
from tembench.models.temporal import nonlocal_
from tembench.models.temporal.atm import ATM, COMBINATIONS, EXTRACTORS, OPERATION_SYMBOLS, OPERATIONS
from tembench.models.temporal.i3d import InflatedConv1x1
from tembench.models.temporal.pool import TemporalPool
from tembench.models.temporal.tam import BRANCHES, ORDERS, TAM
from tembench.models.temporal.tconv import TemporalConv
from tembench.models.temporal.teinet import TEI
from tembench.models.temporal.tsm import TemporalShift

BACKBONES = tuple(ARCH_SETTINGS)

# temporal name -> (slot, options with their defaults, factory(channels, frames, **options))
TEMPORAL: dict[str, tuple[str, dict[str, Any], Callable[..., nn.Module] | None]] = {
    "tsm": ("shift", {"fold_div": 8, "every": 1}, lambda c, t, fold_div: TemporalShift(t, fold_div)),
    "tam": (
        "temporal",
        {"alpha": 2, "beta": 4, "kernel": 3, "branches": "global+local", "order": "local-first",
         "local_bn": True, "se_reduction": 8},
        lambda c, t, **o: TAM(c, t, **o),
    ),
    "tconv": ("temporal", {"kernel": 3}, lambda c, t, kernel: TemporalConv(c, t, kernel, channelwise=False)),
    "tim": ("temporal", {"kernel": 3}, lambda c, t, kernel: TemporalConv(c, t, kernel, channelwise=True)),
    "pool": ("temporal", {"kernel": 3}, lambda c, t, kernel: TemporalPool(t, kernel)),
    "teinet": ("temporal", {"reduction": 8}, lambda c, t, reduction: TEI(c, t, reduction)),
    "i3d": ("conv1", {"time_kernel": 3}, None),
    "nonlocal": ("after", {"positions": nonlocal_.POSITIONS}, None),
    "atm": (
        "stage_end",
        {"operations": ["mul", "sub"], "context": 4, "window": 9, "position": 3, "extractor": "conv",
         "combination": "atm", "hidden": 64, "downsample": "auto", "tconv": True, "stages": [3, 4]},
        lambda c, t, **o: ATM(c, t, **o),
    ),
}
COMMON_OPTIONS = {"stages": [1, 2, 3, 4]}
# the allowed values of options (a list option: of its elements), checked when the registry is loaded
OPTION_CHOICES: dict[str, tuple] = {
    "order": ORDERS, "branches": BRANCHES, "extractor": EXTRACTORS, "combination": COMBINATIONS,
    "operations": OPERATIONS + OPERATION_SYMBOLS, "stages": (1, 2, 3, 4), "position": (2, 3, 4, 5),
    "downsample": ("auto", True, False),
}


class VideoResNet(ResNet):
    """A ResNet that takes clips (B, 3, T, H, W) and returns clip logits (B, classes).

    Its state-dict keys are torchvision's; the temporal modules add their own under each block.
    """

    def __init__(self, *args, frames: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.frames = frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if t != self.frames:
            raise ValueError(f"model was built for {self.frames} frames, got a clip of {t}")
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        logits = super().forward(frames)
        return logits.view(b, t, -1).mean(dim=1)


def option_defaults(temporal: str | None) -> dict[str, Any]:
    if temporal is None:
        return {}
    return {**COMMON_OPTIONS, **TEMPORAL[temporal][1]}


def build(backbone: str, temporal: str | None, options: dict[str, Any], frames: int, num_classes: int) -> VideoResNet:
    block, layers, width = ARCH_SETTINGS[backbone]
    opts = {**option_defaults(temporal), **options}
    stages = set(opts.pop("stages", []))
    hooks: dict[str, Any] = {}
    if temporal is not None:
        slot, _, factory = TEMPORAL[temporal]
        in_stage = lambda s: s + 1 in stages  # noqa: E731  (stage index 0 is res2)
        if slot == "shift":
            every = opts.pop("every")
            hooks["shift"] = lambda i, s, c: factory(c, frames, **opts) if in_stage(s) and i % every == 0 else None
        elif slot == "temporal":
            hooks["temporal"] = lambda i, s, c: factory(c, frames, **opts) if in_stage(s) else None
        elif slot == "conv1":
            if block.expansion != 4:
                raise ValueError("i3d 3x1x1 inflation is defined for bottleneck ResNets (50/101/152)")
            hooks["conv1"] = (
                lambda i, s, cin, cout, stride: InflatedConv1x1(cin, cout, frames, opts["time_kernel"])
                if in_stage(s) else None
            )
        elif slot == "stage_end" and opts.pop("tconv"):  # ATM's T-Conv, per block of ``stages``
            hooks["temporal"] = lambda i, s, c: TemporalConv(c, frames, 3, channelwise=True) if in_stage(s) else None
    with building():  # on the meta device: initialisers skipped
        model = VideoResNet(block, layers, num_classes=num_classes, frames=frames, width=width, **hooks)
        if temporal == "atm":
            position = opts.pop("position")
            if position not in (2, 3, 4, 5):
                raise ValueError(f"ATM position on a ResNet is a stage number 2-5 (res2-res5), got {position!r}")
            if opts["downsample"] == "auto":
                opts["downsample"] = position in (2, 3)
            stage = f"layer{position - 1}"
            append_to_stage(model, stage, "atm", factory(stage_channels(model, stage), frames, **opts))
        if temporal == "nonlocal":
            insert_after(model, opts["positions"], lambda c: nonlocal_.NonLocal3d(c, frames))
        return model
