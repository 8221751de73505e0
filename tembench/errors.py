"""The library's error types. The CLI turns each into one line on stderr and an exit code."""


class TembenchError(Exception):
    """Base class: a problem the user can act on. The message says what is wrong and what to do."""

    exit_code = 1


class UsageError(TembenchError):
    """Bad input on the command line or to the API: unknown variant, bad frame count, ..."""

    exit_code = 2


class RegistryError(TembenchError):
    """A registry file that cannot be read or does not validate; names the file and the key."""

    exit_code = 2


class BaselineError(TembenchError):
    """A regression gate with nothing to compare against: no, an unreadable or an empty baseline.

    A gate fails closed: ``tembench check`` exits non-zero and says how to write the baselines."""

    exit_code = 2


class ResultsWriteError(TembenchError):
    """A run file could not be written (disk full, permissions); names the path. What was measured
    before is kept in the file, and the run stops."""

    exit_code = 1


class RecordError(ResultsWriteError):
    """A record that does not conform to the schema of its run's kind, refused by the writer; the message
    names the kind, the field and what is wrong."""


def one_line(e: BaseException, limit: int = 300) -> str:
    """An exception as one line for a record or a message: ``Type: first line of its text``."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:limit]
