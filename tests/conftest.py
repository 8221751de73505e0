import os

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """Run records go to a temporary directory."""
    d = tmp_path / "runs"
    monkeypatch.setenv("TEMBENCH_RUNS", str(d))
    return d


def resnet_variants():
    from tembench.registry import registry

    return [v for v in registry().select() if v.arch == "resnet"]
