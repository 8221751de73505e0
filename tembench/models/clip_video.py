"""CLIP ViT visual towers on video (the ``clip_vit`` arch) and the temporal modules they host.

The video model is ATM's ``VideoCLIP`` (seed-code digest §1.5): the frames of a clip are folded into
the batch, every frame goes through the CLIP visual tower (``visual``: [CLS] -> ``ln_post`` ->
``proj``), the per-frame embeddings are averaged over time and a linear head ``fc`` gives the logits.
With no temporal module this is the CLIP frame-mean baseline ("mean pooling", ATM Table 2a).
State-dict keys: ``visual.*`` (CLIP's names) and ``fc.*``, so an ATM checkpoint (DeepSpeed container
key ``module``) loads with no missing or unexpected keys.

Temporal modules plug in through the slots of :mod:`tembench.models.protocol`, per block
``visual.transformer.resblocks.{i}``: ``clip_vit.block`` (the whole block is replaced: ILA's IST block,
X-CLIP's cross-frame block, TimeSformer's joint and divided blocks, ATA), ``clip_vit.block_start``
(``control_point_c``: ATM), ``clip_vit.before_attention`` (``control_point1``: ATM's T-Conv, token shift)
and ``clip_vit.before_mlp`` (``control_point2``: T-Conv). Each module declares its slots in its own file
under :mod:`tembench.models.temporal`; :func:`build` fills them after the tower is built, slot by slot
(``block``, ``block_start``, ``before_attention``, ``before_mlp``), each over blocks 0 to depth-1.

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

from tembench.models.backbones.clip_vit import CONFIGS, VisionTransformer, clip_vit
from tembench.models.layers import LayerNorm
from tembench.models.meta import building
from tembench.models import protocol
from tembench.models.protocol import Option, Plan
from tembench.models.temporal import mit as mit_module

HOST = "clip_vit"
BACKBONES = tuple(CONFIGS)
HEADS = ("mean", "xclip", "xclip-noprompt", "mit-linear")
# the host's own options (a temporal module's baseline keeps them)
OPTIONS: dict[str, Option] = {"head": Option("mean", choices=HEADS, doc="video head, see the module docstring")}
# (slot, the block attribute it is) in the order they are filled; None: the block itself
SLOTS = (("clip_vit.block", None), ("clip_vit.block_start", "control_point_c"),
         ("clip_vit.before_attention", "control_point1"), ("clip_vit.before_mlp", "control_point2"))


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
    return protocol.option_defaults(HOST, OPTIONS, temporal)


def input_problem(backbone: str, size: int) -> str | None:
    """Why a ``size`` x ``size`` input cannot go through the tower (None when it can)."""
    patch = CONFIGS[backbone].patch
    if size % patch:
        lo, hi = size // patch * patch, (size // patch + 1) * patch
        return (f"a {backbone} input size must be a multiple of its patch size {patch} (the position embedding "
                f"is interpolated to size/patch), got {size}; try {lo or hi} or {hi}")
    return None


def build(backbone: str, temporal: str | None, options: dict[str, Any], frames: int, num_classes: int) -> VideoCLIP:
    if backbone not in CONFIGS:
        raise ValueError(f"unknown CLIP tower {backbone!r}; one of {', '.join(BACKBONES)}")
    cfg = CONFIGS[backbone]
    plan = Plan(HOST, OPTIONS, backbone, temporal, options, frames)
    head = plan.host_options["head"]
    with building():
        visual = clip_vit(backbone)
        blocks = visual.transformer.resblocks
        for slot, attribute in SLOTS:
            for i in range(cfg.layers):
                path = f"visual.transformer.resblocks.{i}" + (f".{attribute}" if attribute else "")
                current = blocks[i] if attribute is None else getattr(blocks[i], attribute)
                module = plan.place(slot, path=path, channels=cfg.width, heads=cfg.heads, block=i,
                                    blocks=cfg.layers, current=current)
                if module is None:
                    continue
                if attribute is None:
                    blocks[i] = module
                else:
                    setattr(blocks[i], attribute, module)
        if head != "mean":
            return VideoXCLIP(visual, cfg.width, cfg.embed_dim, frames, num_classes, head)
        return VideoCLIP(visual, cfg.embed_dim, frames, num_classes)
