"""Test-time spatial transforms: resize, crops and normalisation, each as the reference code does it.

Frames are Pillow images. A clip is resized (short side to S with a named rounding, or to a fixed
H x W as ATM does for Something-Something), then cut into the protocol's spatial crops; every crop of
every clip becomes one view of shape (3, T, c, c), normalised. Crop positions follow
``research/datasets-and-eval-protocols.md`` §3.2 (coordinates are top-left ``(x, y)``):

=================  =============================================================================
``center``         one crop; ``rounding`` floor (mmaction), round (torchvision/TSM), ceil (PySlowFast)
``three-mmaction`` mmaction ``ThreeCrop``: along the long side, order left/top, right/bottom, middle
``three-fullres``  TSM/TAM/ATM ``GroupFullResSample``: always along the width, order left, right, centre,
                   ``step = (W-c)//4`` (right at ``4*step``), vertically at ``2*((H-c)//4)``
``three-slowfast`` PySlowFast ``uniform_crop`` 0/1/2 along the long side (centre = ceil, last = W-c)
``ten``            mmaction ``TenCrop`` / TSM ``GroupOverSample``: four corners at ``4*step`` and the centre
                   at ``2*step``, each followed by its horizontal flip
=================  =============================================================================

Resizing uses Pillow (bilinear or bicubic); mmaction resizes with OpenCV and PySlowFast with
``torch.nn.functional.interpolate``, so pixel values can differ slightly from theirs while the geometry
(output size, crop boxes) is the reference's.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from tembench.errors import UsageError

NORMALISATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    # mean, std on [0, 1] pixel values
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "slowfast": ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225)),
}
CROP_MODES = {"center": 1, "three-mmaction": 3, "three-fullres": 3, "three-slowfast": 3, "ten": 10}
INTERPOLATIONS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}

Box = tuple[int, int, bool]  # x, y, horizontal flip


def short_side_size(width: int, height: int, short: int, rounding: str = "half-up") -> tuple[int, int]:
    """New (w, h) with the short side = ``short``: mmcv ``rescale_size`` rounds half up
    (``int(x*f + 0.5)``); TSM (torchvision on PIL) and PySlowFast floor the long side."""
    if rounding not in ("half-up", "floor"):
        raise UsageError(f"resize rounding must be 'half-up' or 'floor', got {rounding!r}")
    if width <= height:
        long = height * short / width
        return short, int(long + 0.5) if rounding == "half-up" else int(math.floor(long))
    long = width * short / height
    return (int(long + 0.5) if rounding == "half-up" else int(math.floor(long))), short


def resized_size(width: int, height: int, resize: Sequence | int, rounding: str = "half-up") -> tuple[int, int]:
    """``resize`` is an int (short side) or ``(H, W)`` (fixed size, aspect ratio not kept)."""
    if isinstance(resize, (list, tuple)):
        h, w = resize
        return int(w), int(h)
    return short_side_size(width, height, int(resize), rounding)


def crop_boxes(width: int, height: int, size: int, mode: str, rounding: str = "floor") -> list[Box]:
    """Top-left corners (and flips) of the crops of a ``width`` x ``height`` frame."""
    if size > width or size > height:
        raise UsageError(f"crop {size} does not fit a {width}x{height} frame; resize to at least the crop size")
    dw, dh = width - size, height - size
    if mode == "center":
        if rounding == "floor":
            return [(dw // 2, dh // 2, False)]
        if rounding == "round":
            return [(int(round(dw / 2)), int(round(dh / 2)), False)]
        if rounding == "ceil":
            return [(int(math.ceil(dw / 2)), int(math.ceil(dh / 2)), False)]
        raise UsageError(f"centre-crop rounding must be floor, round or ceil, got {rounding!r}")
    if mode == "three-mmaction":
        if size != height and size != width:
            raise UsageError(f"mmaction ThreeCrop needs the crop ({size}) to span the short side of {width}x{height}")
        if size == height:
            step = dw // 2
            return [(0, 0, False), (2 * step, 0, False), (step, 0, False)]
        step = dh // 2
        return [(0, 0, False), (0, 2 * step, False), (0, step, False)]
    if mode == "three-fullres":
        ws, hs = dw // 4, dh // 4
        return [(0, 2 * hs, False), (4 * ws, 2 * hs, False), (2 * ws, 2 * hs, False)]
    if mode == "three-slowfast":
        if height > width:
            xc = int(math.ceil(dw / 2))
            return [(xc, 0, False), (xc, int(math.ceil(dh / 2)), False), (xc, dh, False)]
        yc = int(math.ceil(dh / 2))
        return [(0, yc, False), (int(math.ceil(dw / 2)), yc, False), (dw, yc, False)]
    if mode == "ten":
        ws, hs = dw // 4, dh // 4
        corners = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]
        return [(x, y, flip) for x, y in corners for flip in (False, True)]
    raise UsageError(f"unknown crop mode {mode!r}; one of {', '.join(CROP_MODES)}")


def normalise(frames_uint8: torch.Tensor, norm: str) -> torch.Tensor:
    """(..., 3, T, H, W) uint8 -> float32 normalised with the named mean/std (on [0, 1] values)."""
    if norm not in NORMALISATIONS:
        raise UsageError(f"unknown normalisation {norm!r}; one of {', '.join(NORMALISATIONS)}")
    mean, std = NORMALISATIONS[norm]
    shape = (3, 1, 1, 1)
    x = frames_uint8.float().div_(255.0)
    return x.sub_(torch.tensor(mean).view(shape)).div_(torch.tensor(std).view(shape))


class ClipTransform:
    """Resize + crops + normalisation for one protocol; call it with the frames of one clip."""

    def __init__(self, resize: Sequence | int, crop: str, crop_size: int, norm: str,
                 rounding: str = "half-up", center_rounding: str = "floor", interpolation: str = "bilinear"):
        if crop not in CROP_MODES:
            raise UsageError(f"unknown crop mode {crop!r}; one of {', '.join(CROP_MODES)}")
        if interpolation not in INTERPOLATIONS:
            raise UsageError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
        if norm not in NORMALISATIONS:
            raise UsageError(f"unknown normalisation {norm!r}; one of {', '.join(NORMALISATIONS)}")
        self.resize, self.crop, self.crop_size, self.norm = resize, crop, crop_size, norm
        self.rounding, self.center_rounding, self.interpolation = rounding, center_rounding, interpolation

    @property
    def crops(self) -> int:
        return CROP_MODES[self.crop]

    def resize_frame(self, img: Image.Image) -> Image.Image:
        w, h = resized_size(img.width, img.height, self.resize, self.rounding)
        if (w, h) == img.size:
            return img
        return img.convert("RGB").resize((w, h), INTERPOLATIONS[self.interpolation])

    def __call__(self, frames: list[Image.Image]) -> torch.Tensor:
        """Frames of one clip (already resized or not) -> (crops, 3, T, c, c) float32."""
        frames = [self.resize_frame(f) for f in frames]
        arr = np.stack([np.asarray(f.convert("RGB")) for f in frames])  # T, H, W, 3
        t, h, w, _ = arr.shape
        c = self.crop_size
        views = []
        for x, y, flip in crop_boxes(w, h, c, self.crop, self.center_rounding):
            v = arr[:, y:y + c, x:x + c]
            if flip:
                v = v[:, :, ::-1]
            views.append(np.ascontiguousarray(v))
        out = torch.from_numpy(np.stack(views)).permute(0, 4, 1, 2, 3)  # crops, 3, T, c, c
        return normalise(out, self.norm)
