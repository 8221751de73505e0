"""Building models on the meta device: one mechanism for every host and temporal module.

Cost counting builds each model on PyTorch's *meta* device (shapes, no storage) and never reads a
weight. Weight initialisers on meta tensors compute nothing, yet several of them (``normal_``,
``trunc_normal_``, ...) run slow Python decompositions there. :class:`meta_build` makes them no-ops,
so model code initialises its weights unconditionally (no ``if not w.is_meta`` guards, no special
layer classes) and still builds fast on meta.

* ``with meta_build(): model = make()`` builds ``make()`` on the meta device, initialisers skipped;
* :func:`building` is what the hosts wrap their construction in: :class:`meta_build` when the
  default device is already meta (``with torch.device("meta"): build_model(...)``), nothing
  otherwise, so a real build initialises exactly as before.

Forward-time shape-only paths (``if x.is_meta: return x.new_empty(...)``) are a different matter: they
keep counting fast for work that is free under every convention, and stay where they are.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Iterator

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

__all__ = ["meta_build", "building", "default_device_is_meta"]


class meta_build(TorchFunctionMode):
    """Build a model on the meta device without running its weight initialisers.

    In-place initialisers on meta tensors (normal_, uniform_, fill_, ...) go through slow Python
    decompositions and compute nothing; inside this mode they return their tensor unchanged.
    ``with meta_build(): model = make()`` gives the same structure and parameter shapes.
    """

    _INPLACE = {
        torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.fill_, torch.Tensor.zero_,
        torch.Tensor.erfinv_, torch.Tensor.mul_, torch.Tensor.add_, torch.Tensor.clamp_,
        torch.Tensor.copy_, torch.Tensor.div_, torch.Tensor.sub_, torch.Tensor.exponential_,
    }

    def __enter__(self):
        self._device = torch.device("meta")
        self._device.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        return self._device.__exit__(*exc)

    _INIT = {getattr(nn.init, n) for n in (
        "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
        "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_")
        if hasattr(nn.init, n)}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if (func in self._INPLACE or func in self._INIT) and args and getattr(args[0], "is_meta", False):
            return args[0]
        return func(*args, **(kwargs or {}))


def default_device_is_meta() -> bool:
    """Whether new tensors land on the meta device (inside ``torch.device("meta")`` or :class:`meta_build`)."""
    return torch.empty(()).is_meta


@contextmanager
def building() -> Iterator[None]:
    """The context every host builds its model in: :class:`meta_build` on the meta device, else nothing."""
    with meta_build() if default_device_is_meta() else nullcontext():
        yield
