"""The ``resnet`` host: 2-D ResNets on video (TSN-style, Wang et al. ECCV 2016) with temporal slots.

The frames of a clip are folded into the batch, every frame goes through the 2-D network, and the
per-frame logits are averaged (TSN's "avg" consensus). Temporal modules plug in through the slots of
:mod:`tembench.models.protocol` (``resnet.before_conv1``, ``resnet.after_conv1``, ``resnet.conv1``,
``resnet.after_block``, ``resnet.stage_end``); which module goes where is declared by the module
itself, in its own file under :mod:`tembench.models.temporal` (e.g. TSM's shift before ``conv1``, TAM
after it, ATM at the end of res3). This file maps the slots onto the network:

* ``before_conv1`` / ``after_conv1`` / ``conv1``: the residual blocks' ``shift`` / ``temporal`` /
  ``conv1`` (:mod:`tembench.models.backbones.resnet`), built with the network and initialised with it;
* ``after_block``: the block is wrapped (``layerX.i.block`` + ``layerX.i.nl``), after construction;
* ``stage_end``: a child of the stage named after the module (``layer2.atm``), after construction.

State-dict keys are torchvision's; the temporal modules add theirs under each block or stage.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from tembench.models.backbones.resnet import ARCH_SETTINGS, Bottleneck, ResNet, append_to_stage, follow_block
from tembench.models.meta import building
from tembench.models import protocol
from tembench.models.protocol import Option, Plan

HOST = "resnet"
BACKBONES = tuple(ARCH_SETTINGS)
OPTIONS: dict[str, Option] = {}  # the host's own options (none: a temporal module brings its own)


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
    return protocol.option_defaults(HOST, OPTIONS, temporal)


def input_problem(backbone: str, size: int) -> str | None:
    """Why a ``size`` x ``size`` input cannot go through the network (None: any size can)."""
    return None


def build(backbone: str, temporal: str | None, options: dict[str, Any], frames: int, num_classes: int) -> VideoResNet:
    if backbone not in ARCH_SETTINGS:
        raise ValueError(f"unknown ResNet {backbone!r}; one of {', '.join(BACKBONES)}")
    block, layers, width = ARCH_SETTINGS[backbone]
    plan = Plan(HOST, OPTIONS, backbone, temporal, options, frames)
    kernel = 1 if block is Bottleneck else 3  # of conv1

    def site(s: int, i: int) -> dict[str, Any]:  # s: 0-based stage index of the backbone's hooks
        return {"stage": s + 1, "block": i, "blocks": layers[s]}

    def shift(i: int, s: int, channels: int) -> nn.Module | None:
        return plan.place("resnet.before_conv1", path=f"layer{s + 1}.{i}.shift", channels=channels, **site(s, i))

    def temporal_slot(i: int, s: int, channels: int) -> nn.Module | None:
        return plan.place("resnet.after_conv1", path=f"layer{s + 1}.{i}.temporal", channels=channels, **site(s, i))

    def conv1(i: int, s: int, cin: int, cout: int, stride: int) -> nn.Module | None:
        return plan.place("resnet.conv1", path=f"layer{s + 1}.{i}.conv1", channels=cout, in_channels=cin,
                          stride=stride, kernel=kernel, **site(s, i))

    with building():
        model = VideoResNet(block, layers, num_classes=num_classes, frames=frames, width=width,
                            shift=shift, temporal=temporal_slot, conv1=conv1)
        stages = [getattr(model, f"layer{s + 1}") for s in range(4)]
        out_channels = [width * 2**s * block.expansion for s in range(4)]
        for s, stage in enumerate(stages):
            for i in range(layers[s]):
                module = plan.place("resnet.after_block", path=f"layer{s + 1}.{i}.nl", channels=out_channels[s],
                                    current=stage[i], **site(s, i))
                if module is not None:
                    follow_block(stage, i, module)
        for s, stage in enumerate(stages):
            name = plan.module.child_name if plan.module is not None else ""
            module = plan.place("resnet.stage_end", path=f"layer{s + 1}.{name}", channels=out_channels[s],
                                **site(s, layers[s] - 1))
            if module is not None:
                append_to_stage(model, f"layer{s + 1}", name, module)
    return model
