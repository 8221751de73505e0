"""The README's set-up commands stay true: CI runs exactly the README's test command."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_starts_with_the_two_setup_commands():
    main_job, tests = readme_commands()[:2]
    assert main_job.endswith("tembench profile") and "torch==2.13.0" in main_job
    assert "'.[test,hf]'" in tests  # CI installs the hf extra (issue 17)
    # the parallel part leaves out exactly the tests that then run alone: together, the whole suite
    assert tests.endswith('&& pytest -n 2 -m "not serial" && pytest -m serial')


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = readme_commands()[1]
    assert test_cmd in ci
