"""Hugging Face ``transformers`` video classifiers, built from their configuration objects with no weights
(the ``transformers/*`` variants of ``registry/transformers.toml``; ``pip install 'tembench[hf]'``).

One small factory per architecture: it writes the hyper-parameters of the published model into the
architecture's config class (nothing is downloaded: no hub config, no weights) and returns the HF model
class built from it. tembench calls a factory with ``frames`` and ``num_classes`` (the registry's
``frames_arg`` / ``classes_arg``) and, for counting, on the meta device. ``transformers`` is imported
inside the factories, so tembench imports without it.

The models take HF's ``pixel_values`` (batch, frames, channels, height, width): ``layout = "BTCHW"``.
The input size is part of the config (``image_size``): the position embeddings are built for it.

* :func:`videomae` -- VideoMAE (Tong et al., NeurIPS 2022) fine-tuned classifier: ViT with 2x16x16 tubelets,
  joint space-time attention, mean pooling + LayerNorm + linear head.
* :func:`timesformer` -- TimeSformer (Bertasius et al., ICML 2021): ViT-B/16 with divided space-time
  attention (temporal attention + ``temporal_dense`` before the spatial attention in every block),
  CLS head. TimeSformer-HR is 16 frames at 448, TimeSformer-L 96 frames at 224.
* :func:`vivit` -- ViViT (Arnab et al., ICCV 2021) with its unfactorised (joint) space-time attention over
  2x16x16 tubelets, the only ViViT model HF implements (no factorised encoder).
* :func:`xclip` -- X-CLIP (Ni et al., ECCV 2022) as a video classifier (:class:`XCLIPClassifier`): CLIP's
  vision tower with cross-frame message tokens, the multi-frame integration transformer, the video-specific
  prompt generator, and the class text features cached as a buffer (the text tower is built, since it is
  part of ``XCLIPModel``, but not run: X-CLIP's inference encodes the class prompts once).
* :func:`vjepa2` -- V-JEPA 2 (Assran et al., 2025) video classifier: ViT encoder with 2x16x16 tubelets and
  3D rotary positions, attentive-probe pooler, linear head. HF's class also builds the JEPA predictor,
  which the classifier's forward does not run (its parameters are counted, its multiply-adds are not).
* :func:`videoprism` -- VideoPrism (Zhao et al., ICML 2024) vision classifier: factorised encoder
  (spatial ViT per frame, then a temporal transformer per patch), attention-pooling head, linear head.

Attention: every factory sets ``attn_implementation = "eager"`` by default, so attention runs as two
explicit matmuls inside each attention module (as in the original implementations and in tembench's own
ViTs): every counting convention then sees it, ``fvcore-legacy`` included. ``"sdpa"`` counts the same under
``fvcore`` (tembench counts scaled_dot_product_attention as its two matmuls) and is faster to time.

>>> model = videomae("base", frames=16, num_classes=400)   # VideoMAEForVideoClassification, 86.5 M params
"""
from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["VIT", "videomae", "timesformer", "vivit", "xclip", "XCLIPClassifier", "vjepa2", "videoprism"]

VIT = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "huge": dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, intermediate_size=5120),
}
"""ViT widths (hidden size, blocks, heads, MLP size) of the B, L and H models the papers publish."""


def _vit(size: str) -> dict:
    try:
        return dict(VIT[size])
    except KeyError:
        raise ValueError(f"unknown size {size!r}; one of {', '.join(VIT)}") from None


def _attention(config, attn_implementation: str):
    """``config`` (and its text / vision sub-configs) set to run attention as ``attn_implementation``."""
    for cfg in (config, getattr(config, "vision_config", None), getattr(config, "text_config", None)):
        if cfg is not None:
            cfg._attn_implementation = attn_implementation
    return config


