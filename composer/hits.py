"""When each assertion outcome first showed up in a timeline, read while the timeline runs.

The SDKs (composer's and the official ones) write an assertion's first pass and first
failure per process, so the moment a line appears in a process's SDK file is, within one
poll, the moment that outcome first happened in that process. The runner polls the
timeline's SDK files and timestamps new assertion lines; the guided search inserts faults
just after such moments (a crash right after "snapshot started"), and a fault with a
trigger waits here for its state to show (``HitWatcher.first``). Imports nothing of
composer; knows only the record shape.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from pathlib import Path

__all__ = ["Hit", "HitWatcher"]

#: Seconds between two looks at the SDK files: cheap (a stat per file), fine enough to
#: place a fault inside a window of a few hundred milliseconds.
POLL_SECONDS = 0.05
#: Seconds between two looks while a fault waits for its state: its delay after the
#: state is often 0 to 0.3 s, so it must see the state soon after it is written.
WAIT_POLL_SECONDS = 0.01
_SERVICE_FILE = re.compile(r"^(?P<node>.+)-service-\d+$")


@dataclasses.dataclass(frozen=True)
class Hit:
    """An assertion outcome seen for the first time in one process's output."""

    #: seconds since the watcher's time origin
    at: float
    id: str
    passed: bool
    #: the SDK file's name without .jsonl: "kv-1-service-1", "0003-parallel_driver_put"
    source: str

    @property
    def node(self) -> str | None:
        """The service node whose process reported it; None for a command's."""
        match = _SERVICE_FILE.match(self.source)
        return match.group("node") if match else None


class HitWatcher:
    """Tails ``sdk_dir/*.jsonl`` and keeps the first hit of each (id, outcome, file)."""

    def __init__(self, sdk_dir: Path, origin: float) -> None:
        self.sdk_dir = sdk_dir
        self.origin = origin
        self.hits: list[Hit] = []
        self._offsets: dict[Path, int] = {}
        self._seen: set[tuple[str, bool, str]] = set()
        self._polled_at = float("-inf")

    def poll(self) -> None:
        """Read what every SDK file gained since the last poll."""
        self._polled_at = time.monotonic()
        now = self._polled_at - self.origin
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

    async def first(self, id: str, passed: bool, node: str | None, since: float,
                    until: float) -> Hit | None:
        """Wait for the first hit of ``id`` with outcome ``passed`` (from ``node``'s
        services, or any process if None) stamped after ``since``; None if none comes
        before ``until`` (both in the watcher's time)."""
        while True:
            if time.monotonic() - self._polled_at >= WAIT_POLL_SECONDS:
                self.poll()  # several waiting faults share one look at the files
            for hit in self.hits:
                if (hit.id == id and hit.passed == passed and hit.at > since
                        and (node is None or hit.node == node)):
                    return hit
            if time.monotonic() - self.origin >= until:
                return None
            await asyncio.sleep(WAIT_POLL_SECONDS)

    async def watch(self) -> None:
        """Poll until cancelled."""
        while True:
            self.poll()
            await asyncio.sleep(POLL_SECONDS)
