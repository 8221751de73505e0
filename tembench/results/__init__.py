"""Run records: one self-describing JSON file per run, written atomically and incrementally, each record
checked against the schema of its run's kind (:mod:`tembench.results.schema`).

>>> import tembench.results
>>> df = tembench.results.load()                       # every record of every run, incomplete runs included
>>> df = tembench.results.load(patterns=["tsm"], status="ok", last=3)
"""
from tembench.results.query import load, records, run_rows, select_runs
from tembench.results.store import RunWriter, default_runs_dir, load_run, load_runs, write_run

__all__ = ["RunWriter", "default_runs_dir", "load", "load_run", "load_runs", "records", "run_rows", "select_runs",
           "write_run"]
