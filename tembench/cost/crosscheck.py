"""The meta-device count beside fvcore's own count of a real forward: ``tembench profile --cross-check fvcore``.

fvcore's ``FlopCountAnalysis`` traces a real forward (random weights, on the CPU) and applies its
per-operator rules; tembench applies the same rules at the ATen level on the meta device. Under the
``fvcore-legacy`` convention (what fvcore 0.1.5 reports on PyTorch 2.x: scaled-dot-product attention
and ``baddbmm`` not counted) the two totals must be equal. The input is small, since fvcore runs the
model for real. When the totals differ, the operators that account for it are listed: each side's
per-operator counts, paired by equal values (the two name the same operator differently, e.g.
fvcore's ``linear`` is ATen's ``addmm``), with the unpaired ones reported.
"""
from __future__ import annotations

import logging

from tembench.cost import count_spec
from tembench.registry import VariantSpec

SMALL_SIZE = 64  # height = width of the cross-check's input (rounded up to a ViT's patch)


def small_size(spec: VariantSpec) -> int:
    """64, or the next multiple of a ViT's patch size."""
    if spec.arch == "clip_vit":
        from tembench.models.backbones.clip_vit import CONFIGS

        patch = CONFIGS[spec.backbone].patch
        return -(-SMALL_SIZE // patch) * patch
    return SMALL_SIZE


def _pair(ours: dict[str, int], theirs: dict[str, int]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """The operators of each side left after pairing equal counts (the ones that make the difference)."""
    left = sorted(theirs.items(), key=lambda kv: -kv[1])
    unpaired_ours = []
    for name, n in sorted(ours.items(), key=lambda kv: -kv[1]):
        match = next((i for i, (_, m) in enumerate(left) if m == n), None)
        if match is None:
            unpaired_ours.append((name, n))
        else:
            left.pop(match)
    return unpaired_ours, left


def fvcore_crosscheck(spec: VariantSpec, frames: int | None = None, size: int | None = None,
                      num_classes: int = 10, seed: int = 0) -> dict:
    """Both totals for one variant at a small input, and the operators that differ (if any).

    >>> r = fvcore_crosscheck(registry().get("tsn/tsn-r50"))
    >>> r["tembench_macs"] == r["fvcore_macs"]
    True
    """
    import torch
    from fvcore.nn import FlopCountAnalysis

    from tembench.models.build import build_from_spec

    frames = spec.frames if frames is None else frames
    size = small_size(spec) if size is None else size
    ours = count_spec(spec, frames=frames, size=size, num_classes=num_classes, convention="fvcore-legacy")
    torch.manual_seed(seed)
    model = build_from_spec(spec, frames=frames, num_classes=num_classes).eval()
    x = torch.randn(1, 3, frames, size, size)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with torch.no_grad():
        theirs_total = int(analysis.total())
        theirs = {k: int(v) for k, v in analysis.by_operator().items() if v}
    ours_ops = {k: v for k, v in ours.by_operator.items() if v}
    only_ours, only_theirs = _pair(ours_ops, theirs) if ours.macs != theirs_total else ([], [])
    return {
        "variant": spec.id, "frames": frames, "input_size": size, "classes": num_classes,
        "tembench_macs": ours.macs, "fvcore_macs": theirs_total, "equal": ours.macs == theirs_total,
        "differing_ops": "; ".join([f"tembench {k} {v:,}" for k, v in only_ours] +
                                   [f"fvcore {k} {v:,}" for k, v in only_theirs]),
    }
