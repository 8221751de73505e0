"""Run records: one self-describing JSON file per run, written atomically and incrementally.

>>> import tembench.results
>>> df = tembench.results.load()                       # every record of every run, incomplete runs included
>>> df = tembench.results.load(patterns=["tsm"], status="ok", last=3)
"""
from tembench.results.query import records, run_rows, select_runs
from tembench.results.store import RunWriter, default_runs_dir, load, load_run, load_runs

__all__ = ["RunWriter", "default_runs_dir", "load", "load_run", "load_runs", "records", "run_rows", "select_runs"]
