"""Temporal modules, one file each; every docstring cites the paper section it implements."""
