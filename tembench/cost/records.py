"""A cost measurement as a record (one dict per case), the shape every cost run file holds."""
from __future__ import annotations

from tembench.registry import VariantSpec


def cost_record(spec: VariantSpec, frames: int | None, size: int | None, crops: int, clips: int,
                convention: str, num_classes: int | None = None) -> dict:
    """GFLOPs per view and in total over ``crops x clips`` views, params and the temporal module's share."""
    from tembench.cost import count_spec

    r = count_spec(spec, frames=frames, size=size, convention=convention, num_classes=num_classes)
    views = crops * clips
    return {
        "variant": spec.id,
        "frames": r.frames,
        "input_size": r.input_size,
        "classes": r.classes,
        "views": f"{r.frames}x{crops}x{clips}",
        "convention": r.convention,
        "gflops": r.macs / 1e9,
        "gflops_total": r.macs * views / 1e9,
        "params": r.params,
        "temporal_gflops": None if r.temporal_macs is None else r.temporal_macs / 1e9,
        "temporal_params": r.temporal_params,
        "macs": r.macs,
        "uncounted_ops": ",".join(sorted(r.uncounted)),
        "status": "ok",
    }


def failed_cost_record(case: tuple, convention: str, reason: str) -> dict:
    """The record of a cost case (variant, frames, size, crops, clips) that could not be counted."""
    spec, t, s, crops, clips = case
    t = spec.frames if t is None else t
    return {"variant": spec.id, "frames": t, "input_size": spec.input_size if s is None else s,
            "views": f"{t}x{crops}x{clips}", "convention": convention, "status": "error", "error": reason}