def videomae(size: str = "base", frames: int = 16, num_classes: int = 400, image_size: int = 224,
             attn_implementation: str = "eager", **config) -> nn.Module:
    """``VideoMAEForVideoClassification``: ViT-``size`` over 2x16x16 tubelets (sinusoidal positions),
    mean-pooled tokens, LayerNorm, linear head (VideoMAE's fine-tuned classifiers)."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    cfg = VideoMAEConfig(**{**_vit(size), "num_frames": frames, "image_size": image_size, "patch_size": 16,
                            "tubelet_size": 2, "use_mean_pooling": True, "num_labels": num_classes, **config})
    return VideoMAEForVideoClassification(_attention(cfg, attn_implementation))


def timesformer(frames: int = 8, num_classes: int = 400, image_size: int = 224, attn_implementation: str = "eager",
                **config) -> nn.Module:
    """``TimesformerForVideoClassification``: ViT-B/16, divided space-time attention (TimeSformer's default;
    ``attention_type`` in ``config`` for the others). TimeSformer: 8 x 224; -HR: 16 x 448; -L: 96 x 224."""
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    cfg = TimesformerConfig(**{**_vit("base"), "num_frames": frames, "image_size": image_size, "patch_size": 16,
                               "attention_type": "divided_space_time", "num_labels": num_classes, **config})
    return TimesformerForVideoClassification(_attention(cfg, attn_implementation))


def vivit(size: str = "base", frames: int = 32, num_classes: int = 400, image_size: int = 224,
          attn_implementation: str = "eager", **config) -> nn.Module:
    """``VivitForVideoClassification``: ViViT-``size``/16x2 with joint space-time attention (ViViT's model 1,
    unfactorised), CLS head."""
    from transformers import VivitConfig, VivitForVideoClassification

    cfg = VivitConfig(**{**_vit(size), "num_frames": frames, "image_size": image_size, "tubelet_size": [2, 16, 16],
                         "num_labels": num_classes, **config})
    return VivitForVideoClassification(_attention(cfg, attn_implementation))


XCLIP = {
    # vision tower (ViT) and the text tower / projection / MIT widths of X-CLIP's released models, as HF's
    # conversion script sets them (B: CLIP's defaults; L: text 768 wide, projection and MIT 768)
    "base": dict(vision={}, text={}, projection_dim=512),
    "large": dict(vision=dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24,
                              mit_hidden_size=768, mit_intermediate_size=3072),
                  text=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12), projection_dim=768),
}


class XCLIPClassifier(nn.Module):
    """HF's ``XCLIPModel`` as a video classifier over ``num_classes`` cached class text features.

    ``forward(pixel_values)`` is ``XCLIPModel.forward`` with the text tower's output (the projected class
    prompt embeddings, one per class) read from the buffer ``text_features`` instead of computed: vision tower
    with cross-frame message tokens, ``visual_projection``, MIT (mean over frames), the prompt generator
    (class text features attending to the frame-averaged patch tokens), cosine similarity times the logit
    scale. Returns logits (batch, num_classes). The whole ``XCLIPModel`` is kept (``self.xclip``, text tower
    included), so its state dict loads unchanged and the parameter count is HF's own.
    """

    def __init__(self, xclip: nn.Module, num_classes: int):
        super().__init__()
        self.xclip = xclip
        self.register_buffer("text_features", torch.zeros(num_classes, xclip.config.projection_dim))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        m = self.xclip
        batch, frames, channels, height, width = pixel_values.shape
        vision = m.vision_model(pixel_values=pixel_values.reshape(-1, channels, height, width))
        tokens, pooled = vision[0], vision[1]
        video = m.mit(m.visual_projection(pooled).view(batch, frames, -1))[1]  # (B, E): MIT, mean over frames
        patches = m.prompts_visual_layernorm(tokens[:, 1:, :]) @ m.prompts_visual_projection
        patches = patches.view(batch, frames, -1, video.shape[-1]).mean(dim=1)  # (B, L, E)
        text = self.text_features.unsqueeze(0).expand(batch, -1, -1)
        text = text + m.prompts_generator(text, patches)  # video-specific prompts
        video = video / video.norm(p=2, dim=-1, keepdim=True)
        text = text / text.norm(p=2, dim=-1, keepdim=True)
        return torch.einsum("bd,bkd->bk", video, m.logit_scale.exp() * text)


def xclip(size: str = "base", patch_size: int = 32, frames: int = 8, num_classes: int = 400, image_size: int = 224,
          attn_implementation: str = "eager") -> nn.Module:
    """:class:`XCLIPClassifier` around ``XCLIPModel`` built from ``XCLIPConfig``: X-CLIP-B/32, B/16 (``size =
    "base"``, ``patch_size``) or L/14 (``size = "large"``, ``patch_size = 14``; 336 px for the 16-frame model)."""
    from transformers import XCLIPConfig, XCLIPModel

    try:
        widths = XCLIP[size]
    except KeyError:
        raise ValueError(f"unknown X-CLIP size {size!r}; one of {', '.join(XCLIP)}") from None
    cfg = XCLIPConfig(text_config=dict(widths["text"]),
                      vision_config={**widths["vision"], "patch_size": patch_size, "num_frames": frames,
                                     "image_size": image_size},
                      projection_dim=widths["projection_dim"])
    return XCLIPClassifier(XCLIPModel(_attention(cfg, attn_implementation)), num_classes)


VJEPA2 = {
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, mlp_ratio=4.0),
    "huge": dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, mlp_ratio=4.0),
    "giant": dict(hidden_size=1408, num_hidden_layers=40, num_attention_heads=22, mlp_ratio=48 / 11),
}


def vjepa2(size: str = "large", frames: int = 16, num_classes: int = 174, image_size: int = 256,
           attn_implementation: str = "eager", **config) -> nn.Module:
    """``VJEPA2ForVideoClassification``: the V-JEPA 2 ViT-``size`` encoder (2x16x16 tubelets), attentive
    pooler, linear head; ``frames_per_clip`` and ``crop_size`` set to the clip."""
    from transformers import VJEPA2Config, VJEPA2ForVideoClassification

    try:
        widths = VJEPA2[size]
    except KeyError:
        raise ValueError(f"unknown V-JEPA 2 size {size!r}; one of {', '.join(VJEPA2)}") from None
    cfg = VJEPA2Config(**{**widths, "frames_per_clip": frames, "crop_size": image_size, "num_labels": num_classes,
                          **config})
    return VJEPA2ForVideoClassification(_attention(cfg, attn_implementation))


def videoprism(frames: int = 16, num_classes: int = 400, image_size: int = 288, attn_implementation: str = "eager",
               **config) -> nn.Module:
    """``VideoPrismForVideoClassification``: VideoPrism-B (12 spatial + 4 temporal blocks, 18x18 patches),
    attention-pooling head, linear head."""
    from transformers import VideoPrismForVideoClassification, VideoPrismVisionConfig

    cfg = VideoPrismVisionConfig(**{"num_frames": frames, "image_size": image_size, "num_labels": num_classes,
                                    **config})
    return VideoPrismForVideoClassification(_attention(cfg, attn_implementation))
