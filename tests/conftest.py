import os

import pytest
import torch

torch.set_num_threads(1)  # tiny forwards; avoids oversubscription on the 2-core machine


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """Run records go to a temporary directory."""
    d = tmp_path / "runs"
    monkeypatch.setenv("TEMBENCH_RUNS", str(d))
    return d


def resnet_variants():
    from tembench.registry import registry

    return [v for v in registry().select() if v.arch == "resnet"]
