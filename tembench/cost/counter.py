"""Operator-level cost counter that runs on the meta device.

Every operator of a forward pass is seen at the ATen dispatch level (below autograd, after the
composite ops have been decomposed) and priced with fvcore's per-operator rules, so no real compute
runs: shapes are all that is needed. One fused multiply-add counts as one (the unit papers call
"FLOPs" and fvcore calls "flop"; see :mod:`tembench.cost.conventions` for the other conventions).

A few torch-level functions decompose into ops that would be priced differently from how fvcore
prices the function itself; a :class:`~torch.overrides.TorchFunctionMode` marks them as *regions*
so that the ops inside take the region's category:

* ``F.scaled_dot_product_attention`` -> category ``sdpa`` (its two matmuls; fvcore counts 0);
* ``F.adaptive_avg_pool2d`` -> category ``pool`` (input numel, even when it lowers to ``mean``);
* ``torch.einsum`` -> category ``einsum`` (the bmm it lowers to, as fvcore's einsum_path does).

Each counted op is stored under (module path, op, category); conventions filter categories or
module paths and scale the sum. Ops that are neither counted nor known to be free are listed as
*uncounted* with their call counts, so nothing becomes zero silently.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


def _prod(shape) -> int:
    return math.prod(int(s) for s in shape)


# --------------------------------------------------------------------------------------------
# Formulas: one small function per operator, shapes in, multiply-adds out (fvcore's rules).
# --------------------------------------------------------------------------------------------

def conv_macs(x_shape, w_shape, out_shape, transposed: bool) -> int:
    """batch x prod(weight shape) x prod(output spatial) (input spatial when transposed); no bias."""
    spatial = (x_shape if transposed else out_shape)[2:]
    return int(x_shape[0]) * _prod(w_shape) * _prod(spatial)


def _conv(args, out) -> int:
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    return conv_macs(x.shape, w.shape, out.shape, transposed)


def _mm(args, out) -> int:
    a, b = args[0], args[1]
    return int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])


def _addmm(args, out) -> int:  # addmm(bias, a, b): bias add not counted
    return _mm(args[1:], out)


def _bmm(args, out) -> int:
    a, b = args[0], args[1]
    return int(a.shape[0]) * int(a.shape[1]) * int(a.shape[2]) * int(b.shape[2])


def _baddbmm(args, out) -> int:
    return _bmm(args[1:], out)


def _batch_norm_eval(args, out) -> int:
    """Inference batch norm: 2 per element with an affine weight, 1 without (fvcore)."""
    return _prod(args[0].shape) * (2 if args[1] is not None else 1)


def _batch_norm_any(args, out) -> int:
    """native_batch_norm / _native_batch_norm_legit: arg 5 is the training flag."""
    training = bool(args[5]) if len(args) > 5 else False
    if training:
        return _prod(args[0].shape) * (5 if args[1] is not None else 4)
    return _batch_norm_eval(args, out)


def _layer_norm(args, out) -> int:  # native_layer_norm(input, shape, weight, bias, eps)
    return _prod(args[0].shape) * (5 if args[2] is not None else 4)


def _group_norm(args, out) -> int:  # native_group_norm(input, weight, bias, N, C, HxW, group, eps)
    return _prod(args[0].shape) * (5 if args[1] is not None else 4)


def _upsample_nearest(args, out) -> int:
    return _prod(_first(out).shape)


def _upsample_bilinear(args, out) -> int:
    return 4 * _prod(_first(out).shape)


def _grid_sampler(args, out) -> int:  # fvcore: "assume bilinear", 4 per output element
    return 4 * _prod(_first(out).shape)


def _adaptive_avg_pool(args, out) -> int:  # fvcore: one per input element
    return _prod(args[0].shape)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


# op -> (category, formula)
FORMULAS: dict[Any, tuple[str, Callable[[tuple, Any], int]]] = {
    aten.convolution.default: ("conv", _conv),
    aten._convolution.default: ("conv", _conv),
    aten.convolution_overrideable.default: ("conv", _conv),
    aten.mm.default: ("mm", _mm),
    aten.addmm.default: ("mm", _addmm),
    aten.bmm.default: ("bmm", _bmm),
    aten.baddbmm.default: ("baddbmm", _baddbmm),
    aten._native_batch_norm_legit_no_training.default: ("norm", _batch_norm_eval),
    aten._native_batch_norm_legit.default: ("norm", _batch_norm_any),
    aten._native_batch_norm_legit.no_stats: ("norm", _batch_norm_any),
    aten.native_batch_norm.default: ("norm", _batch_norm_any),
    aten.native_layer_norm.default: ("norm", _layer_norm),
    aten.native_group_norm.default: ("norm", _group_norm),
    aten.upsample_nearest2d.default: ("upsample", _upsample_nearest),
    aten.upsample_nearest2d.vec: ("upsample", _upsample_nearest),
    aten.upsample_bilinear2d.default: ("upsample", _upsample_bilinear),
    aten.upsample_bilinear2d.vec: ("upsample", _upsample_bilinear),
    aten.grid_sampler_2d.default: ("grid_sample", _grid_sampler),
    aten._adaptive_avg_pool2d.default: ("pool", _adaptive_avg_pool),
}

# Ops inside a region that carry its cost (everything else inside the region is free).
_REGION_OPS: dict[str, dict[Any, Callable[[tuple, Any], int]]] = {
    "sdpa": {aten.bmm.default: _bmm, aten.mm.default: _mm, aten.baddbmm.default: _baddbmm},
    "einsum": {aten.bmm.default: _bmm, aten.mm.default: _mm},
    "pool": {aten.mean.dim: _adaptive_avg_pool, aten._adaptive_avg_pool2d.default: _adaptive_avg_pool},
}

# Fused attention kernels (CPU/CUDA SDPA backends): q (B, H, L, E), k (B, H, S, E), v (B, H, S, Ev).
def _sdpa_kernel(args, out) -> int:
    q, k, v = args[0], args[1], args[2]
    b, h, l, e = (int(s) for s in q.shape)
    s, ev = int(k.shape[-2]), int(v.shape[-1])
    return b * h * l * s * (e + ev)


for _name in (
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
):
    _op = getattr(aten, _name, None)
    if _op is not None:
        FORMULAS[_op.default] = ("sdpa", _sdpa_kernel)
        _REGION_OPS["sdpa"][_op.default] = _sdpa_kernel

# Zero-cost by convention (fvcore's ignored list, plus the views and bookkeeping ops that a
# dispatch-level trace shows). Anything else uncounted is reported.
FREE_OPS = {
    "relu", "relu_", "threshold", "dropout", "native_dropout", "clamp", "clamp_min", "clamp_max",
    "cat", "stack", "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand",
    "squeeze", "unsqueeze", "flatten", "unflatten", "contiguous", "clone", "copy_", "copy",
    "slice", "select", "index", "index_select", "narrow", "split", "split_with_sizes", "chunk",
    "unbind", "roll", "constant_pad_nd", "pad", "zeros", "zeros_like", "ones", "ones_like",
    "empty", "empty_like", "empty_strided", "new_zeros", "new_empty", "new_ones", "full",
    "fill_", "zero_", "detach", "alias", "lift_fresh", "as_strided", "unfold", "_to_copy",
    "to", "arange", "masked_fill", "masked_fill_", "scalar_tensor", "max", "_reshape_alias",
    "slice_scatter", "select_scatter", "repeat", "flip", "lift_fresh_copy", "sym_size",
    "sym_stride", "sym_numel", "sym_storage_offset", "resize_", "set_", "_has_compatible_shallow_copy_type",
}


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------

@dataclass
class OpCounts:
    """Raw counts of one forward: multiply-adds per (module path, op name, category)."""

    macs: Counter = field(default_factory=Counter)  # (module, op, category) -> int
    uncounted: Counter = field(default_factory=Counter)  # op name -> calls
    params: int = 0
    param_numel: dict = field(default_factory=dict)  # parameter name -> elements (for a module's share)

    def items(self):
        for (module, op, category), n in self.macs.items():
            yield module, op, category, n


def _op_name(func) -> str:
    return func._schema.name.split("::")[-1]


def _bn_shortcut(args, kwargs):
    """F.batch_norm(input, running_mean, running_var, weight, bias, training, ...) on meta.

    Batch norm keeps the shape, so its output is an empty tensor like the input; this skips the
    Python decomposition that meta batch norm otherwise runs (most of the counting time of a ResNet).
    Priced as aten.batch_norm by fvcore: 2 (1 without affine) per element in inference,
    5 (4) in training mode."""
    names = ("input", "running_mean", "running_var", "weight", "bias", "training")
    bound = dict(zip(names, args))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    x, weight, training = bound["input"], bound.get("weight"), bool(bound.get("training", False))
    if training:
        n = _prod(x.shape) * (5 if weight is not None else 4)
    else:
        n = _prod(x.shape) * (2 if weight is not None else 1)
    return torch.empty_like(x), ("batch_norm", "norm", n)


class _Regions(TorchFunctionMode):
    """Marks torch-level functions whose decomposition must be priced as the function, and
    short-cuts shape-preserving ops on meta tensors whose decomposition is slow."""

    _KINDS = {
        F.scaled_dot_product_attention: "sdpa",
        F.adaptive_avg_pool2d: "pool",
        torch.einsum: "einsum",
    }
    _SHORTCUTS = {F.batch_norm: _bn_shortcut}

    def __init__(self, modules: list[str], counts: "OpCounts"):
        super().__init__()
        self.stack: list[str] = []
        self.modules = modules
        self.counts = counts

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        shortcut = self._SHORTCUTS.get(func)
        if shortcut is not None and not self.stack and args and getattr(args[0], "is_meta", False):
            out, (op, category, n) = shortcut(args, kwargs)
            self.counts.macs[(self.modules[-1], op, category)] += n
            return out
        kind = self._KINDS.get(func)
        if kind is None:
            return func(*args, **kwargs)
        self.stack.append(kind)
        try:
            return func(*args, **kwargs)
        finally:
            self.stack.pop()


# Shape-only fast paths for meta tensors. PyTorch's meta kernels for elementwise ops, layer norm
# and matmuls run as Python reference code (most of the counting time of a transformer); these ops'
# output shapes are simple, so on meta tensors the counter makes the output directly.
def _unary(args, kwargs):
    return torch.empty_like(args[0])


def _binary(args, kwargs):
    a, b = args[0], args[1]
    if not isinstance(b, torch.Tensor):
        return torch.empty_like(a)
    if not isinstance(a, torch.Tensor):
        return torch.empty_like(b)
    shape = torch.broadcast_shapes(a.shape, b.shape)
    dtype = torch.result_type(a, b)
    if tuple(a.shape) == tuple(shape):
        return torch.empty_like(a, dtype=dtype)
    if tuple(b.shape) == tuple(shape):
        return torch.empty_like(b, dtype=dtype)
    return torch.empty(shape, dtype=dtype, device="meta")


def _layer_norm_out(args, kwargs):
    x, normalized = args[0], args[1]
    stat = tuple(x.shape[: x.dim() - len(normalized)]) + (1,) * len(normalized)
    return (torch.empty(x.shape, dtype=x.dtype, device="meta"), torch.empty(stat, dtype=x.dtype, device="meta"),
            torch.empty(stat, dtype=x.dtype, device="meta"))


def _mm_out(args, kwargs):
    a, b = args[-2], args[-1]
    return torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device="meta")


def _bmm_out(args, kwargs):
    a, b = args[-2], args[-1]
    return torch.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=a.dtype, device="meta")


_FAST: dict[Any, Callable] = {aten.native_layer_norm.default: _layer_norm_out, aten.mm.default: _mm_out,
                              aten.addmm.default: _mm_out, aten.bmm.default: _bmm_out,
                              aten.baddbmm.default: _bmm_out}
for _n in ("gelu", "relu", "sigmoid", "silu", "tanh", "neg", "exp", "log", "sqrt", "rsqrt", "abs",
           "hardtanh", "leaky_relu", "reciprocal", "log1p", "erf", "sin", "cos", "sign"):
    _FAST[getattr(aten, _n).default] = _unary
for _n in ("_softmax", "_log_softmax"):
    _FAST[getattr(aten, _n).default] = _unary
for _n in ("add", "sub", "mul", "div", "pow"):
    for _ov in ("Scalar", "Tensor_Scalar"):
        if hasattr(getattr(aten, _n), _ov):
            _FAST[getattr(getattr(aten, _n), _ov)] = _unary
for _n in ("add", "sub", "mul", "div", "maximum", "minimum"):
    _FAST[getattr(getattr(aten, _n), "Tensor" if hasattr(getattr(aten, _n), "Tensor") else "default")] = _binary


def _all_meta(args) -> bool:
    return all(a.is_meta for a in args if isinstance(a, torch.Tensor))


class _Counter(TorchDispatchMode):
    def __init__(self, regions: _Regions, modules: list[str], counts: OpCounts):
        super().__init__()
        self.regions = regions
        self.modules = modules
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        fast = _FAST.get(func)
        if fast is not None and not kwargs and _all_meta(args):
            out = fast(args, kwargs)
        else:
            out = func(*args, **(kwargs or {}))
        module = self.modules[-1]
        if self.regions.stack:
            kind = self.regions.stack[0]
            formula = _REGION_OPS[kind].get(func)
            if formula is not None:
                self.counts.macs[(module, _op_name(func), kind)] += formula(args, out)
            return out
        entry = FORMULAS.get(func)
        if entry is not None:
            category, formula = entry
            self.counts.macs[(module, _op_name(func), category)] += formula(args, out)
            return out
        name = _op_name(func)
        base = name.rstrip("_") if name.endswith("_") and not name.endswith("__") else name
        if name not in FREE_OPS and base not in FREE_OPS:
            self.counts.uncounted[name] += 1
        return out


def _track_modules(model: nn.Module, stack: list[str]):
    handles = []
    for name, module in model.named_modules():
        def pre(mod, inp, _name=name):
            stack.append(_name)

        def post(mod, inp, out):
            stack.pop()

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post, always_call=True))
    return handles


def __getattr__(name: str):
    """``meta_build`` lives in :mod:`tembench.models.meta` (models are built there); still importable from
    here, loaded on first use so that importing the counter does not import the models."""
    if name == "meta_build":
        from tembench.models.meta import meta_build

        return meta_build
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def count_params(model: nn.Module) -> int:
    """Number of parameters, shared parameters counted once."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def count_ops(model: nn.Module, inputs: torch.Tensor | tuple, kwargs: dict | None = None,
              tensors: dict[str, torch.Tensor] | None = None) -> OpCounts:
    """Run ``model`` once on ``inputs`` (and keyword ``kwargs``), normally meta tensors, and count every operator.

    ``tensors``: parameters and buffers to run with instead of the module's own, by name (meta tensors
    of the same shapes: a real module, on any device, is counted without computing anything on it,
    through ``torch.func.functional_call``). The model is in eval mode during the count (its mode is
    restored), gradients are off and PyTorch's fused multi-head-attention fast path is disabled so
    that its projections stay visible.
    """
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    kwargs = kwargs or {}
    counts = OpCounts(params=count_params(model))
    counts.param_numel = {name: p.numel() for name, p in model.named_parameters()}
    stack: list[str] = [""]
    was_training = model.training
    model.eval()
    handles = _track_modules(model, stack)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    every = list(inputs) + list(kwargs.values())
    device = next((t.device for t in every if isinstance(t, torch.Tensor)), torch.device("cpu"))
    try:
        regions = _Regions(stack, counts)
        with torch.no_grad(), torch.device(device), regions, _Counter(regions, stack, counts):
            if tensors is None:
                model(*inputs, **kwargs)
            else:
                torch.func.functional_call(model, tensors, inputs, kwargs, strict=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for h in handles:
            h.remove()
        model.train(was_training)
    return counts


def meta_input(shape) -> torch.Tensor:
    return torch.empty(tuple(shape), device="meta")

