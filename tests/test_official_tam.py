"""Equivalence with the official TANet: liu-zhy/temporal-adaptive-module @ 5fcb46fe671ead2f7958d8ffc3321a0e274d6491,
``ops/temporal_module.py`` (TAM, TemporalBottleneck wrapping torchvision's Bottleneck as ``.net``,
make_temporal_modeling: every bottleneck of layer1-4) and ``ops/models.py`` (TSN: frames folded into the
batch, torchvision ResNet-50 with its ``fc`` replaced by dropout, ``new_fc``, "avg" consensus of the
per-frame logits). Checkpoint: ``{"state_dict": ...}`` saved from DataParallel, keys
``module.base_model.*`` and ``module.new_fc.*``.

The reference below is written from reading that code (nothing copied) and reads its weights by the
official names; the whole TANet-R50 runs at 8 frames on 64 x 64 crops (the global branch's weights
depend on the frame count, not on the resolution). See tests/test_official_clip.py for the method.
"""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from official import bn, perturbed, randomize_, rel_diff, tam_official_names

from tembench.evaluate.checkpoint import load_checkpoint
from tembench.models.build import build_model

TOL = 1e-5
FRAMES = 8
CLASSES = 7
LAYERS = (3, 4, 6, 3)  # ResNet-50


def official_tam(x, sd, p, frames):
    """TAM.forward on (N*T, C, H, W): spatial means per (clip, channel, frame); the global branch G
    (Linear T->2T, BN, ReLU, Linear 2T->3, softmax) gives every (clip, channel) its own 3-tap temporal
    kernel; the local branch L (Conv1d C->C/4 k3, BN, ReLU, Conv1d C/4->C k1, sigmoid) a per-frame
    importance; the input is scaled by the importance, then convolved over time with the kernel
    (taps t-1, t, t+1, zero frames outside)."""
    nt, c, h, w = x.shape
    n = nt // frames
    v = x.view(n, frames, c, h, w).transpose(1, 2)  # (N, C, T, H, W)
    desc = v.mean(dim=(3, 4))  # (N, C, T)
    g = F.relu(bn(desc.reshape(n * c, frames) @ sd[f"{p}.G.0.weight"].t(), sd, f"{p}.G.1"))
    kernel = (g @ sd[f"{p}.G.3.weight"].t()).softmax(dim=-1).view(n, c, 3, 1, 1, 1)
    local = F.relu(bn(F.conv1d(desc, sd[f"{p}.L.0.weight"], padding=1), sd, f"{p}.L.1"))
    local = torch.sigmoid(F.conv1d(local, sd[f"{p}.L.3.weight"]))
    y = v * local.view(n, c, frames, 1, 1)
    y = F.pad(y, (0, 0, 0, 0, 1, 1))
    out = sum(kernel[:, :, k] * y[:, :, k:k + frames] for k in range(3))
    return out.transpose(1, 2).reshape(nt, c, h, w)


def official_bottleneck(x, sd, p, frames, stride):
    """TemporalBottleneck.forward around torchvision's Bottleneck (stride on the 3x3 conv): TAM
    between conv1 (+BN+ReLU) and conv2."""
    out = F.relu(bn(F.conv2d(x, sd[f"{p}.net.conv1.weight"]), sd, f"{p}.net.bn1"))
    out = official_tam(out, sd, f"{p}.tam", frames)
    out = F.relu(bn(F.conv2d(out, sd[f"{p}.net.conv2.weight"], stride=stride, padding=1), sd, f"{p}.net.bn2"))
    out = bn(F.conv2d(out, sd[f"{p}.net.conv3.weight"]), sd, f"{p}.net.bn3")
    if f"{p}.net.downsample.0.weight" in sd:
        x = bn(F.conv2d(x, sd[f"{p}.net.downsample.0.weight"], stride=stride), sd, f"{p}.net.downsample.1")
    return F.relu(out + x)


def official_tanet(clips, sd, frames):
    """TSN(base_model=TANet-R50): (B, 3, T, H, W) -> (B, classes)."""
    b = clips.shape[0]
    # TSN feeds (B, T*3, H, W) and views it as (B*T, 3, H, W): clip-major frames
    x = clips.transpose(1, 2).reshape(b * frames, 3, *clips.shape[-2:])
    pre = "module.base_model"
    x = F.relu(bn(F.conv2d(x, sd[f"{pre}.conv1.weight"], stride=2, padding=3), sd, f"{pre}.bn1"))
    x = F.max_pool2d(x, 3, stride=2, padding=1)
    for stage, blocks in enumerate(LAYERS, 1):
        for i in range(blocks):
            stride = 2 if stage > 1 and i == 0 else 1
            x = official_bottleneck(x, sd, f"{pre}.layer{stage}.{i}", frames, stride)
    x = x.mean(dim=(2, 3))  # AdaptiveAvgPool2d(1); the dropout that replaced fc is off in eval
    logits = x @ sd["module.new_fc.weight"].t() + sd["module.new_fc.bias"]
    return logits.view(b, frames, -1).mean(dim=1)


def _scale(name: str) -> float:
    """TAM's global branch starts at std 0.001 (a flat kernel): made clearly non-uniform."""
    return 0.5 if ".temporal.G." in name else 0.05


def randomize_tanet_(model, seed):
    """Random weights and BatchNorm statistics; the last BN of every residual branch gets a small scale,
    as trained ResNets have, so that 16 random blocks keep the activations near unit size and float32
    rounding stays far below the test's tolerance."""
    randomize_(model, seed, scale=_scale)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("bn3.weight", "downsample.1.weight")):
                p.mul_(0.2)


@pytest.fixture(scope="module")
def tanet_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("tam/tanet-r50", FRAMES, num_classes=CLASSES)
    randomize_tanet_(model, seed=1)
    sd = tam_official_names({k: v.clone() for k, v in model.state_dict().items()})
    assert "module.base_model.layer1.0.net.conv1.weight" in sd and "module.base_model.layer4.2.tam.G.3.weight" in sd
    path = tmp_path_factory.mktemp("tam") / "TAM_kinetics_RGB_resnet50_avg_segment8_e100.pth.tar"
    torch.save({"epoch": 100, "arch": "resnet50", "best_prec1": 76.1, "state_dict": sd}, path)
    x = torch.randn(2, 3, FRAMES, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = official_tanet(x, sd, FRAMES)
    return sd, path, x, want


def _tembench(path):
    torch.manual_seed(5)
    model = build_model("tam/tanet-r50", FRAMES, num_classes=CLASSES)
    report = load_checkpoint(model, path)
    return model.eval(), report


def test_tanet_matches_the_official_forward(tanet_checkpoint):
    sd, path, x, want = tanet_checkpoint
    model, report = _tembench(path)
    assert report.container == "state_dict" and report.source == "tsn-official"
    assert report.clean and not report.ignored, report.summary()
    with torch.no_grad():
        got = model(x)
    assert rel_diff(got, want) < TOL, rel_diff(got, want)


def test_tanet_negative_control(tanet_checkpoint, tmp_path):
    sd, _, x, want = tanet_checkpoint
    key = "module.base_model.layer3.1.tam.L.0.weight"
    path = perturbed(sd, key, tmp_path / "perturbed.pth.tar", "state_dict")
    model, _ = _tembench(path)
    with torch.no_grad():
        got = model(x)
    assert rel_diff(got, want) > 1e-3
