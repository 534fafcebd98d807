"""When each assertion outcome first showed up in a timeline, read while the timeline runs.

The SDKs (composer's and the official ones) write an assertion's first pass and first
failure per process, so the moment a line appears in a process's SDK file is, within one
poll, the moment that outcome first happened in that process. The runner polls the
timeline's SDK files and timestamps new assertion lines; the guided search inserts faults
just after such moments (a crash right after "snapshot started"). Imports nothing of
composer; knows only the record shape.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

__all__ = ["Hit", "HitWatcher"]

#: Seconds between two looks at the SDK files: cheap (a stat per file), fine enough to
#: place a fault inside a window of a few hundred milliseconds.
POLL_SECONDS = 0.05


@dataclasses.dataclass(frozen=True)
class Hit:
    """An assertion outcome seen for the first time in one process's output."""

    #: seconds since the watcher's time origin
    at: float
    id: str
    passed: bool
    #: the SDK file's name without .jsonl: "kv-1-service-1", "0003-parallel_driver_put"
    source: str


class HitWatcher:
    """Tails ``sdk_dir/*.jsonl`` and keeps the first hit of each (id, outcome, file)."""

    def __init__(self, sdk_dir: Path, origin: float) -> None:
        self.sdk_dir = sdk_dir
        self.origin = origin
        self.hits: list[Hit] = []
        self._offsets: dict[Path, int] = {}
        self._seen: set[tuple[str, bool, str]] = set()

    def poll(self) -> None:
        """Read what every SDK file gained since the last poll."""
        now = time.monotonic() - self.origin
        for path in sorted(self.sdk_dir.glob("*.jsonl")):
            offset = self._offsets.get(path, 0)
            try:
                if path.stat().st_size <= offset:
                    continue
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1  # a half-written line waits for the next poll
            self._offsets[path] = offset + end
            for line in data[:end].splitlines():
                self._take(line, path.stem, now)

    def _take(self, line: bytes, source: str, now: float) -> None:
        try:
            inner = json.loads(line).get("antithesis_assert")
        except (ValueError, AttributeError, RecursionError):
            return
        if not isinstance(inner, dict) or inner.get("hit") is False:
            return
        key = inner.get("id") or inner.get("message")
        if not isinstance(key, str):
            return
        passed = bool(inner.get("condition"))
        if (key, passed, source) not in self._seen:
            self._seen.add((key, passed, source))
            self.hits.append(Hit(round(now, 3), key, passed, source))

    async def watch(self) -> None:
        """Poll until cancelled."""
        while True:
            self.poll()
            await asyncio.sleep(POLL_SECONDS)
