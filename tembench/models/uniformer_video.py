"""The ``uniformer`` host: UniFormer video networks (Li et al., ICLR 2022) with a temporal slot.

Backbones ``uniformer-s`` (depths 3-4-8-3) and ``uniformer-b`` (5-8-20-7); see
:mod:`tembench.models.backbones.uniformer`. The host's own option ``stem_stride``: 2 is UniFormer's
original stage-1 patch embedding (stride 2 in time), 1 keeps every frame as EMIM does (EMIM sets that
default for itself).

Temporal modules plug in through the slot ``uniformer.attention`` of :mod:`tembench.models.protocol`: the
self-attention of a stage-3/4 SABlock (``blocks{3,4}.{i}.attn``), built through the backbone's
``attention`` hook while the network is built; UniFormer's initialisation then runs over it and a module's
own ``init_weights()`` after that. EMIM (:mod:`tembench.models.temporal.emim`) declares there which blocks
it replaces.
"""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from tembench.models.backbones.uniformer import ARCH_SETTINGS, UniFormer, uniformer
from tembench.models.meta import building
from tembench.models import protocol
from tembench.models.protocol import Option, Plan

HOST = "uniformer"
BACKBONES = tuple(ARCH_SETTINGS)
# the host's own options (a temporal module's baseline keeps them)
OPTIONS: dict[str, Option] = {
    "stem_stride": Option(2, choices=(1, 2), doc="temporal stride of the stage-1 patch embedding (EMIM: 1)"),
}


def option_defaults(temporal: str | None) -> dict[str, Any]:
    return protocol.option_defaults(HOST, OPTIONS, temporal)


def input_problem(backbone: str, size: int) -> str | None:
    """Why a ``size`` x ``size`` input cannot go through the network (None when it can)."""
    if size < 32:
        return f"UniFormer downsamples by 32 (4, then 2, 2, 2); its input size must be at least 32, got {size}"
    return None


def build(backbone: str, temporal: str | None, options: dict[str, Any], frames: int, num_classes: int) -> UniFormer:
    """A UniFormer network; it has no frame-dependent weights of its own (a temporal module may)."""
    if backbone not in ARCH_SETTINGS:
        raise ValueError(f"unknown UniFormer backbone {backbone!r}; one of {', '.join(BACKBONES)}")
    plan = Plan(HOST, OPTIONS, backbone, temporal, options, frames)
    depths = ARCH_SETTINGS[backbone]

    def attention(stage: int, i: int, dim: int, heads: int) -> nn.Module | None:
        return plan.place("uniformer.attention", path=f"blocks{stage}.{i}.attn", channels=dim, heads=heads,
                          stage=stage, block=i, blocks=depths[stage - 1])

    with building():
        return uniformer(backbone, num_classes=num_classes, stem_stride=plan.host_options["stem_stride"],
                         attention=attention)
