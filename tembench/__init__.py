"""tembench: benchmark and profile temporal-modeling video networks.

Python API:

* :func:`build_model` -- a registered variant as a ``torch.nn.Module`` taking (B, C, T, H, W);
* :func:`count` -- FLOPs (multiply-adds, fvcore convention) and params on the meta device;
* :func:`list_variants` -- the registry;
* :func:`profile` -- cost records for many variants and frame counts;
* :func:`claims` -- every published number beside the measured one.
"""
from tembench._version import __version__


def __getattr__(name):  # lazy: `import tembench` must not import torch (fast --help)
    if name == "build_model":
        from tembench.models.build import build_model
        return build_model
    if name == "count":
        from tembench.cost import count
        return count
    if name in ("profile", "list_variants", "claims"):
        from tembench import api
        return getattr(api, name)
    raise AttributeError(f"module 'tembench' has no attribute {name!r}")
