"""VariantSpec -> nn.Module.

Each host (the registry's ``arch``) is one module (``resnet_video``, ``clip_video``, ``uniformer_video``)
that exposes ``HOST`` (its name), ``BACKBONES``, ``OPTIONS`` (its own options, as
:class:`~tembench.models.protocol.Option`), ``option_defaults(temporal)``, ``input_problem(backbone, size)``
and ``build(backbone, temporal, options, frames, num_classes)``. The temporal modules a host can take are
the protocol's catalogue (:mod:`tembench.models.protocol`), looked up by (host, name), and so are their
options. Every model takes a clip tensor (batch, channels, frames, height, width) and returns logits
(batch, classes).
"""
from __future__ import annotations

import importlib
from dataclasses import replace
from types import ModuleType
from typing import Any

import torch.nn as nn

from tembench.errors import UsageError
from tembench.models import protocol
from tembench.registry import VariantSpec, get_variant

ARCHS = {
    "resnet": "tembench.models.resnet_video",
    "clip_vit": "tembench.models.clip_video",
    "uniformer": "tembench.models.uniformer_video",
}


def arch_module(arch: str) -> ModuleType:
    if arch not in ARCHS:
        raise KeyError(f"unknown arch {arch!r}; one of {', '.join(ARCHS)}")
    return importlib.import_module(ARCHS[arch])


def option_problem(default: Any, value: Any, choices: tuple | None) -> str | None:
    """Why ``value`` cannot be given to an option whose default is ``default`` (None when it can): the
    same kind of value as the default (a bool, an integer, a number, a list; a string default takes any
    kind), and one of ``choices`` (for a list, each element) when the option has them. A temporal module's
    options declare their types themselves (:meth:`tembench.models.protocol.Option.problem`)."""
    if isinstance(default, str):
        kinds = (str, bool, int, float, list, dict)
        return protocol.Option(default, type=kinds, choices=choices).problem(value)
    return protocol.Option(default, choices=choices).problem(value)


def check_variant(spec: VariantSpec, fail) -> None:
    """The registry check of what only the models know: the arch, backbone and temporal module exist
    and every option is one the module (or the host) takes, with a value it accepts (``fail(key,
    problem)`` otherwise). Install it with ``registry().check([check_variant])``."""
    if spec.is_ensemble or spec.missing:  # a variant whose packages are not installed is checked when used
        return
    if spec.is_python:
        from tembench.models.factory import resolve

        for key in ("factory", "example_input"):
            if getattr(spec, key):
                try:
                    resolve(getattr(spec, key), key)
                except UsageError as e:
                    fail(key, str(e))
        return
    try:
        module = arch_module(spec.arch)
    except KeyError as e:
        fail("arch", f"{e.args[0]}, or python (a network of one's own, with factory = \"package.module:callable\")")
    if spec.backbone not in module.BACKBONES:
        fail("backbone", f"unknown backbone {spec.backbone!r} for arch {spec.arch!r}; "
                         f"one of {', '.join(module.BACKBONES)}")
    try:
        table = protocol.option_table(module.HOST, module.OPTIONS, spec.temporal)
    except KeyError as e:
        fail("temporal", str(e.args[0]))
    except ValueError as e:  # a spec that does not fit its host (bad host_defaults, a shadowed option)
        fail("temporal", str(e))
    owner = spec.temporal or "the plain backbone"
    for key, value in spec.options.items():
        if key not in table:
            fail(f"options.{key}", f"not an option of {owner}; known: {', '.join(table) or 'none'}")
        problem = table[key].problem(value)
        if problem:
            fail(f"options.{key}", f"{problem} (option of {owner})")


def baseline_spec(spec: VariantSpec) -> VariantSpec:
    """The same backbone with no temporal module: the baseline of ``temporal_gflops``.

    The host's own options (e.g. UniFormer's ``stem_stride``) keep their effective values (given, or
    defaulted by the temporal module: EMIM's stride-1 stem). A network of one's own names its baseline
    variant (``baseline``); one that gives its temporal modules as globs has none (its share is read
    off the modules themselves)."""
    if spec.is_python:
        if not spec.baseline:
            raise UsageError(f"{spec.id} names no baseline variant (its temporal modules are globs)")
        return get_variant(spec.baseline)
    module = arch_module(spec.arch)
    effective = {**module.option_defaults(spec.temporal), **spec.options}
    options = {k: effective[k] for k in module.OPTIONS if k in effective}
    return replace(spec, temporal=None, options=options, claims=())


def check_frames(frames) -> int:
    if isinstance(frames, bool) or not isinstance(frames, int) or frames <= 0:
        raise UsageError(f"frames must be a positive integer, got {frames!r}")
    return frames


def check_input(spec: VariantSpec, frames: int | None = None, size: int | None = None) -> None:
    """A one-line :class:`UsageError` when a clip of ``frames`` x ``size`` x ``size`` cannot go through the
    variant's network (checked before anything is built or measured)."""
    size = spec.input_size if size is None else size
    if spec.is_ensemble:
        for m in spec.members:
            check_input(get_variant(m.variant), m.frames, size)
        return
    if spec.is_python:
        return
    problem = arch_module(spec.arch).input_problem(spec.backbone, size)
    if problem:
        raise UsageError(f"{spec.id}: {problem}")


def build_from_spec(spec: VariantSpec, frames: int | None = None, num_classes: int | None = None,
                    temporal: bool = True) -> nn.Module:
    if spec.is_ensemble:
        raise UsageError(f"{spec.id} is an ensemble of {', '.join(m.variant for m in spec.members)}; "
                         "build its members instead")
    frames = check_frames(spec.frames if frames is None else frames)
    classes = spec.classes if num_classes is None else num_classes
    if isinstance(classes, bool) or not isinstance(classes, int) or classes <= 0:
        raise UsageError(f"num_classes must be a positive integer, got {classes!r}")
    if not temporal:
        spec = baseline_spec(spec)
    if spec.is_python:
        from tembench.models.factory import build

        return build(spec, frames, classes)
    return arch_module(spec.arch).build(spec.backbone, spec.temporal, dict(spec.options), frames, classes)


def build_model(variant: str | VariantSpec, frames: int | None = None, num_classes: int | None = None) -> nn.Module:
    """Build a registered variant, e.g. ``build_model("tam/tanet-r50", frames=16)``.

    The model takes (batch, 3, frames, height, width) and returns (batch, classes). Build it under
    ``with torch.device("meta"):`` to get its structure without allocating weights.
    """
    spec = get_variant(variant) if isinstance(variant, str) else variant
    return build_from_spec(spec, frames, num_classes)
