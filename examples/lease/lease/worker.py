"""A worker: takes batches of work and posts each item to the store's board, under a lease.

``POST /work {"batch", "count"}`` queues ``count`` items (``<batch>-0``, ``<batch>-1``,
...) and answers at once (503 if that would queue more than MAX_BACKLOG); a background
thread posts them one by one. To post an item the worker takes the lease from the lock
service (every change to the board happens under it) and appends the item. Every
TIDY_EVERY-th item on the board, the worker that posted it also tidies the board,
still under the same lease: it reads the whole list, spends TIDY_WORK sorting it and
dropping duplicates, and writes it back. That tidy pass is the critical section: a
read-modify-write that nothing may change in between.

Once the store has acknowledged an item, the worker writes it to its journal
(``<data>/acked.jsonl``, served at ``GET /acked``): every journaled item must stay on
the board forever. An item that fails (a node down or paused) is dropped, not retried.

THE PLANTED BUG (on unless ``LEASE_BUG=0``): the lease is checked only before the
tidy's read, and the requests carry no fencing token. A worker paused (SIGSTOP) inside
the tidy for longer than the lease resumes and finishes it: the other workers took the
lease and posted items meanwhile (while it was paused, or in the rest of its pass when
the lock service was paused with it), and its write puts back a list built from its
stale read: their acknowledged items are gone. Fixed: every request carries the
lease's token and the store refuses a token older than one it has seen (``store.py``),
so the stale write fails and the board keeps every posted item.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from typing import Any

import composer_sdk as sdk

from .common import Unavailable, call, log

TIDY_EVERY = 20  # the board is tidied each time it reaches a multiple of this length
TIDY_WORK = 0.5  # seconds between the tidy's read and its write ...
TIDY_STEPS = 10  # ... spent in this many steps
POST_PACE = 0.02  # seconds between two items of a worker
MAX_BACKLOG = 30  # items a worker queues at most; more work is refused until it catches up
ACQUIRE_WAIT = 3.0  # seconds an item waits for the lease before it is dropped
SAFETY_MARGIN = 0.1  # seconds of a lease a worker never counts on
CALL_TIMEOUT = 1.0


class Failed(Exception):
    """The item did not reach the board, or may not have: it must not be journaled."""


class Worker:
    """One worker node: its queue, its journal, and how it reaches the lock and the store."""

    def __init__(self, name: str, lock: str, store: str, data_dir: str, bug: bool) -> None:
        self.name = name
        self.lock = lock
        self.store = store
        self.bug = bug
        self.journal = os.path.join(data_dir, "acked.jsonl")
        self._state = threading.Lock()
        self._queue: collections.deque[str] = collections.deque()
        self._posting: str | None = None
        threading.Thread(target=self._post_forever, daemon=True).start()

    # -- the queue -----------------------------------------------------------------

    def work(self, body: Any) -> tuple[int, Any]:
        """Queue a batch of items; answer at once (posting happens in the background).

        The backlog is bounded so that a worker catches up within seconds of a heal.
        """
        items = [f"{body['batch']}-{i}" for i in range(int(body["count"]))]
        with self._state:
            if len(self._queue) + len(items) > MAX_BACKLOG:
                return 503, {"error": "too much work queued", "backlog": len(self._queue)}
            self._queue.extend(items)
            return 200, {"queued": len(items), "backlog": len(self._queue)}

    def _post_forever(self) -> None:
        while True:
            with self._state:
                item = self._posting = self._queue.popleft() if self._queue else None
            if item is None:
                time.sleep(POST_PACE)
                continue
            try:
                self._post(item)
                self._record(item)
            except Failed as error:
                log(f"{item} dropped: {error}")
            finally:
                with self._state:
                    self._posting = None
            time.sleep(POST_PACE)

    def _record(self, item: str) -> None:
        """Journal an acknowledged item: one write on an O_APPEND fd survives a SIGKILL."""
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(item) + "\n").encode())
        finally:
            os.close(fd)

    # -- posting under the lease ---------------------------------------------------

    def _post(self, item: str) -> None:
        owner = f"{self.name}/{item}"
        token, valid_until = self._acquire(owner, time.monotonic() + ACQUIRE_WAIT)
        fence = None if self.bug else token
        try:
            status, answer = self._store("/append", {"item": item, "token": fence})
            if status != 200:
                raise Failed(f"append refused: {answer}")
            if answer["length"] % TIDY_EVERY == 0:
                try:
                    self._tidy(token, fence, valid_until)
                except Failed as error:  # the item is on the board all the same
                    log(f"tidy after {item} failed: {error}")
        finally:
            self._release(owner, token)

    def _tidy(self, token: int, fence: int | None, valid_until: float) -> None:
        """Read the board, sort it and drop duplicates, write it back."""
        if time.monotonic() >= valid_until:  # the only check of the lease
            log(f"lease {token} ran out before the tidy; leaving it to a later item")
            return
        sdk.reachable("Worker entered the critical section", {"worker": self.name, "token": token})
        log(f"tidying the board under lease {token}")
        status, answer = self._store("/read", {"token": fence})
        if status != 200:
            raise Failed(f"tidy read refused: {answer}")
        items = sorted(set(answer["items"]))
        for _ in range(TIDY_STEPS):  # a slow pass over a big board, step by step: work
            time.sleep(TIDY_WORK / TIDY_STEPS)  # left when a pause ends is still to do
        status, answer = self._store("/write", {"items": items, "token": fence})
        late = time.monotonic() - valid_until
        if late > 0:
            log(f"tidy wrote {late:.2f}s after its lease {token} ran out: {status} {answer}")
        if status != 200:
            raise Failed(f"tidy write refused: {answer}")

    def _acquire(self, owner: str, deadline: float) -> tuple[int, float]:
        """Wait for the lease; return its token and when this worker stops trusting it."""
        while True:
            asked = time.monotonic()  # the lease runs from the grant, later than this
            try:
                status, answer = call(self.lock, "POST", "/acquire", {"owner": owner},
                                      CALL_TIMEOUT)
            except Unavailable:
                answer = {"granted": False, "retry_in": 0.2}
            if answer.get("granted"):
                return answer["token"], asked + answer["ttl"] - SAFETY_MARGIN
            if time.monotonic() > deadline:
                raise Failed(f"no lease within {ACQUIRE_WAIT:g}s")
            time.sleep(min(0.1, max(0.02, float(answer.get("retry_in", 0.1)))))

    def _release(self, owner: str, token: int) -> None:
        try:
            call(self.lock, "POST", "/release", {"owner": owner, "token": token},
                 CALL_TIMEOUT)
        except Unavailable:
            pass  # the lease runs out on its own

    def _store(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            return call(self.store, "POST", path, body, CALL_TIMEOUT)
        except Unavailable as error:
            raise Failed(str(error)) from error

    # -- for the checks ------------------------------------------------------------

    def acked(self, body: Any) -> tuple[int, Any]:
        """Every item this worker journaled as acknowledged by the store."""
        try:
            with open(self.journal) as file:
                lines = file.read().splitlines()
        except FileNotFoundError:
            lines = []
        items = []
        for line in lines:
            try:
                items.append(json.loads(line))
            except ValueError:  # a torn last line: that item was never journaled
                pass
        return 200, {"worker": self.name, "acked": items}

    def health(self, body: Any) -> tuple[int, Any]:
        with self._state:
            return 200, {"role": "worker", "name": self.name, "backlog": len(self._queue),
                         "busy": self._posting is not None, "bug": self.bug}

    def routes(self) -> dict:
        return {("POST", "/work"): self.work, ("GET", "/acked"): self.acked,
                ("GET", "/health"): self.health}
