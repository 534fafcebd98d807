"""What the sync service holds: per-state counters with barriers, and topics with their
history, in memory and bounded.

Testground's semantics (its sync-service ``barrier.go`` and ``pubsub.go``):
``signal_entry`` adds one to a state's counter and returns the new value (the first
caller gets 1); a barrier on a state returns once its counter is at or above the target
(at once if it already is, or the target is 0); ``publish`` appends to a topic and
returns the message's 1-based position; a subscriber gets every message of the topic
from the first, in order, then each new one. Keys are plain strings: clients scope them
(``run:<TEST_RUN>:plan:...:states:<name>``), so ``end_scope`` can release every wait of
a timeline that ended, with an error, and forget its keys. A topic holds at most
``max_messages`` messages and ``max_bytes`` of payload: past that, publishing is an
error that says so, instead of memory growing without end. Imports nothing of composer.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["SyncError", "SyncState"]


class SyncError(Exception):
    """A request the service refuses or cannot complete (the message goes to the client)."""


@dataclasses.dataclass
class _Topic:
    messages: list[Any] = dataclasses.field(default_factory=list)
    size: int = 0
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    ended: str | None = None


class SyncState:
    """Counters, barriers and topics of one service (one asyncio loop)."""

    def __init__(self, max_messages: int = 100_000, max_bytes: int = 64 << 20) -> None:
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self._counts: collections.Counter[str] = collections.Counter()
        #: state -> barriers waiting on it: (target, future)
        self._barriers: dict[str, list[tuple[int, asyncio.Future]]] = {}
        self._topics: dict[str, _Topic] = {}

    # -- states ----------------------------------------------------------------------

    def signal_entry(self, state: str) -> int:
        self._counts[state] += 1
        count = self._counts[state]
        for target, future in self._barriers.get(state, []):
            if target <= count and not future.done():
                future.set_result(None)  # its barrier() takes it off the list
        return count

    async def barrier(self, state: str, target: int) -> None:
        if target <= self._counts[state]:
            return
        future = asyncio.get_running_loop().create_future()
        self._barriers.setdefault(state, []).append((target, future))
        try:
            await future
        finally:
            waiting = [w for w in self._barriers.get(state, []) if w[1] is not future]
            if waiting:
                self._barriers[state] = waiting
            else:
                self._barriers.pop(state, None)

    # -- topics ----------------------------------------------------------------------

    def publish(self, topic: str, payload: Any) -> int:
        box = self._topics.setdefault(topic, _Topic())
        if box.ended:
            raise SyncError(box.ended)
        size = len(json.dumps(payload, separators=(",", ":")))
        if len(box.messages) >= self.max_messages or box.size + size > self.max_bytes:
            raise SyncError(f"topic {topic!r} is full ({len(box.messages)} messages, "
                            f"{box.size} bytes; at most {self.max_messages} and "
                            f"{self.max_bytes}): publish less, or to more topics")
        box.messages.append(payload)
        box.size += size
        box.changed.set()
        box.changed = asyncio.Event()
        return len(box.messages)

    async def subscribe(self, topic: str) -> AsyncIterator[Any]:
        """Every message of ``topic`` from the first, then each new one, until the
        topic's scope ends (``SyncError``)."""
        box = self._topics.setdefault(topic, _Topic())
        seen = 0
        while True:
            while seen < len(box.messages):
                seen += 1
                yield box.messages[seen - 1]
            if box.ended:
                raise SyncError(box.ended)
            await box.changed.wait()

    # -- scopes ----------------------------------------------------------------------

    def end_scope(self, prefix: str, reason: str) -> int:
        """Release every barrier and subscription on keys starting with ``prefix`` with
        ``reason`` as their error, and forget those keys; return how many waits ended."""
        ended = 0
        for state in [s for s in self._barriers if s.startswith(prefix)]:
            for _, future in self._barriers.pop(state):
                if not future.done():
                    future.set_exception(SyncError(reason))
                    ended += 1
        for state in [s for s in self._counts if s.startswith(prefix)]:
            del self._counts[state]
        for topic in [t for t in self._topics if t.startswith(prefix)]:
            box = self._topics.pop(topic)
            box.ended = reason
            box.changed.set()
        return ended

    def keys(self) -> int:
        """How many states and topics are held (for tests and leaks)."""
        return len(self._counts) + len(self._barriers) + len(self._topics)
