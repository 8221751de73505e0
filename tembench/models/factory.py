"""Networks of one's own: a model that a user's factory builds (the registry's ``arch = "python"``, or an
import path on the command line: ``tembench profile my_pkg.models:build_net``).

A factory is any callable, named by an import path ``package.module:callable``. tembench calls it with
the entry's ``kwargs``, plus the frame count as the keyword ``frames_arg`` (default ``frames``) and the
number of classes as ``classes_arg`` (default ``num_classes``) when those are not ``""``; it must return
a ``torch.nn.Module``. For counting, tembench calls it on the meta device (no weights are allocated).

What the model takes is declared by ``layout``: ``BCTHW`` (a clip tensor (batch, channels, frames,
height, width), as tembench's own models) or ``BTCHW`` (e.g. Hugging Face video models'
``pixel_values``), or by ``example_input``, an import path of a callable ``(batch, frames, size) ->
(args, kwargs)`` for models that take more than one tensor.

>>> spec = adhoc_spec("my_pkg.models:build_net", kwargs={"depth": 50}, layout="BTCHW")
>>> model = build(spec, frames=8, num_classes=10)
>>> args, kwargs = example_inputs(spec, batch=1, frames=8, size=224)
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

import torch
import torch.nn as nn

from tembench.errors import UsageError
from tembench.registry import IMPORT_PATH_RE, LAYOUTS, VariantSpec


def resolve(path: str, what: str = "factory") -> Callable:
    """The object an import path ``package.module:attribute`` names, or a one-line :class:`UsageError`."""
    if not IMPORT_PATH_RE.match(path or ""):
        raise UsageError(f"{what} {path!r} is not an import path 'package.module:callable'")
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 -- ModuleNotFoundError, or the module raising on import
        raise UsageError(f"{what} {path}: cannot import {module_name!r} ({type(e).__name__}: {e}); is its package "
                         "installed or on PYTHONPATH?") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{what} {path}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UsageError(f"{what} {path} is a {type(obj).__name__}, not a callable")
    return obj


def _accepts(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def adhoc_spec(path: str, kwargs: dict | None = None, layout: str = "BCTHW", frames: int = 8, input_size: int = 224,
               classes: int = 400) -> VariantSpec:
    """A spec for a factory named on the command line (no registry entry): frames and classes are passed
    as ``frames`` and ``num_classes`` when the factory takes those keywords."""
    fn = resolve(path)
    if layout not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise UsageError(f"--kwargs must be a JSON object of the factory's keyword arguments, got {kwargs!r}")
    return VariantSpec(id=path, arch="python", backbone="", temporal=None, options={}, classes=classes, frames=frames,
                       input_size=input_size, paper="", factory=path, kwargs=dict(kwargs or {}),
                       frames_arg="frames" if _accepts(fn, "frames") else "",
                       classes_arg="num_classes" if _accepts(fn, "num_classes") else "", layout=layout)


def build(spec: VariantSpec, frames: int, num_classes: int) -> nn.Module:
    """Call the spec's factory; a one-line :class:`UsageError` naming the variant when it raises or does not
    return a module."""
    if spec.missing:
        raise UsageError(f"{spec.id} needs {', '.join(spec.missing)}, which is not installed: {spec.install_hint}")
    fn = resolve(spec.factory)
    kwargs = dict(spec.kwargs)
    if spec.frames_arg:
        kwargs[spec.frames_arg] = frames
    if spec.classes_arg:
        kwargs[spec.classes_arg] = num_classes
    try:
        model = fn(**kwargs)
    except Exception as e:  # noqa: BLE001
        raise UsageError(f"{spec.id}: the factory {spec.factory}(**{kwargs}) raised {type(e).__name__}: "
                         f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}; check its kwargs "
                         "(and frames_arg / classes_arg)") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"{spec.id}: the factory {spec.factory} returned a {type(model).__name__}, not a "
                         "torch.nn.Module")
    return model


def clip_tensor(layout: str, batch: int, frames: int, size: int) -> torch.Tensor:
    """A random clip batch in ``layout`` on the current default device (``with torch.device(...)``)."""
    if layout == "BTCHW":
        return torch.randn(batch, frames, 3, size, size)
    return torch.randn(batch, 3, frames, size, size)


def example_inputs(spec: VariantSpec, batch: int, frames: int, size: int) -> tuple[tuple, dict]:
    """What the variant's forward is called with, as (args, kwargs), made on the current default device."""
    if spec.is_python and spec.example_input:
        fn = spec.example_input if callable(spec.example_input) else resolve(spec.example_input, "example_input")
        out = fn(batch, frames, size)
        if isinstance(out, torch.Tensor):
            return (out,), {}
        if isinstance(out, dict):
            return (), out
        if (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], (tuple, list))
                and isinstance(out[1], dict)):
            return tuple(out[0]), dict(out[1])
        raise UsageError(f"{spec.id}: example_input {spec.example_input} must return (args, kwargs), a tensor or "
                         f"a dict of keyword tensors, got {type(out).__name__}")
    return (clip_tensor(spec.layout if spec.is_python else "BCTHW", batch, frames, size),), {}
