"""Cost of a variant or of any video network: multiply-adds and parameters, counted on the meta device.

>>> r = count("tsn/tsn-r50", frames=8, size=224, num_classes=1000)
>>> r.macs
32892100608
>>> count(my_model, frames=8, size=224, layout="BTCHW", temporal=["*.shift"]).temporal_macs
"""
from __future__ import annotations

import fnmatch
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import torch

from tembench.cost.conventions import CONVENTIONS, Convention, get_convention
from tembench.cost.counter import OpCounts, count_ops
from tembench.errors import UsageError
from tembench.registry import IMPORT_PATH_RE, VariantSpec, get_variant

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


@lru_cache(maxsize=256)
def _count_python_cached(key: str, frames: int, size: int, classes: int) -> OpCounts:
    from tembench.models.factory import build, example_inputs
    from tembench.models.meta import meta_build

    spec = VariantSpec(**json.loads(key))
    with meta_build():
        model = build(spec, frames, classes)
        args, kwargs = example_inputs(spec, 1, frames, size)
    return _count_model(spec.id, model, args, kwargs)


def _count_model(name: str, model, args: tuple, kwargs: dict, tensors: dict | None = None) -> OpCounts:
    try:
        return count_ops(model, args, kwargs, tensors)
    except Exception as e:  # noqa: BLE001 -- a forward that fails on meta, or an input it does not take
        text = str(e).strip().splitlines()
        raise UsageError(f"{name}: its forward failed on the meta device ({type(e).__name__}: "
                         f"{text[0] if text else ''}); check the input layout (--layout BCTHW or BTCHW, or an "
                         "example_input callable) or run with --debug") from None


def _python_key(spec: VariantSpec) -> str:
    fields = ("id", "arch", "backbone", "temporal", "options", "classes", "frames", "input_size", "paper", "factory",
              "kwargs", "frames_arg", "classes_arg", "layout", "example_input")
    return json.dumps({f: getattr(spec, f) for f in fields}, sort_keys=True, default=str)


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
        if spec.is_python or spec.is_ensemble:
            return _raw_counts(spec, frames, size, classes)
    if spec.is_python:
        return _count_python_cached(_python_key(spec), frames, size, classes)
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
    if temporal_baseline and spec.temporal_globs:
        result.temporal_macs, result.temporal_params = temporal_share(result, counts, spec.temporal_globs)
    elif temporal_baseline and spec.temporal is not None:
        base = _raw_counts(spec, frames, size, classes, temporal=False)
        result.temporal_macs = result.macs - _convention_total(base, conv)
        result.temporal_params = result.params - base.params
    elif temporal_baseline:
        result.temporal_macs, result.temporal_params = 0, 0
    return result


def _matches(name: str, globs) -> bool:
    """Whether module ``name`` or one of the modules that contain it matches a glob."""
    parts = name.split(".") if name else []
    return any(fnmatch.fnmatchcase(".".join(parts[:i]), g) for i in range(1, len(parts) + 1) for g in globs)


def temporal_share(result: CostResult, counts: OpCounts, globs) -> tuple[int, int]:
    """(multiply-adds, params) of the modules that the module-name globs match, and of their children."""
    macs = sum(n for module, n in result.by_module.items() if _matches(module, globs))
    params = sum(n for name, n in counts.param_numel.items() if _matches(name.rpartition(".")[0], globs))
    return macs, params


