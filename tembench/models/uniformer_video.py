"""UniFormer video networks (Li et al., ICLR 2022) and the temporal modules that live in them.

Backbones ``uniformer-s`` (depths 3-4-8-3) and ``uniformer-b`` (5-8-20-7); see
:mod:`tembench.models.backbones.uniformer`. Every variant accepts ``stem_stride``: 2 is UniFormer's
original stage-1 patch embedding (stride 2 in time), 1 keeps every frame as EMIM does.

Where a temporal module goes, in one place:

========  ===================================================================================
``emim``  replaces the self-attention of SABlocks in ``stages`` (default 3 and 4). ``replacement``
          says which block of every two successive blocks gets it (EMIM §4.2 / Table 8):
          ``E-O`` the first (even index, the official ``CONTINUOUS_ATTN: lg``), ``O-E`` the second,
          ``E-E`` both, ``O-O`` neither. ``neighbourhood`` (P, Table 5), ``sampling``
          (``sliding`` | ``non-sliding``, Table 6), ``motion`` (Table 7), ``temporal_interval``
          (Δ, Table 11). ``av_dims``: ``full`` (default, Eq. 4) or ``released`` (the official CUDA
          kernel's weighted sum, which fills only channels 0-31 of each 64-channel head; see
          :mod:`tembench.models.temporal.emim`). Its ``stem_stride`` defaults to 1.
========  ===================================================================================
"""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from tembench.models.backbones.uniformer import ARCH_SETTINGS, UniFormer, uniformer
from tembench.models.meta import building
from tembench.models.temporal.emim import AV_DIMS, SAMPLINGS, EMIMAttention

BACKBONES = tuple(ARCH_SETTINGS)

REPLACEMENTS = ("E-O", "O-E", "E-E", "O-O")

# temporal name -> options with their defaults (the backbone's ``stem_stride`` is added to all)
TEMPORAL: dict[str, dict[str, Any]] = {
    "emim": {
        "stem_stride": 1,
        "stages": [3, 4],
        "replacement": "E-O",
        "neighbourhood": 7,
        "sampling": "sliding",
        "motion": True,
        "temporal_interval": 1,
        "av_dims": "full",  # "released": what the official checkpoints compute (registry/emim.toml)
    },
}
BACKBONE_OPTIONS = {"stem_stride": 2}
# the allowed values of options (a list option: of its elements), checked when the registry is loaded
OPTION_CHOICES: dict[str, tuple] = {
    "stem_stride": (1, 2), "stages": (3, 4), "replacement": REPLACEMENTS, "sampling": SAMPLINGS,
    "av_dims": AV_DIMS,
}


def option_defaults(temporal: str | None) -> dict[str, Any]:
    if temporal is None:
        return dict(BACKBONE_OPTIONS)
    return {**BACKBONE_OPTIONS, **TEMPORAL[temporal]}


def _emim_hook(opts: dict[str, Any]):
    stages = opts["stages"]
    if not isinstance(stages, list) or not set(stages) <= {3, 4}:
        raise ValueError(f"EMIM stages must be a list drawn from [3, 4], got {stages!r}")
    replacement = opts["replacement"]
    if replacement not in REPLACEMENTS:
        raise ValueError(f"EMIM replacement must be one of {', '.join(REPLACEMENTS)}, got {replacement!r}")
    first, second = (part == "E" for part in replacement.split("-"))

    def hook(stage: int, i: int, dim: int, heads: int) -> nn.Module | None:
        if stage not in stages or not (first if i % 2 == 0 else second):
            return None
        return EMIMAttention(dim, heads, neighbourhood=opts["neighbourhood"], sampling=opts["sampling"],
                             motion=bool(opts["motion"]), temporal_interval=opts["temporal_interval"],
                             av_dims=opts["av_dims"])

    return hook


def build(backbone: str, temporal: str | None, options: dict[str, Any], frames: int, num_classes: int) -> UniFormer:
    """A UniFormer network; it has no frame-dependent weights, so ``frames`` is not needed to build it."""
    if backbone not in ARCH_SETTINGS:
        raise ValueError(f"unknown UniFormer backbone {backbone!r}; one of {', '.join(BACKBONES)}")
    allowed = option_defaults(temporal)
    unknown = set(options) - set(allowed)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))} for {temporal or 'the plain backbone'}")
    opts = {**allowed, **options}
    attention = None
    if temporal == "emim":
        attention = _emim_hook(opts)
    elif temporal is not None:
        raise ValueError(f"unknown temporal module {temporal!r} for UniFormer; one of {', '.join(TEMPORAL)}")
    with building():
        return uniformer(backbone, num_classes=num_classes, stem_stride=opts["stem_stride"], attention=attention)
