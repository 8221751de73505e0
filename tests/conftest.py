import os

import pytest
import torch

torch.set_num_threads(1)


def pytest_runtest_setup(item):
    """Tests marked ``serial`` measure wall-clock time or kill and launch processes on a timetable: a
    second pytest worker beside them would be the noise they must not see. The README's test command runs
    the rest on two workers (``pytest -n 2 -m "not serial"``), then these alone (``pytest -m serial``);
    a plain ``pytest`` runs everything in one process. In a parallel run such a test fails, saying so."""
    if item.get_closest_marker("serial") and hasattr(item.config, "workerinput"):  # a pytest-xdist worker
        pytest.fail('a serial test in a parallel run: add -m "not serial" to it and run these alone '
                    "with pytest -m serial", pytrace=False)


@pytest.fixture(autouse=True)
def one_thread():
    """Every test runs tiny CPU forwards on one intra-op thread (oversubscription on a busy 2-core
    machine makes them many times slower); a test that changes it gets it restored."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """Run records go to a temporary directory."""
    d = tmp_path / "runs"
    monkeypatch.setenv("TEMBENCH_RUNS", str(d))
    return d


def resnet_variants():
    from tembench.registry import registry

    return [v for v in registry().select() if v.arch == "resnet"]


def run_cli(capsys, *args):
    """Run the ``tembench`` CLI in-process: (exit code, stdout, stderr)."""
    from tembench.cli import main

    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def interrupt_on_call(monkeypatch, module, name: str, n: int = 3) -> None:
    """``module.name`` raises KeyboardInterrupt (Ctrl-C) on its ``n``-th call, and works before that."""
    real = getattr(module, name)
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(module, name, flaky)
