"""Spatial protocol: resize rounding and crop positions of research/datasets-and-eval-protocols.md §3."""
import pytest
import torch
from PIL import Image

from tembench.data.protocols import get_protocol
from tembench.data.transforms import ClipTransform, crop_boxes, short_side_size
from tembench.errors import UsageError


def xy(boxes):
    return [(x, y) for x, y, _ in boxes]


@pytest.mark.parametrize("w, h, three_mm, fullres, slowfast, center, ten", [
    (340, 256, [(0, 0), (84, 0), (42, 0)], [(0, 0), (84, 0), (42, 0)], [(0, 0), (42, 0), (84, 0)], (58, 16),
     [(0, 0), (116, 0), (0, 32), (116, 32), (58, 16)]),
    (455, 256, [(0, 0), (198, 0), (99, 0)], [(0, 0), (196, 0), (98, 0)], [(0, 0), (100, 0), (199, 0)], (115, 16),
     [(0, 0), (228, 0), (0, 32), (228, 32), (114, 16)]),
    (256, 455, [(0, 0), (0, 198), (0, 99)], [(0, 98)] * 3, [(0, 0), (0, 100), (0, 199)], (16, 115),
     [(0, 0), (32, 0), (0, 228), (32, 228), (16, 114)]),
])
def test_crop_positions_match_the_worked_table(w, h, three_mm, fullres, slowfast, center, ten):
    assert xy(crop_boxes(w, h, 256, "three-mmaction")) == three_mm
    assert xy(crop_boxes(w, h, 256, "three-fullres")) == fullres
    assert xy(crop_boxes(w, h, 256, "three-slowfast")) == slowfast
    assert xy(crop_boxes(w, h, 224, "center", "floor")) == [center]
    boxes = crop_boxes(w, h, 224, "ten")
    assert xy(boxes[::2]) == ten and xy(boxes[1::2]) == ten
    assert [f for _, _, f in boxes] == [False, True] * 5


def test_centre_crop_roundings():  # 455x256 -> 224: mmaction floor 115, torchvision / PySlowFast 116
    assert crop_boxes(455, 256, 224, "center", "floor")[0][:2] == (115, 16)
    assert crop_boxes(455, 256, 224, "center", "round")[0][:2] == (116, 16)
    assert crop_boxes(455, 256, 224, "center", "ceil")[0][:2] == (116, 16)


def test_short_side_rounding():  # 480x360 -> 224: mmaction 299x224, floor-based 298x224
    assert short_side_size(480, 360, 224, "half-up") == (299, 224)
    assert short_side_size(480, 360, 224, "floor") == (298, 224)
    assert short_side_size(360, 480, 224, "floor") == (224, 298)


def test_atm_fixed_resize_and_crops():
    p = get_protocol("atm-ss-2x3")
    t = p.transform()
    img = Image.new("RGB", (96, 72), (10, 20, 30))
    assert t.resize_frame(img).size == (320, 256)  # exactly 256x320 (H x W), aspect ratio not kept
    assert xy(crop_boxes(320, 256, 224, p.crop)) == [(0, 16), (96, 16), (48, 16)]  # left, right, centre


def test_clip_transform_shapes_flip_and_normalisation():
    frames = []
    for i in range(4):
        img = Image.new("RGB", (80, 64), (0, 0, 0))
        img.paste((255, 255, 255), (0, 0, 8, 64))  # a white stripe on the left edge
        frames.append(img)
    t = ClipTransform(64, "ten", 48, "imagenet")
    out = t(frames)
    assert out.shape == (10, 3, 4, 48, 48) and out.dtype == torch.float32
    # upper-left crop sees the stripe at its left edge; its flip at the right edge
    assert out[0, 0, 0, 10, 0] > 2 and out[1, 0, 0, 10, -1] > 2 and out[1, 0, 0, 10, 0] < 0
    mean, std = 0.485, 0.229
    assert out[0, 0, 0, 10, 30].item() == pytest.approx((0 - mean) / std, abs=1e-5)


def test_three_mmaction_needs_the_crop_to_span_the_short_side():
    with pytest.raises(UsageError, match="span the short side"):
        crop_boxes(340, 256, 224, "three-mmaction")
    with pytest.raises(UsageError, match="does not fit"):
        crop_boxes(100, 80, 96, "center")


def test_views_and_size_overrides():
    p = get_protocol("tsm-1x1").with_views(16, 3, 2)
    assert (p.frames, p.crops, p.clips, p.crop) == (16, 3, 2, "three-fullres")
    assert p.views() == "16x3x2" and p.name == "tsm-1x1@16x3x2"
    p = get_protocol("emim-ss-1x3").with_views(None, 10, None)
    assert p.crop == "ten"
    s = get_protocol("tsm-1x1").with_size(112)
    assert (s.crop_size, s.resize) == (112, 128)
    a = get_protocol("atm-ss-2x3").with_size(112)
    assert a.resize == (128, 160)
    with pytest.raises(UsageError, match="crops must be"):
        get_protocol("tsm-1x1").with_views(None, 5, None)
