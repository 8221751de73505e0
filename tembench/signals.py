"""Stopping a measuring command: SIGTERM acts as Ctrl-C, and a stop is never lost.

Inside :func:`sigterm_as_interrupt`, SIGTERM and Ctrl-C (SIGINT) raise ``KeyboardInterrupt`` where the
main thread is, as Python does for Ctrl-C, and the request is also remembered. The exception alone is not
enough: code that runs inside a measurement (a user's model with a bare ``except:``, a library that turns
every error into its own, a finalizer that Python runs when the signal arrives) can swallow it or turn it
into an ordinary error, and a sweep that only waits for ``KeyboardInterrupt`` would then go on measuring.
So the loops that measure case after case (:mod:`tembench.results.driver`, the evaluation's videos) call
:func:`raise_if_stopped` between cases, and treat an error raised while a stop is pending as the stop.

>>> with sigterm_as_interrupt():
...     for case in cases:
...         measure(case)
...         raise_if_stopped()  # KeyboardInterrupt here if a SIGTERM or Ctrl-C came and was swallowed
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

_requested = threading.Event()


def raise_if_stopped() -> None:
    """Raise ``KeyboardInterrupt`` if a stop is pending (its own exception may have been swallowed)."""
    if _requested.is_set():
        raise KeyboardInterrupt("stop requested (SIGTERM or Ctrl-C)")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM (and Ctrl-C) raise ``KeyboardInterrupt`` and are remembered for
    :func:`raise_if_stopped`; on leaving, the handlers before it come back and the request is forgotten
    (it has been acted on: the ``KeyboardInterrupt`` left the block). Off the main thread (where Python
    cannot set handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _requested.set()
        raise KeyboardInterrupt(f"signal {signum}")

    _requested.clear()
    previous_term = signal.signal(signal.SIGTERM, handler)
    # Ctrl-C too, unless someone installed their own handler (then theirs decides)
    previous_int = signal.getsignal(signal.SIGINT)
    own_int = previous_int is signal.default_int_handler
    if own_int:
        signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        _requested.clear()
        signal.signal(signal.SIGTERM, previous_term)
        if own_int:
            signal.signal(signal.SIGINT, previous_int)
