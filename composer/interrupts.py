"""Ctrl-C once stops an exploration; what it found is still saved and reported.

The first SIGINT (or SIGTERM, which the command line turns into one) interrupts the
search; while composer then saves replays and writes the report, further signals only
say that it is finishing, so three quick Ctrl-Cs do not lose the report. Imports nothing
of composer.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

__all__ = ["interrupts_deferred"]


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Once interrupted, finish saving and reporting: a second or third Ctrl-C (or
    SIGTERM) in the meantime only says so. A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def finishing(signum: int, frame: object) -> None:
        print("composer: stopping; saving the replays and the report first",
              file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, finishing) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
