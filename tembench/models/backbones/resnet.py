"""ResNet-18/34/50/101/152 (He et al., CVPR 2016), torchvision layout (ResNet v1.5: stride in the 3x3).

State-dict keys are torchvision's (``conv1``, ``bn1``, ``layer{1-4}.{i}.conv1`` ... ``downsample.0/1``,
``fc``), so ImageNet weights load unchanged. The residual blocks have three optional slots, built by
hooks given to :class:`ResNet`, so that a temporal variant is the same network with extra modules
(the video host, :mod:`tembench.models.resnet_video`, fills them through the temporal-module protocol):

* ``shift``    -- applied to the block input on the residual branch, before ``conv1`` (TSM);
* ``temporal`` -- applied after ``conv1 -> bn1 -> relu`` (TAM, TIM, T-Conv, pooling, TEINet);
* ``conv1``    -- may be replaced by another module of the same shapes (I3D's inflated 3x1x1).

An empty slot (None) is the identity. A module that runs after a whole block (non-local) wraps it,
:func:`follow_block`; a module that runs once at the end of a stage (ATM after the last block of
res3) is appended to it by :func:`append_to_stage`.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet", "ARCH_SETTINGS", "follow_block", "append_to_stage"]

# block factory: (block index in stage, stage index, planes) -> module or None
BlockHook = Optional[Callable[[int, int, int], Optional[nn.Module]]]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, shift=None, temporal=None, conv1=None):
        super().__init__()
        self.conv1 = conv1 if conv1 is not None else conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.shift = shift
        self.temporal = temporal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.shift(x) if self.shift is not None else x
        out = self.relu(self.bn1(self.conv1(out)))
        if self.temporal is not None:
            out = self.temporal(out)
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, shift=None, temporal=None, conv1=None):
        super().__init__()
        self.conv1 = conv1 if conv1 is not None else conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.shift = shift
        self.temporal = temporal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.shift(x) if self.shift is not None else x
        out = self.relu(self.bn1(self.conv1(out)))
        if self.temporal is not None:
            out = self.temporal(out)
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ImageNet ResNet. The hooks build the optional per-block modules (see the module docstring)."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        shift: BlockHook = None,
        temporal: BlockHook = None,
        conv1: Callable[[int, int, int, int, int], Optional[nn.Module]] | None = None,
        width: int = 64,
    ):
        super().__init__()
        self.inplanes = width  # 64 for every ImageNet ResNet; smaller for the motion benchmark's
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0], 1, 0, shift, temporal, conv1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2, 1, shift, temporal, conv1)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2, 2, shift, temporal, conv1)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2, 3, shift, temporal, conv1)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride, stage, shift, temporal, conv1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = []
        for i in range(blocks):
            # BasicBlock's conv1 is the strided 3x3; Bottleneck's is a 1x1 at the input resolution.
            first_stride = stride if i == 0 else 1
            layers.append(
                block(
                    self.inplanes,
                    planes,
                    first_stride,
                    downsample if i == 0 else None,
                    shift=shift(i, stage, self.inplanes) if shift else None,
                    temporal=temporal(i, stage, planes) if temporal else None,
                    conv1=conv1(i, stage, self.inplanes, planes, first_stride) if conv1 else None,
                )
            )
            self.inplanes = planes * block.expansion
        return nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


# name -> (block, blocks per stage, base width)
ARCH_SETTINGS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], 64),
    "resnet34": (BasicBlock, [3, 4, 6, 3], 64),
    "resnet50": (Bottleneck, [3, 4, 6, 3], 64),
    "resnet101": (Bottleneck, [3, 4, 23, 3], 64),
    "resnet152": (Bottleneck, [3, 8, 36, 3], 64),
    # small-width network of the motion-sensitivity benchmark (trained from scratch on CPU)
    "resnet10-w16": (BasicBlock, [1, 1, 1, 1], 16),
}


def resnet(name: str, **kwargs) -> ResNet:
    """``resnet("resnet50", num_classes=400)``; keyword arguments go to :class:`ResNet`."""
    block, layers, width = ARCH_SETTINGS[name]
    return ResNet(block, layers, width=width, **kwargs)


class _After(nn.Module):
    """A residual block followed by a non-local block (TSM's ``NL3DWrapper`` layout: ``block``, ``nl``)."""

    def __init__(self, block: nn.Module, nl: nn.Module):
        super().__init__()
        self.block = block
        self.nl = nl

    def forward(self, x):
        return self.nl(self.block(x))


def follow_block(stage: nn.Sequential, index: int, module: nn.Module) -> None:
    """Run ``module`` after block ``index`` of ``stage``: the block is wrapped, so its keys become
    ``layerX.i.block.*`` and the module's ``layerX.i.nl.*``, as in the TSM/TAM repositories' non-local code."""
    stage[index] = _After(stage[index], module)


def append_to_stage(model: ResNet, stage_name: str, name: str, module: nn.Module) -> None:
    """Run ``module`` after the last block of a stage: it becomes the stage's child ``name``, so its
    keys are ``layerX.<name>.*`` and the torchvision keys of the blocks do not change."""
    stage: nn.Sequential = getattr(model, stage_name)
    if name in stage._modules:
        raise ValueError(f"{stage_name} already has a module named {name!r}")
    stage.add_module(name, module)
