"""Run records: one self-describing JSON file per run, written atomically and incrementally."""
from tembench.results.store import RunWriter, default_runs_dir, load, load_runs

__all__ = ["RunWriter", "default_runs_dir", "load", "load_runs"]
