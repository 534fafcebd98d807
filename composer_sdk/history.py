"""Record what a client saw, for composer's checkers (a Jepsen history).

    from composer_sdk import history
    op = history.invoke("write", key="k", value=3)
    ...call the system...
    op.ok()            # it took effect; op.ok(value) for what a read returned
    op.fail()          # it certainly did not take effect
    op.info("timeout") # it may or may not have (an invocation never completed counts so)

Each record is ``send_event("composer_op", {...})``, as any official Antithesis SDK
can write it too. Each thread of each driver process is one history *process*; after an
``info`` it takes a new process id (Jepsen's crashed client: what it left pending may
still take effect, so the same process must not look as if it went on). Times are
``time.time_ns()`` of this machine: keep the drivers of one history on one machine.
Imports the standard library only; never ``composer``.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any, Optional

from .lifecycle import send_event

__all__ = ["invoke", "Op", "RECORD"]

#: The event name history records are written under.
RECORD = "composer_op"
_local = threading.local()
_numbers = itertools.count(1)


def _process() -> str:
    """This thread's process id: node, pid and a number drawn anew after an ``info``."""
    if getattr(_local, "process", None) is None:
        node = os.environ.get("COMPOSER_NODE", "local")
        _local.process = f"{node}/{os.getpid()}/{next(_numbers)}"
    return _local.process


def _emit(process: str, kind: str, f: str, key: Any, value: Any,
          error: Optional[str] = None) -> None:
    record = {"process": process, "type": kind, "f": f, "key": key, "value": value,
              "time": time.time_ns()}
    if error is not None:
        record["error"] = str(error)
    send_event(RECORD, record)


class Op:
    """One invoked operation; complete it exactly once with ``ok``, ``fail`` or ``info``
    (completing it again does nothing)."""

    def __init__(self, f: str, key: Any = None, value: Any = None) -> None:
        self.f, self.key, self.value = f, key, value
        self.process = _process()
        self.done = False
        _emit(self.process, "invoke", f, key, value)

    def _complete(self, kind: str, value: Any, error: Optional[str]) -> None:
        if self.done:
            return
        self.done = True
        _emit(self.process, kind, self.f, self.key, value, error)

    def ok(self, value: Any = None) -> None:
        """It took effect; ``value`` is what it returned (a read's value)."""
        self._complete("ok", value, None)

    def fail(self, error: Optional[str] = None) -> None:
        """It certainly did not take effect (the system said so)."""
        self._complete("fail", None, error)

    def info(self, error: Optional[str] = None) -> None:
        """It may or may not have taken effect (a timeout, a lost connection)."""
        self._complete("info", None, error)
        _local.process = None  # this client is now a crashed process: take a new id

    def __enter__(self) -> "Op":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        """Leaving the block without a completion, by an exception, is ``info``."""
        if not self.done:
            self.info(f"{kind.__name__}: {exc}" if kind is not None else "no completion")
        return False


def invoke(f: str, key: Any = None, value: Any = None) -> Op:
    """Record that this client invokes ``f`` (``read``, ``write``, ``cas``, ``add``, ...)
    on ``key`` with ``value``; return the operation to complete."""
    return Op(f, key, value)
