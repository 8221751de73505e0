"""The registry is data: importing it, listing it and asking for help never import torch (or the models)."""
import subprocess
import sys

import pytest

PROBE = """
import sys
{body}
light = ("tembench.cost", "tembench.cost.conventions")  # the conventions are plain data
heavy = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "tembench.models", "tembench.cost."))
               and m not in light)
print("HEAVY", heavy[:5], file=sys.stderr)
"""
CLI = """
from tembench.cli import main
try:
    main({args!r})
except SystemExit as e:
    assert e.code == 0, e.code
"""


@pytest.mark.parametrize("body", [
    "import tembench.registry; tembench.registry.registry()",
    CLI.format(args=["list"]),
    CLI.format(args=["list", "tam", "--format", "json"]),
    CLI.format(args=["claims", "--help"]),
    CLI.format(args=["--help"]),
], ids=["import-registry", "list", "list-json", "claims-help", "help"])
def test_no_torch_is_imported(body):
    done = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stderr, done.stderr.splitlines()[-1]


def test_the_probe_sees_torch_when_it_is_imported():
    done = subprocess.run([sys.executable, "-c", PROBE.format(body="from tembench.cost import count_spec")], capture_output=True,
                          text=True)
    assert "'torch'" in done.stderr and "tembench.cost.counting" in done.stderr
