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
``ila``    :class:`~tembench.models.temporal.ila.ILABlock` (CLIP block + ILA, the IST block) in place of
           the blocks ``blocks`` (``"all"`` or 0-based indices), see :mod:`~tembench.models.temporal.ila`
``xclip``  :class:`~tembench.models.temporal.mit.CrossFrameBlock` (X-CLIP message tokens) in every block
``joint``  :class:`~tembench.models.temporal.spacetime.JointBlock` (joint space-time attention, ``mode``
           ``replace`` or ``add``), every block
``divided`` :class:`~tembench.models.temporal.spacetime.DividedBlock` (TimeSformer), every block
``ata``    :class:`~tembench.models.temporal.spacetime.ATABlock` (Hungarian-aligned temporal attention)
``tshift`` :class:`~tembench.models.temporal.spacetime.TokenShift` as ``control_point1`` of every block
=========  ===========================================================================================

Heads (option ``head`` of every variant, a backbone option, so a temporal module's baseline keeps it):

* ``mean`` (default): the frame-mean ``VideoCLIP`` above (keys ``fc.*``);
* ``xclip``: X-CLIP's / ILA's Kinetics head (:class:`VideoXCLIP`): MIT over the frame embeddings,
  video-specific prompts from the frame-averaged patch embeddings added to the class text features,
  logits = exp(``logit_scale``) x cosine similarity. The text tower is not built: the class text
  features are the buffer ``text_features`` (classes x E), which a tembench checkpoint,
  :meth:`VideoXCLIP.set_class_features` or ``tembench eval --class-features FILE.pt`` provides
  (official ILA/X-CLIP checkpoints hold the text tower instead; until features are given they are
  zeros). Keys as the ILA/X-CLIP release: ``mit.*``, ``prompts_generator.*``, ``prompts_visual_ln.*``,
  ``prompts_visual_proj``, ``logit_scale`` (loaded from official checkpoints: the checkpoint loader
  ignores only the text-tower names the model does not have);
* ``xclip-noprompt``: the same without the video-specific prompts (ILA Table 11);
* ``mit-linear``: ILA's SSv2 head (branch SSV2): MIT, L2 normalisation, LayerNorm, Dropout, Linear
  (``mit.classify_head.{0,2}``).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from tembench.models.backbones.clip_vit import CONFIGS, LayerNorm, VisionTransformer, clip_vit
from tembench.models.meta import building
from tembench.models.temporal import ila as ila_module
from tembench.models.temporal import mit as mit_module
from tembench.models.temporal import spacetime
from tembench.models.temporal import atm as atm_module
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
ILA_OPTIONS: dict[str, Any] = {
    "blocks": "all",  # "all" or 0-based block indices (ILA Table 7: [0, 1, 2] is "Block 1-3")
    "fusion": "released",  # released | token (the paper's MI token) | add | concat
    "interactive": "k400",  # k400 (depthwise-separable) | ssv2 (full 3x3 convolution)
    "align": "conv",  # conv (interactive point) | window (3x3 window attention) | none (average pooling)
    "message": True,  # the released code's message_fc + message_ln in front of the alignment
}
TEMPORAL: dict[str, dict[str, Any]] = {
    "atm": ATM_OPTIONS,
    "tconv": {"n_div": 4},
    "ila": ILA_OPTIONS,
    "xclip": {},
    "joint": {"mode": "replace"},  # replace: TimeSformer's joint attention; add: CLIP + a joint attention
    "divided": {},
    "ata": {},
    "tshift": {"n_div": 8},
}
HEADS = ("mean", "xclip", "xclip-noprompt", "mit-linear")
BACKBONE_OPTIONS: dict[str, Any] = {"head": "mean"}
# the allowed values of options (a list option: of its elements), checked when the registry is loaded
OPTION_CHOICES: dict[str, tuple] = {
    "head": HEADS, "fusion": ila_module.FUSIONS, "interactive": ila_module.INTERACTIVE, "align": ila_module.ALIGN,
    "mode": ("replace", "add"), "extractor": atm_module.EXTRACTORS, "combination": atm_module.COMBINATIONS,
    "operations": atm_module.OPERATIONS + atm_module.OPERATION_SYMBOLS,
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


class VideoXCLIP(nn.Module):
    """Clips (B, 3, T, H, W) -> logits (B, classes) with X-CLIP's video head (ILA's K400 model, Eq. 8) or
    ILA's SSv2 head (``mit-linear``). See the module docstring for the heads and their keys."""

    def __init__(self, visual: VisionTransformer, width: int, embed_dim: int, frames: int, num_classes: int,
                 head: str = "xclip"):
        super().__init__()
        self.frames, self.head = frames, head
        self.visual = visual
        linear = head == "mit-linear"
        self.mit = mit_module.MultiframeIntegrationTransformer(frames, embed_dim, layers=1,
                                                               classes=num_classes if linear else None)
        if linear:
            return
        if head == "xclip":
            self.prompts_visual_ln = LayerNorm(width)
            self.prompts_visual_proj = nn.Parameter(torch.randn(width, embed_dim) * width**-0.5)
            self.prompts_generator = mit_module.VideoSpecificPrompt(embed_dim)
        self.logit_scale = nn.Parameter(torch.full((), mit_module.LOGIT_SCALE))
        self.register_buffer("text_features", torch.zeros(num_classes, embed_dim))

    def set_class_features(self, features: torch.Tensor) -> None:
        """The class text features (classes, E): CLIP's text tower on the class names."""
        if tuple(features.shape) != tuple(self.text_features.shape):
            raise ValueError(f"class features must be {tuple(self.text_features.shape)}, got {tuple(features.shape)}")
        with torch.no_grad():
            self.text_features.copy_(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if t != self.frames:
            raise ValueError(f"model was built for {self.frames} frames, got a clip of {t}")
        tokens = self.visual.forward_tokens(x.transpose(1, 2).reshape(b * t, c, h, w))  # (L, B*T, D)
        cls = self.visual.ln_post(tokens[0]) @ self.visual.proj
        video = self.mit(cls.view(b, t, -1))
        if self.head == "mit-linear":
            return video
        text = self.text_features.unsqueeze(0).expand(b, -1, -1)
        if self.head == "xclip":
            patches = self.prompts_visual_ln(tokens[1:]) @ self.prompts_visual_proj  # (hw, B*T, E)
            patches = patches.view(patches.shape[0], b, t, -1).mean(dim=2).transpose(0, 1)  # (B, hw, E)
            text = text + self.prompts_generator(text, patches)
        video = video / video.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return self.logit_scale.exp() * torch.einsum("bd,bkd->bk", video, text)


def option_defaults(temporal: str | None) -> dict[str, Any]:
    if temporal is None:
        return dict(BACKBONE_OPTIONS)
    return {**BACKBONE_OPTIONS, **TEMPORAL[temporal]}


def atm_position(position, layers: int) -> int:
    if position == "auto":
        return 7 if layers == 12 else 14 if layers == 24 else layers // 2
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < layers:
        raise ValueError(f"ATM position must be a block index in [0, {layers}) or 'auto', got {position!r}")
    return position


def build(backbone: str, temporal: str | None, options: dict[str, Any], frames: int, num_classes: int) -> VideoCLIP:
    cfg = CONFIGS[backbone]
    with building():
        visual = clip_vit(backbone)
        opts = {**option_defaults(temporal), **options}
        head = opts.pop("head")
        if head not in HEADS:
            raise ValueError(f"clip_vit head must be one of {', '.join(HEADS)}, got {head!r}")
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
        elif temporal == "ila":
            ila_module.insert_ila(blocks, cfg.width, frames, **opts)
        elif temporal == "xclip":
            mit_module.insert_cross_frame(blocks, cfg.width, frames)
        elif temporal in spacetime.BLOCKS:
            spacetime.insert_blocks(temporal, blocks, cfg.width, frames, **opts)
        elif temporal == "tshift":
            for block in blocks:
                block.control_point1 = spacetime.TokenShift(frames, opts["n_div"])
        elif temporal is not None:
            raise KeyError(f"unknown temporal module {temporal!r} for clip_vit; one of {', '.join(TEMPORAL)}")
        if head != "mean":
            return VideoXCLIP(visual, cfg.width, cfg.embed_dim, frames, num_classes, head)
        return VideoCLIP(visual, cfg.embed_dim, frames, num_classes)
