"""What one timeline run did, as it happens: the run log and composer's own assertions.

Every part of a run (setup, the schedule, the nemesis, the command watches) notes what
it did here, stamped with seconds since the run began; the log goes to ``run.json`` at
the end, and the built-in properties' records to ``composer.jsonl`` as they happen (a
crash mid-run keeps those). Imports nothing of composer: the pieces that write here are
handed its ``note``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["RunRecord", "OnEvent"]

OnEvent = Callable[[dict[str, Any]], None]


class RunRecord:
    """The run log of one timeline and its ``composer.jsonl``."""

    def __init__(self, directory: Path, on_event: OnEvent | None = None) -> None:
        self.directory = directory
        self.on_event = on_event
        #: monotonic time the run began: every ``t`` in the log counts from here
        self.t0 = time.monotonic()
        self.log: list[dict[str, Any]] = []
        self._records = open(directory / "composer.jsonl", "a")

    def now(self) -> float:
        """Seconds since the run began."""
        return time.monotonic() - self.t0

    def note(self, what: str, **fields: Any) -> None:
        """Log one thing that happened now (fields that are None are left out)."""
        entry = {"t": round(self.now(), 3), "what": what,
                 **{k: v for k, v in fields.items() if v is not None}}
        self.log.append(entry)
        if self.on_event:
            self.on_event(entry)

    def assertion(self, record: dict) -> None:
        """Write one built-in property's record to ``composer.jsonl`` at once."""
        self._records.write(json.dumps(record) + "\n")
        self._records.flush()

    def close(self, **run: Any) -> None:
        """Write ``run.json``: ``run``'s fields, then the log."""
        self._records.close()
        (self.directory / "run.json").write_text(json.dumps({**run, "log": self.log},
                                                            indent=2))
