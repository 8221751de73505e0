"""Accuracy metrics on fused per-video scores (NumPy; scikit-learn is only used by the tests).

Definitions (fractions in [0, 1]; records store percentages):

* **top-k accuracy** -- a video counts when its label is among the k highest-scoring classes.
  **Tie rule:** classes are ranked by score, ties broken by the *lower class index first* (a stable
  descending sort, the same class ``argmax`` picks for top-1). A tie with a lower-index class can push
  the label out of the top k. (scikit-learn's ``top_k_accuracy_score`` ranks ties the other way,
  higher index first; on scores without ties both agree.)
* **mean class accuracy** -- per-class recall (correct top-1 / videos of that class) averaged over the
  classes **present in the ground truth** (scikit-learn's ``balanced_accuracy_score``; mmaction averages
  over classes present in ground truth *or* predictions, which differs on subsets).
* **per-class accuracy** and the **confusion matrix** (rows = true class, columns = top-1 prediction).
* **mAP** (multi-label) -- per-class average precision ``sum_n (R_n - R_{n-1}) P_n`` over distinct score
  thresholds (tied scores form one threshold, so the order of tied videos does not matter), averaged over
  the classes **with at least one positive video**; classes without positives are excluded and counted.
  This is scikit-learn's ``average_precision_score`` and PySlowFast's ``get_map``.
"""
from __future__ import annotations

import numpy as np

TIE_RULE = "ties ranked by lower class index first (stable descending sort; top-1 = argmax)"
MEAN_CLASS_RULE = "mean of per-class recall over classes present in the ground truth"
MAP_RULE = ("per-class AP over distinct score thresholds (sklearn average_precision_score), "
            "averaged over classes with at least one positive; classes without positives excluded")


def ranking(scores: np.ndarray) -> np.ndarray:
    """(N, K) scores -> (N, K) class indices, best first, ties by lower index first."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), axis=1, kind="stable")


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    scores, labels = np.asarray(scores), np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    top = ranking(scores)[:, :min(k, scores.shape[1])]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(scores: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    scores, labels = np.asarray(scores), np.asarray(labels)
    k = num_classes or scores.shape[1]
    pred = ranking(scores)[:, 0] if len(labels) else np.zeros(0, dtype=int)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def per_class_accuracy(scores: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy per class with NaN for classes without videos, number of videos per class)."""
    cm = confusion_matrix(scores, labels, num_classes)
    counts = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(counts > 0, np.diag(cm) / np.maximum(counts, 1), np.nan)
    return acc, counts


def mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    acc, counts = per_class_accuracy(scores, labels)
    present = counts > 0
    return float(np.mean(acc[present])) if present.any() else float("nan")


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """AP of one class: scores (N,), binary targets (N,). NaN when there is no positive."""
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets).astype(bool)
    n_pos = targets.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], targets[order]
    # the last position of each run of equal scores is a threshold
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(t)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """(mAP over classes with positives, per-class AP with NaN for classes without positives)."""
    scores, targets = np.asarray(scores), np.asarray(targets)
    aps = np.array([average_precision(scores[:, c], targets[:, c]) for c in range(scores.shape[1])])
    valid = ~np.isnan(aps)
    return (float(np.mean(aps[valid])) if valid.any() else float("nan")), aps


def multi_hot(labels: list, num_classes: int) -> np.ndarray:
    out = np.zeros((len(labels), num_classes), dtype=np.int8)
    for i, ls in enumerate(labels):
        out[i, list(ls)] = 1
    return out


def compute(scores: np.ndarray, labels, multilabel: bool = False, classes: list[str] | None = None) -> dict:
    """All metrics of one evaluation, in percent, with the rules that define them."""
    scores = np.asarray(scores)
    n, k = scores.shape if scores.ndim == 2 else (0, len(classes or []))
    if multilabel:
        targets = np.asarray(labels) if not isinstance(labels, list) else multi_hot(labels, k)
        m, aps = mean_average_precision(scores, targets) if n else (float("nan"), np.full(k, np.nan))
        return {
            "map": 100 * m,
            "classes_without_positives": int(np.isnan(aps).sum()),
            "per_class": [{"class": classes[c] if classes else c, "positives": int(targets[:, c].sum()) if n else 0,
                           "ap": None if np.isnan(aps[c]) else 100 * float(aps[c])} for c in range(k)],
            "metric_rules": {"map": MAP_RULE},
        }
    labels = np.asarray(labels, dtype=np.int64)
    acc, counts = per_class_accuracy(scores, labels, k) if n else (np.full(k, np.nan), np.zeros(k, int))
    return {
        "top1": 100 * top_k_accuracy(scores, labels, 1),
        "top5": 100 * top_k_accuracy(scores, labels, 5),
        "mean_class_acc": 100 * mean_class_accuracy(scores, labels) if n else float("nan"),
        "per_class": [{"class": classes[c] if classes else c, "videos": int(counts[c]),
                       "acc": None if np.isnan(acc[c]) else 100 * float(acc[c])} for c in range(k)],
        "metric_rules": {"topk_ties": TIE_RULE, "mean_class_acc": MEAN_CLASS_RULE},
    }
