"""Metrics against scikit-learn on random inputs, the stated tie rule, and view fusion."""
import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")

from tembench.evaluate import metrics  # noqa: E402
from tembench.evaluate.fusion import fuse  # noqa: E402


@pytest.mark.parametrize("seed", range(5))
def test_topk_and_mean_class_accuracy_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, k = 200, 12
    scores = rng.normal(size=(n, k))
    labels = rng.integers(0, k - 2, size=n)  # two classes never occur in the ground truth
    for top in (1, 5):
        ref = sklearn_metrics.top_k_accuracy_score(labels, scores, k=top, labels=np.arange(k))
        assert metrics.top_k_accuracy(scores, labels, top) == pytest.approx(ref, abs=1e-12)
    pred = scores.argmax(1)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = sklearn_metrics.balanced_accuracy_score(labels, pred)
    assert metrics.mean_class_accuracy(scores, labels) == pytest.approx(ref, abs=1e-12)
    cm = sklearn_metrics.confusion_matrix(labels, pred, labels=np.arange(k))
    assert (metrics.confusion_matrix(scores, labels) == cm).all()
    acc, counts = metrics.per_class_accuracy(scores, labels)
    assert np.isnan(acc[-2:]).all() and (counts == np.bincount(labels, minlength=k)).all()


@pytest.mark.parametrize("seed", range(5))
def test_map_equals_sklearn_average_precision(seed):
    rng = np.random.default_rng(seed)
    n, k = 120, 9
    targets = (rng.random((n, k)) < 0.2).astype(int)
    targets[:, 3] = 0  # a class without positives: excluded
    targets[5] = 0  # a video without labels: kept (all negatives)
    scores = rng.random((n, k))
    scores[:, 1] = np.round(scores[:, 1], 1)  # many ties in one class
    m, aps = metrics.mean_average_precision(scores, targets)
    keep = targets.sum(0) > 0
    ref = sklearn_metrics.average_precision_score(targets[:, keep], scores[:, keep], average=None)
    assert np.allclose(aps[keep], ref, atol=1e-12) and np.isnan(aps[3])
    assert m == pytest.approx(float(np.mean(ref)), abs=1e-12)


def test_average_precision_worked_example_is_tie_order_invariant():
    # research doc §5.3: labels [1,0,1,0], scores [0.9,0.5,0.5,0.1] -> 0.8333 whatever the tie order
    assert metrics.average_precision([0.9, 0.5, 0.5, 0.1], [1, 0, 1, 0]) == pytest.approx(5 / 6)
    assert metrics.average_precision([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0]) == pytest.approx(5 / 6)


def test_tie_rule_lower_class_index_first():
    scores = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    labels = np.array([0, 1])
    # label 0 wins the tie (lower index), label 1 does not; sklearn ranks ties the other way
    assert metrics.top_k_accuracy(scores, labels, 1) == 0.5
    assert metrics.ranking(scores)[0].tolist() == [0, 1, 2]
    assert metrics.top_k_accuracy(np.zeros((1, 8)), np.array([5]), 5) == 0.0  # indices 0-4 come first
    assert metrics.top_k_accuracy(np.zeros((1, 8)), np.array([4]), 5) == 1.0


def test_compute_reports_percentages_and_rules():
    scores = np.eye(4)[[0, 1, 2, 2]]
    out = metrics.compute(scores, np.array([0, 1, 2, 3]), classes=list("abcd"))
    assert out["top1"] == 75.0 and out["mean_class_acc"] == 75.0
    assert out["per_class"][3] == {"class": "d", "videos": 1, "acc": 0.0}
    assert "lower class index" in out["metric_rules"]["topk_ties"]
    ml = metrics.compute(np.array([[0.9, 0.1], [0.2, 0.8]]), [(0,), (0, 1)], multilabel=True)
    assert ml["map"] == pytest.approx(100.0) and ml["classes_without_positives"] == 0


def test_fusions():
    logits = np.array([[[2.0, 0.0], [0.0, 1.0]]])  # 1 video, 2 views, 2 classes
    sm = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert np.allclose(fuse(logits, "score"), [[1.0, 0.5]])
    assert np.allclose(fuse(logits, "prob"), sm.mean(1))
    assert np.allclose(fuse(logits, "sum"), sm.sum(1))
    assert np.allclose(fuse(logits, "max"), sm.max(1))
    sig = 1 / (1 + np.exp(-logits))
    assert np.allclose(fuse(logits, "max", multilabel=True), sig.max(1))
    # prob and score can disagree across views: softmax saturates, logits do not
    disagree = np.array([[[10.0, 0.0, 0.0], [-30.0, 1.0, 0.0]]])
    assert fuse(disagree, "score").argmax() == 1 and fuse(disagree, "prob").argmax() == 0
