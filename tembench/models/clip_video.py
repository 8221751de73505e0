"""CLIP ViT visual towers on video (the ``clip_vit`` arch) and the temporal modules they host.

The video model is ATM's ``VideoCLIP`` (seed-code digest §1.5): the frames of a clip are folded into
the batch, every frame goes through the CLIP visual tower (``visual``: [CLS] -> ``ln_post`` ->
``proj``), the per-frame embeddings are averaged over time and a linear head ``fc`` gives the logits.
With no temporal module this is the CLIP frame-mean baseline ("mean pooling", ATM Table 2a).
State-dict keys: ``visual.*`` (CLIP's names) and ``fc.*``, so an ATM checkpoint (DeepSpeed container
key ``module``) loads with no missing or unexpected keys.

Where the temporal modules go, in one place (``visual.transformer.resblocks.{i}``):

=========  ===========================================================================================
``atm``    :class:`~tembench.models.temporal.atm.TokenATM` as ``control_point_c`` of block ``position``
           (0-based, i.e. after ``position`` blocks; default 7 of 12 for ViT-B, 14 of 24 for ViT-L,
           as the code's ``make_ATM``), plus, when ``tconv`` is on, ``TokenT1D`` on the [CLS] token as
           ``control_point1`` and ``control_point2`` of every block
``tconv``  ``TokenT1D`` only (ATM Table 2b, "T-Conv")
=========  ===========================================================================================
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from tembench.models.backbones.clip_vit import CONFIGS, VisionTransformer, clip_vit
from tembench.models.temporal.atm import TokenATM, TokenT1D

BACKBONES = tuple(CONFIGS)

ATM_OPTIONS: dict[str, Any] = {
    "operations": ["mul", "sub"],  # applied in this order (the code: SimBlock, then DiffBlock)
    "context": 4,  # the paper's Z (the code's window[0] = Z + 1, anchor included)
    "window": 9,  # P, the correlation neighbourhood P x P
    "position": "auto",  # block index: 7 for 12-layer towers, 14 for 24-layer towers
    "extractor": "conv",
    "combination": "atm",
    "hidden": 64,
    "downsample": False,  # the 28 -> 14 trick is for CNN feature maps
    "tconv": True,
}
TEMPORAL: dict[str, dict[str, Any]] = {
    "atm": ATM_OPTIONS,
    "tconv": {"n_div": 4},
}


class VideoCLIP(nn.Module):
    """Clips (B, 3, T, H, W) -> logits (B, classes): per-frame CLIP embedding, mean over T, ``fc``."""

    def __init__(self, visual: VisionTransformer, embed_dim: int, frames: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.frames = frames
        self.visual = visual
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if t != self.frames:
            raise ValueError(f"model was built for {self.frames} frames, got a clip of {t}")
        feats = self.visual(x.transpose(1, 2).reshape(b * t, c, h, w))
        return self.fc(self.dropout(feats.view(b, t, -1).mean(dim=1)))


def option_defaults(temporal: str | None) -> dict[str, Any]:
    if temporal is None:
        return {}
    return dict(TEMPORAL[temporal])


def atm_position(position, layers: int) -> int:
    if position == "auto":
        return 7 if layers == 12 else 14 if layers == 24 else layers // 2
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < layers:
        raise ValueError(f"ATM position must be a block index in [0, {layers}) or 'auto', got {position!r}")
    return position


def build(backbone: str, temporal: str | None, options: dict[str, Any], frames: int, num_classes: int) -> VideoCLIP:
    cfg = CONFIGS[backbone]
    visual = clip_vit(backbone)
    opts = {**option_defaults(temporal), **options}
    blocks = visual.transformer.resblocks
    if temporal == "atm":
        tconv = opts.pop("tconv")
        position = atm_position(opts.pop("position"), cfg.layers)
        blocks[position].control_point_c = TokenATM(cfg.width, frames, **opts)
        if tconv:
            for block in blocks:
                block.control_point1 = TokenT1D(cfg.width, frames)
                block.control_point2 = TokenT1D(cfg.width, frames)
    elif temporal == "tconv":
        for block in blocks:
            block.control_point1 = TokenT1D(cfg.width, frames, opts["n_div"])
            block.control_point2 = TokenT1D(cfg.width, frames, opts["n_div"])
    elif temporal is not None:
        raise KeyError(f"unknown temporal module {temporal!r} for clip_vit; one of {', '.join(TEMPORAL)}")
    return VideoCLIP(visual, cfg.embed_dim, frames, num_classes)
