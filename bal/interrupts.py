"""Ctrl-C that is never lost.

Python's default SIGINT handler raises ``KeyboardInterrupt`` in whatever code runs
at that moment; when that is a garbage-collection callback (JAX registers one) or
a ``__del__``, the exception is printed as "Exception ignored" and swallowed, and
the run goes on to its end as if nothing happened. :func:`catch_interrupts`
installs a handler that also remembers the interrupt, and long loops call
:func:`raise_if_interrupted` at their safe points (after each durable record), so
a swallowed Ctrl-C still stops the run at the next one (and its "Exception
ignored" traceback is not printed: the interrupt is not lost, only deferred).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

_pending = False


def _on_sigint(signum, frame):
    global _pending
    _pending = True
    raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether a Ctrl-C arrived under :func:`catch_interrupts`."""
    return _pending


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C arrived (even one swallowed elsewhere)."""
    if _pending:
        raise KeyboardInterrupt


@contextlib.contextmanager
def catch_interrupts():
    """Remember every SIGINT for the duration (main thread only; elsewhere a no-op)."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending = False
    previous, previous_hook = signal.signal(signal.SIGINT, _on_sigint), sys.unraisablehook

    def hook(unraisable):
        if not (_pending and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            previous_hook(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
