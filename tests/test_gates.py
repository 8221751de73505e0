"""Regression gates: pure decisions on synthetic inputs, and injected regressions caught end to end."""
import random

import pytest
import torch

from tembench import gates


def test_cost_gate_is_exact_and_lists_changed_modules():
    base = [{"variant": "a/x", "frames": 8, "input_size": 224, "macs": 100, "params": 10,
             "modules": {"layer1.0.temporal": 5, "fc": 95}}]
    same = [dict(base[0])]
    assert [v.status for v in gates.cost_gate(base, same)] == ["pass", "pass"]
    more = [dict(base[0], macs=101, modules={"layer1.0.temporal": 6, "fc": 95})]
    (macs, params) = gates.cost_gate(base, more)
    assert macs.status == "regression" and macs.failed and "layer1.0.temporal +1" in macs.detail
    assert macs.changes[0]["module"] == "layer1.0.temporal" and params.status == "pass"
    assert gates.cost_gate(base, [])[0].status == "missing"


def test_latency_gate_needs_significance_and_size():
    rng = random.Random(0)
    base = [10 + rng.gauss(0, 0.1) for _ in range(30)]
    assert gates.latency_gate("k", base, [10 + rng.gauss(0, 0.1) for _ in range(30)], True).status == "pass"
    slow = [11 + rng.gauss(0, 0.1) for _ in range(30)]  # +10%: significant and above 5%
    assert gates.latency_gate("k", base, slow, True).status == "regression"
    tiny = [10.2 + rng.gauss(0, 0.1) for _ in range(30)]  # +2%: significant but below 5%
    assert gates.latency_gate("k", base, tiny, True).status == "pass"
    noisy = [10 * rng.choice([0.7, 1.0, 1.3]) for _ in range(30)]  # IQR/median ~0.3 -> threshold 90%
    assert gates.latency_gate("k", noisy, [x * 1.2 for x in noisy], True).status == "pass"
    nc = gates.latency_gate("k", base, slow, same_hardware=False)
    assert nc.status == "not comparable" and not nc.failed


def test_memory_and_accuracy_gates():
    assert gates.memory_gate("k", 100, 104).status == "pass"
    assert gates.memory_gate("k", 100, 106).status == "regression"
    fp = {"videos": 10}
    base = {"top1": 95.0, "correct": [True] * 95 + [False] * 5, "dataset_fingerprint": fp}
    worse = {"top1": 60.0, "correct": [True] * 60 + [False] * 40, "dataset_fingerprint": fp}
    same = {"top1": 94.0, "correct": [True] * 94 + [False] * 6, "dataset_fingerprint": fp}
    assert gates.accuracy_gate("k", base, worse).status == "regression"
    assert gates.accuracy_gate("k", base, same).status == "pass"
    other = dict(worse, dataset_fingerprint={"videos": 11})
    assert gates.accuracy_gate("k", base, other).status == "not comparable"


def test_output_formats():
    v = gates.cost_gate([{"variant": "a/x", "frames": 8, "input_size": 1, "macs": 2_000_000_000, "params": 3}],
                        [{"variant": "a/x", "frames": 8, "input_size": 1, "macs": 3_000_000_000, "params": 3}])
    md = gates.to_markdown(v)
    assert "| cost | `a/x@8x1` | macs |" in md and "regression" in md
    gh = gates.to_github_benchmark(v)
    assert {"name": "a/x@8x1 GFLOPs", "unit": "GFLOPs", "value": 3.0} in gh


def test_extra_convolution_in_tam_fails_the_cost_gate(monkeypatch):
    """Injected regression: an extra 1x1 convolution inside every TAM."""
    from tembench.check import cost_records
    from tembench.cost.counting import _count_cached
    from tembench.models.temporal import tam

    base = cost_records(["tam/tanet-r50"])
    real_init, real_forward = tam.TAM.__init__, tam.TAM.forward

    def init(self, channels, frames, **kw):
        real_init(self, channels, frames, **kw)
        self.extra = torch.nn.Conv2d(channels, channels, 1, bias=False)

    monkeypatch.setattr(tam.TAM, "__init__", init)
    monkeypatch.setattr(tam.TAM, "forward", lambda self, x: self.extra(real_forward(self, x)))
    _count_cached.cache_clear()
    try:
        current = cost_records(["tam/tanet-r50"])
    finally:
        _count_cached.cache_clear()
    macs, params = gates.cost_gate(base, current)
    assert macs.status == "regression" and params.status == "regression"
    assert any(".temporal" in c["module"] for c in macs.changes)
    assert "layer" in macs.detail and "temporal" in macs.detail


def test_sleep_in_forward_fails_the_latency_gate(monkeypatch):
    """Injected regression: a 20 ms sleep added to a small model's forward, same machine."""
    import time

    from tembench.runtime.timing import TimingConfig, time_fn

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 32, 32)
    cfg = TimingConfig(warmup_iters=2, warmup_s=0.05, min_reps=15, budget_s=1.0, min_run_s=0.3)

    def fwd():
        with torch.no_grad():
            return model(x)

    def slow():
        time.sleep(0.02)
        return fwd()

    base = time_fn(fwd, "cpu", cfg).samples_ms
    same = time_fn(fwd, "cpu", cfg).samples_ms
    cur = time_fn(slow, "cpu", cfg).samples_ms
    assert gates.latency_gate("m", base, cur, same_hardware=True).status == "regression"
    assert gates.latency_gate("m", base, cur, same_hardware=False).status == "not comparable"
