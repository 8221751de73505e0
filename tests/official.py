"""Helpers shared by the equivalence tests against the official code (tests/test_official_*.py): the
relative difference, random weights with random BatchNorm statistics, the eval-mode BatchNorm and
LayerNorm of a reference forward, and the perturbed copy of a checkpoint for the negative controls."""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def randomize_(model: torch.nn.Module, seed: int, scale=0.05) -> None:
    """Noise on every parameter (layers that start at zero or one become live), random BatchNorm running
    statistics. ``scale``: a number, or ``scale(name)`` per parameter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * (scale(name) if callable(scale) else scale))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.rand(b.shape, generator=g) * 0.4 - 0.2)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)


def bn(x, sd, p, eps=1e-5):
    """BatchNorm in eval mode from the running statistics (any of BatchNorm1d/2d/3d)."""
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                        training=False, eps=eps)


def ln(x, sd, p, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], sd[f"{p}.weight"], sd[f"{p}.bias"], eps)


def perturbed(sd: dict, key: str, path: Path, container: str) -> Path:
    """A copy of the official state dict ``sd`` with one weight perturbed, saved in ``container``."""
    bad = dict(sd)
    bad[key] = sd[key] + 0.05 * torch.randn_like(sd[key])
    torch.save({container: bad}, path)
    return path


def tam_official_names(state: dict) -> dict:
    """tembench's TANet state dict under the official release's names (seed-code digest §2.3)."""
    out = {}
    for k, v in state.items():
        m = re.match(r"^(layer\d+\.\d+)\.(.*)$", k)
        if k.startswith("fc."):
            k = "new_fc." + k[3:]
        elif m and m.group(2).startswith("temporal."):
            k = f"{m.group(1)}.tam.{m.group(2)[len('temporal.'):]}"
        elif m:
            k = f"{m.group(1)}.net.{m.group(2)}"
        out["module." + (k if k.startswith("new_fc.") else "base_model." + k)] = v
    return out
