"""Cost of a registered variant: multiply-adds and parameters, counted on the meta device.

>>> r = count("tsn/tsn-r50", frames=8, size=224, num_classes=1000)
>>> r.macs
32892100608
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from tembench.cost.conventions import CONVENTIONS, Convention, get_convention
from tembench.cost.counter import OpCounts, count_ops
from tembench.errors import UsageError
from tembench.registry import VariantSpec, get_variant

__all__ = ["count", "count_spec", "CostResult", "CONVENTIONS"]


@dataclass
class CostResult:
    """Cost of one view (one clip, one crop) of a variant under one counting convention.

    ``macs`` is the exact integer count under ``convention`` (for ``flops`` it is 2 x the
    multiply-adds); ``by_module`` / ``by_operator`` / ``by_category`` break it down; ``uncounted``
    lists operators that ran but carry no cost under fvcore's rules (call counts).
    """

    variant: str
    frames: int
    input_size: int
    classes: int
    convention: str
    macs: int
    params: int
    by_module: dict[str, int]
    by_operator: dict[str, int]
    by_category: dict[str, int]
    uncounted: dict[str, int]
    temporal_macs: int | None = None
    temporal_params: int | None = None
    all_conventions: dict[str, int] = field(default_factory=dict)

    @property
    def gflops(self) -> float:
        return self.macs / 1e9

    def module_totals(self, depth: int = 1) -> dict[str, int]:
        """Counts summed per module path truncated to ``depth`` components ("" = the model itself)."""
        out: dict[str, int] = defaultdict(int)
        for module, n in self.by_module.items():
            key = ".".join(module.split(".")[:depth]) if module else "(root)"
            out[key] += n
        return dict(out)


def _convention_total(counts: OpCounts, conv: Convention) -> int:
    return conv.factor * sum(n for module, _, category, n in counts.items() if conv.counts(module, category))


def _summarise(counts: OpCounts, conv: Convention):
    by_module, by_op, by_cat = Counter(), Counter(), Counter()
    for module, op, category, n in counts.items():
        if conv.counts(module, category):
            by_module[module] += conv.factor * n
            by_op[op] += conv.factor * n
            by_cat[category] += conv.factor * n
    return dict(by_module), dict(by_op), dict(by_cat)


@lru_cache(maxsize=512)
def _count_cached(arch: str, backbone: str, temporal: str | None, options_json: str,
                  frames: int, size: int, classes: int) -> OpCounts:
    from tembench.models.build import arch_module
    from tembench.models.meta import meta_build

    module = arch_module(arch)
    with meta_build():
        model = module.build(backbone, temporal, json.loads(options_json), frames, classes)
    return count_ops(model, torch.empty(1, 3, frames, size, size, device="meta"))


def _raw_counts(spec: VariantSpec, frames: int, size: int, classes: int, temporal: bool = True) -> OpCounts:
    if spec.is_ensemble:
        from tembench.registry import get_variant as _get

        total = OpCounts()
        for i, member in enumerate(spec.members):
            part = _raw_counts(_get(member.variant), member.frames, size, classes, temporal)
            for (module, op, category), n in part.macs.items():
                total.macs[(f"[{i}]{member.variant}@{member.frames}" + (f".{module}" if module else ""), op, category)] += n
            total.uncounted.update(part.uncounted)
            total.params += part.params
        return total
    if not temporal:
        from tembench.models.build import baseline_spec

        spec = baseline_spec(spec)
    return _count_cached(
        spec.arch, spec.backbone, spec.temporal, json.dumps(spec.options, sort_keys=True), frames, size, classes,
    )


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    return value


def count_spec(spec: VariantSpec, frames: int | None = None, size: int | None = None,
               convention: str = "fvcore", num_classes: int | None = None,
               temporal_baseline: bool = True) -> CostResult:
    conv = get_convention(convention)
    if spec.is_ensemble:
        if frames is not None:
            raise UsageError(f"{spec.id} is an ensemble; its members fix their frame counts")
        frames = spec.frames
    frames = _check_positive("frames", spec.frames if frames is None else frames)
    size = _check_positive("input size", spec.input_size if size is None else size)
    classes = _check_positive("num_classes", spec.classes if num_classes is None else num_classes)
    counts = _raw_counts(spec, frames, size, classes)
    by_module, by_op, by_cat = _summarise(counts, conv)
    result = CostResult(
        variant=spec.id, frames=frames, input_size=size, classes=classes, convention=conv.name,
        macs=_convention_total(counts, conv), params=counts.params,
        by_module=by_module, by_operator=by_op, by_category=by_cat, uncounted=dict(counts.uncounted),
        all_conventions={name: _convention_total(counts, c) for name, c in CONVENTIONS.items()},
    )
    if temporal_baseline and spec.temporal is not None:
        base = _raw_counts(spec, frames, size, classes, temporal=False)
        result.temporal_macs = result.macs - _convention_total(base, conv)
        result.temporal_params = result.params - base.params
    elif temporal_baseline:
        result.temporal_macs, result.temporal_params = 0, 0
    return result


def count(variant_id: str, frames: int | None = None, size: int | None = None,
          convention: str = "fvcore", num_classes: int | None = None) -> CostResult:
    """Count one view of a registered variant on the meta device (no real compute).

    ``frames``, ``size`` and ``num_classes`` default to the registry entry's values.
    """
    return count_spec(get_variant(variant_id), frames, size, convention, num_classes)
