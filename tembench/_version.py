"""The package version (one place; `tembench.__version__` and the environment fingerprint read it)."""
__version__ = "0.1.0"