def count(model: "str | torch.nn.Module | Callable[[], torch.nn.Module]", frames: int | None = None,
          size: int | None = None, convention: str = "fvcore", num_classes: int | None = None, *,
          layout: str = "BCTHW", example_input: "Callable[[int, int, int], tuple[tuple, dict]] | None" = None,
          temporal: list[str] | tuple[str, ...] | None = None, name: str | None = None) -> CostResult:
    """Count one view (batch 1) on the meta device: no weights are allocated and nothing real is computed.

    ``model`` is

    * a variant id (``"tam/tanet-r50"``): ``frames``, ``size`` and ``num_classes`` default to its entry;
    * an import path of a factory (``"my_pkg.models:build_net"``, see :mod:`tembench.models.factory`);
    * a zero-argument callable that builds an ``nn.Module`` (called on the meta device);
    * an ``nn.Module`` on any device: counted through its parameters' shapes (meta copies stand in for
      them during the forward; its own tensors are not touched, nor its train/eval mode).

    For a module or callable, the input is a random clip in ``layout`` (``"BCTHW"``, tembench's own, or
    ``"BTCHW"``, e.g. Hugging Face's ``pixel_values``), or ``example_input(batch, frames, size)`` returning
    ``(args, kwargs)``; ``frames`` defaults to 8 and ``size`` to 224. ``temporal``: module-name globs
    (``["*.tsm"]``) whose multiply-adds and params are reported as ``temporal_macs`` /
    ``temporal_params``. The same :class:`CostResult` as for a variant (per module, per operator,
    uncounted operators, every convention).
    """
    import torch.nn as nn

    if isinstance(model, str) and not IMPORT_PATH_RE.match(model):
        return count_spec(get_variant(model), frames, size, convention, num_classes)
    conv = get_convention(convention)
    frames = _check_positive("frames", 8 if frames is None else frames)
    size = _check_positive("input size", 224 if size is None else size)
    if isinstance(model, str):
        from tembench.models.factory import adhoc_spec

        spec = adhoc_spec(model, layout=layout)
        return count_spec(spec if not temporal else _with_globs(spec, temporal), frames, size, convention,
                          num_classes or spec.classes)
    inputs = _inputs_maker(layout, example_input)
    label = name or getattr(model, "__qualname__", None) or type(model).__name__
    if isinstance(model, nn.Module):
        with torch.device("meta"):
            args, kwargs = inputs(frames, size)
        # meta stand-ins of the same shape, strides and requires_grad (matmul decomposes by the latter)
        tensors = {n: torch.empty_like(t, device="meta").requires_grad_(t.requires_grad) for n, t in
                   list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False))}
        counts = _count_model(label, model, args, kwargs, tensors)
    elif callable(model):
        from tembench.models.meta import meta_build

        with meta_build():
            try:
                built = model()
            except Exception as e:  # noqa: BLE001
                raise UsageError(f"{label}: building the model raised {type(e).__name__}: {e}") from None
            if not isinstance(built, nn.Module):
                raise UsageError(f"{label} returned a {type(built).__name__}, not a torch.nn.Module")
            args, kwargs = inputs(frames, size)
        counts = _count_model(label, built, args, kwargs)
    else:
        raise UsageError(f"count() takes a variant id, an import path 'package.module:callable', an nn.Module or a "
                         f"callable that builds one, got {type(model).__name__}")
    by_module, by_op, by_cat = _summarise(counts, conv)
    result = CostResult(
        variant=label, frames=frames, input_size=size, classes=num_classes or 0, convention=conv.name,
        macs=_convention_total(counts, conv), params=counts.params, by_module=by_module, by_operator=by_op,
        by_category=by_cat, uncounted=dict(counts.uncounted),
        all_conventions={n: _convention_total(counts, c) for n, c in CONVENTIONS.items()},
    )
    if temporal:
        result.temporal_macs, result.temporal_params = temporal_share(result, counts, temporal)
    return result


def _with_globs(spec: VariantSpec, globs) -> VariantSpec:
    from dataclasses import replace

    return replace(spec, temporal=", ".join(globs), temporal_globs=tuple(globs))


def _inputs_maker(layout: str, example_input) -> Callable[[int, int], tuple[tuple, dict]]:
    from tembench.models.factory import clip_tensor
    from tembench.registry import LAYOUTS

    if example_input is None:
        if layout not in LAYOUTS:
            raise UsageError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        return lambda frames, size: ((clip_tensor(layout, 1, frames, size),), {})

    def make(frames: int, size: int) -> tuple[tuple, dict]:
        out: Any = example_input(1, frames, size)
        if isinstance(out, torch.Tensor):
            return (out,), {}
        if isinstance(out, dict):
            return (), out
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
            return tuple(out[0]), dict(out[1])
        raise UsageError(f"example_input must return (args, kwargs), a tensor or a dict, got {type(out).__name__}")

    return make
