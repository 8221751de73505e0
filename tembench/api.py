"""The Python API behind every command: each CLI command calls one function here."""
from __future__ import annotations

import re
from typing import Callable, Iterator

from tembench.errors import UsageError
from tembench.registry import VariantSpec, registry


def parse_int_list(text: str | None, what: str = "frames") -> list[int] | None:
    """'8,16,32' -> [8, 16, 32]; one-line error on anything else."""
    if text is None or text == "":
        return None
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not re.fullmatch(r"\d+", part) or int(part) <= 0:
            raise UsageError(f"{what} must be positive integers separated by commas (e.g. 8,16,32), got {text!r}")
        out.append(int(part))
    return out


def parse_views(text: str | None) -> tuple[int | None, int, int]:
    """'3x10' (crops x clips) or '8x3x10' (frames x crops x clips) -> (frames or None, crops, clips)."""
    if text is None:
        return None, 1, 1
    m = re.fullmatch(r"(?:(\d+)x)?(\d+)x(\d+)", text.strip())
    if not m or any(g is not None and int(g) <= 0 for g in m.groups()):
        raise UsageError(f"views must be CROPSxCLIPS or FRAMESxCROPSxCLIPS with positive integers (e.g. 3x10 or 8x3x10), got {text!r}")
    frames = int(m.group(1)) if m.group(1) else None
    return frames, int(m.group(2)), int(m.group(3))


def variant_row(v: VariantSpec) -> dict:
    return {
        "variant": v.id,
        "arch": v.arch,
        "backbone": v.backbone,
        "temporal": v.temporal or "",
        "options": ", ".join(f"{k}={v.options[k]}" for k in v.options) if v.options else "",
        "frames": v.frames,
        "input_size": v.input_size,
        "classes": v.classes,
        "claims": len(v.claims),
        "members": " + ".join(f"{m.variant}@{m.frames}" for m in v.members),
        "description": v.description,
    }


def list_variants(patterns: list[str] | None = None) -> list[dict]:
    """Registered variants matching the fnmatch patterns (all when none)."""
    return [variant_row(v) for v in registry().select(patterns)]


def cost_record(spec: VariantSpec, frames: int | None, size: int | None, crops: int, clips: int,
                convention: str, num_classes: int | None = None) -> dict:
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
    }


def profile_cases(patterns: list[str] | None = None, frames: list[int] | None = None,
                  size: int | None = None, views: str | None = None) -> list[tuple[VariantSpec, int | None, int | None, int, int]]:
    """The grid of (variant, frames, size, crops, clips) cases a profile run measures."""
    view_frames, crops, clips = parse_views(views)
    if frames is None and view_frames is not None:
        frames = [view_frames]
    cases = []
    for spec in registry().select(patterns):
        if spec.is_ensemble:
            cases.append((spec, None, size, crops, clips))
        else:
            for t in frames or [spec.frames]:
                cases.append((spec, t, size, crops, clips))
    return cases


def profile(patterns: list[str] | None = None, frames: list[int] | str | None = None, size: int | None = None,
            views: str | None = None, convention: str = "fvcore",
            on_record: Callable[[dict], None] | None = None) -> list[dict]:
    """Cost records for every matching variant at each frame count (default: the variant's own)."""
    from tembench.cost.conventions import get_convention

    get_convention(convention)
    if isinstance(frames, str):
        frames = parse_int_list(frames)
    records = []
    for spec, t, s, crops, clips in profile_cases(patterns, frames, size, views):
        rec = cost_record(spec, t, s, crops, clips, convention)
        records.append(rec)
        if on_record:
            on_record(rec)
    return records


def claims(paper: str | None = None, source: str | None = None) -> list[dict]:
    """Every claim (of one paper / table) beside the value measured under its own protocol."""
    from tembench.report.claims import evaluate_claims

    return [r.as_dict() for r in evaluate_claims(paper=paper, source=source)]


