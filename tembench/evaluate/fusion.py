"""View fusion: per-view logits (videos, views, classes) -> one score vector per video.

=========  ==========================================================================================
``prob``   mean over views of softmax (sigmoid for multi-label) -- mmaction ``average_clips='prob'``,
           VideoMAE, ATM
``score``  mean over views of raw logits -- TSM/TAM ``test_models.py``; also EMIM/UniFormer's sum of
           logits (same ranking)
``sum``    sum over views of softmax (sigmoid) -- ILA, PySlowFast ``ENSEMBLE_METHOD: sum``
``max``    per-class maximum over views of softmax (sigmoid) -- PySlowFast Charades
=========  ==========================================================================================

Computed in float64 so that fusing stored logits later (``tembench metrics``) gives the same numbers.
"""
from __future__ import annotations

import numpy as np

from tembench.errors import UsageError

FUSIONS = ("prob", "score", "sum", "max")


def activation(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    if multilabel:
        return 1.0 / (1.0 + np.exp(-x))
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def fuse(logits: np.ndarray, method: str = "prob", multilabel: bool = False) -> np.ndarray:
    """(N, V, K) per-view logits -> (N, K) fused scores."""
    if method not in FUSIONS:
        raise UsageError(f"unknown fusion {method!r}; one of {', '.join(FUSIONS)}")
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3:
        raise ValueError(f"expected (videos, views, classes) logits, got shape {logits.shape}")
    if method == "score":
        return logits.mean(axis=1)
    act = activation(logits, multilabel)
    if method == "prob":
        return act.mean(axis=1)
    if method == "sum":
        return act.sum(axis=1)
    return act.max(axis=1)
