"""The case grid a sweep measures, and the parsers of its command-line values.

A case is (variant, frames, input size, crops, clips): :func:`profile_cases` builds the grid from
variant patterns, frame counts and a view protocol, for cost, runtime (which adds batch sizes) and
evaluation alike. Only the registry is needed, so this module imports no torch.

>>> [(spec.id, t) for spec, t, size, crops, clips in profile_cases(["tsm/tsm-r50"], [8, 16])]
[('tsm/tsm-r50', 8), ('tsm/tsm-r50', 16)]
"""
from __future__ import annotations

import re

from tembench.errors import UsageError
from tembench.registry import VariantSpec, registry

Case = tuple[VariantSpec, "int | None", "int | None", int, int]
"""(variant, frames or None for the variant's own, input size or None, crops, clips)."""


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


def profile_cases(patterns: list[str] | None = None, frames: list[int] | None = None,
                  size: int | None = None, views: str | None = None,
                  notes: list[str] | None = None, specs: list[VariantSpec] | None = None) -> list[Case]:
    """The grid of (variant, frames, size, crops, clips) cases a profile run measures: the registered
    variants ``patterns`` select, then ``specs`` (networks named by an import path, not registered).

    Conflicting frame counts (``frames`` and the frames of ``views``) are an error. An ensemble's members
    fix their frame counts: with ``frames`` given, an ensemble named outright is an error, and one that a
    family or glob matched is left out (and said so in ``notes``)."""
    view_frames, crops, clips = parse_views(views)
    if view_frames is not None and frames is not None and list(frames) != [view_frames]:
        raise UsageError(f"--frames {','.join(map(str, frames))} and --views {views} give different frame counts; "
                         f"give them once: --views {crops}x{clips} with --frames, or --views {views} alone")
    if frames is None and view_frames is not None:
        frames = [view_frames]
    cases = []
    left_out = []
    selected = registry().select(patterns) if patterns or not specs else []
    unavailable = [spec for spec in selected if spec.missing]
    for spec in unavailable:
        if spec.id in (patterns or []):
            raise UsageError(f"{spec.id} needs {', '.join(spec.missing)}, which is not installed: {spec.install_hint}")
    if unavailable and notes is not None:
        hints = sorted({s.install_hint for s in unavailable})
        notes.append(f"left out {len(unavailable)} variant{'s' if len(unavailable) > 1 else ''} whose packages are "
                     f"not installed ({', '.join(sorted({m for s in unavailable for m in s.missing}))}): "
                     f"{'; '.join(hints)}")
    selected = [spec for spec in selected if not spec.missing]
    for spec in selected + list(specs or []):
        if spec.is_ensemble:
            if frames is not None:
                if spec.id in (patterns or []):
                    members = ", ".join(f"{m.variant}@{m.frames}" for m in spec.members)
                    raise UsageError(f"{spec.id} is an ensemble whose members fix their frame counts ({members}); "
                                     "drop --frames (and the frames of --views), or profile its members")
                left_out.append(spec.id)
                continue
            cases.append((spec, None, size, crops, clips))
        else:
            for t in frames or [spec.frames]:
                cases.append((spec, t, size, crops, clips))
    if left_out and notes is not None:
        notes.append(f"left out {len(left_out)} ensemble{'s' if len(left_out) > 1 else ''} (their members fix "
                     f"their frame counts, so --frames does not apply): {', '.join(left_out)}")
    if not cases:
        raise UsageError("no case to measure: every selected variant is an ensemble and --frames was given, or "
                         "needs a package that is not installed")
    return cases
