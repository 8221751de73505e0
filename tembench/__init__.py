"""tembench: benchmark and profile temporal-modeling video networks.

Python API (every command's function is in :mod:`tembench.api`):

* :func:`build_model` -- a registered variant as a ``torch.nn.Module`` taking (B, C, T, H, W);
* :func:`count` -- FLOPs (multiply-adds, fvcore convention) and params on the meta device, of a variant,
  of any ``nn.Module`` (on any device, no real compute), of a callable that builds one, or of a factory's
  import path;
* :func:`profile_runtime` -- latency / memory of any ``nn.Module``;
* :func:`list_variants` -- the registry;
* :func:`profile` -- cost records for many variants and frame counts;
* :func:`claims` -- every published number beside the measured one.

>>> import tembench
>>> tembench.count("tam/tanet-r50", frames=8).macs / 1e9
>>> tembench.count(my_model, frames=16, layout="BTCHW", temporal=["*.shift"]).temporal_macs
"""
from tembench._version import __version__

__all__ = ["__version__", "build_model", "count", "profile_runtime", "list_variants", "profile", "claims"]


def __getattr__(name):  # lazy: `import tembench` must not import torch (fast --help)
    if name == "build_model":
        from tembench.models.build import build_model
        return build_model
    if name == "count":
        from tembench.cost import count
        return count
    if name in ("profile", "list_variants", "claims", "profile_runtime"):
        from tembench import api
        return getattr(api, name)
    raise AttributeError(f"module 'tembench' has no attribute {name!r}")
