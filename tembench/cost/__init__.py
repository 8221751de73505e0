"""Cost: multiply-adds and parameters counted on the meta device, under named conventions.

>>> from tembench.cost import count
>>> count("tsn/tsn-r50", frames=8, size=224, num_classes=1000).macs
32892100608

:mod:`~tembench.cost.counting` (``count``, ``count_spec``, ``CostResult``) needs torch and is imported
when first used; :mod:`~tembench.cost.conventions` does not, so the conventions can be listed (and a
registry's claims checked against them) without importing torch.
"""
from tembench.cost.conventions import CONVENTIONS

__all__ = ["count", "count_spec", "CostResult", "CONVENTIONS"]


def __getattr__(name):  # lazy: `import tembench.cost` must not import torch
    if name in ("count", "count_spec", "CostResult"):
        from tembench.cost import counting

        return getattr(counting, name)
    raise AttributeError(f"module 'tembench.cost' has no attribute {name!r}")
