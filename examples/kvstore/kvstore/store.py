"""The replicated log behind kvstore: durability, replication, catch-up, the planted bug.

State is an append-only log of ``{"seq", "key", "value"}`` entries (JSON lines in
``<data>/kv.log``) plus the map it implies. The primary numbers entries 1, 2, 3, ...;
a replica's log is always a prefix of the primary's, because the primary writes an
entry to its own file before it sends it anywhere.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from collections import Counter
import urllib.error
import urllib.request
from typing import Any

import composer_sdk as sdk

Entry = dict[str, Any]

GROUP_COMMIT_DELAY = 1.0  # seconds a group-committed write waits in memory (the bug window)
REPLICATE_TIMEOUT = 0.3  # a replica slower than this is skipped and caught up later
CATCH_UP_INTERVAL = 0.3  # how often the primary compares replicas' logs with its own
CATCH_UP_BATCH = 500


class Unavailable(Exception):
    """A peer did not answer in time (down, paused or unreachable)."""


def call(address: str, method: str, path: str, body: Any = None, timeout: float = 1.0) -> Any:
    """Send one JSON request to a peer and return the decoded JSON answer (any status)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{address}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read() or b"null")
    except (OSError, http.client.HTTPException, ValueError) as error:
        # refused, reset, timed out, or the peer died mid-answer
        raise Unavailable(f"{method} {address}{path}: {error}") from error


def log(message: str) -> None:
    """One line on stderr, which composer keeps per process."""
    print(f"kvstore {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class Log:
    """An append-only JSON-lines file; each append is one ``write`` on an O_APPEND fd.

    One ``write`` of a small buffer either lands in the page cache or not, so a SIGKILL
    can at worst leave a torn last line (never acknowledged); loading drops it.
    """

    def __init__(self, path: str) -> None:
        self.entries: list[Entry] = self._load(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @staticmethod
    def _load(path: str) -> list[Entry]:
        try:
            with open(path, "rb") as file:
                raw = file.read()
        except FileNotFoundError:
            return []
        entries: list[Entry] = []
        good = 0
        for line in raw.splitlines(keepends=True):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("torn last line")
                entries.append(json.loads(line))
            except ValueError:
                break
            good += len(line)
        if good < len(raw):
            os.truncate(path, good)
        return entries

    def append(self, entries: list[Entry]) -> None:
        """Make ``entries`` survive a process crash (flushed to the OS; no fsync needed)."""
        os.write(self._fd, "".join(json.dumps(e) + "\n" for e in entries).encode())
        self.entries.extend(entries)


class Store:
    """One node's view: the log, the map, and (on the primary) replication to the others."""

    def __init__(self, me: str, peers: list[str], data_dir: str, bug: bool) -> None:
        self.me = me
        self.primary = peers[0]
        self.is_primary = me == self.primary
        self.replicas = [p for p in peers[1:] if p != me]
        self.bug = bug
        self.log = Log(os.path.join(data_dir, "kv.log"))
        self.data: dict[str, str] = {e["key"]: e["value"] for e in self.log.entries}
        self._commit = threading.Lock()  # orders appends to the log and replication
        self._state = threading.Lock()  # guards data and the fields below
        self._in_flight: Counter[str] = Counter()  # writer -> writes being handled
        self._pending: list[tuple[str, str]] = []
        self._flush_timer: threading.Timer | None = None
        self._closing = False
        self._lagging: set[str] = set()  # replicas skipped by writes until caught up
        if self.is_primary:
            sdk.sometimes(bool(self.log.entries),
                          "The primary restarted with writes recovered from its data file",
                          {"entries": len(self.log.entries)})
            threading.Thread(target=self._catch_up_forever, daemon=True).start()

    @property
    def seq(self) -> int:
        return len(self.log.entries)

    def get(self, key: str) -> str | None:
        with self._state:
            return self.data.get(key)

    def dump(self) -> dict[str, str]:
        with self._state:
            return dict(self.data)

    # -- writes (primary) --------------------------------------------------------------

    def put(self, key: str, value: str, writer: str) -> dict[str, Any]:
        """Acknowledge a write once it is durable here and sent to every healthy replica.

        THE PLANTED BUG: with ``bug`` on, a write arriving while a write of *another*
        writer is still in flight is acknowledged at once from memory ("group commit");
        ``flush_pending`` makes it durable and replicates it GROUP_COMMIT_DELAY later. A
        SIGKILL of the primary in between loses acknowledged writes. Only other writers
        count, so one writer whose earlier request is still queued (it timed out while
        the primary was paused) cannot trigger it alone.
        """
        with self._state:
            concurrent = any(w != writer for w in self._in_flight)
            self._in_flight[writer] += 1
        sdk.sometimes(concurrent, "Writes of two writers were in flight on the primary at once",
                      {"key": key, "writer": writer})
        try:
            answer = self._group_commit(key, value) if concurrent and self.bug else None
            return {**(answer or self._commit_now(key, value)), "concurrent": concurrent}
        finally:
            with self._state:
                self._in_flight[writer] -= 1
                if not self._in_flight[writer]:
                    del self._in_flight[writer]

    def _commit_now(self, key: str, value: str) -> dict[str, Any]:
        with self._commit:
            entry = {"seq": self.seq + 1, "key": key, "value": value}
            self.log.append([entry])
            with self._state:
                self.data[key] = value
            replicated = self._replicate([entry])
        return {"ok": True, "seq": entry["seq"], "mode": "sync", "replicas": replicated,
                "of": len(self.replicas)}

    def _group_commit(self, key: str, value: str) -> dict[str, Any] | None:
        with self._state:
            if self._closing:  # shutting down: commit synchronously instead
                return None
            self.data[key] = value
            self._pending.append((key, value))
            if self._flush_timer is None:
                self._flush_timer = threading.Timer(GROUP_COMMIT_DELAY, self.flush_pending)
                self._flush_timer.daemon = True
                self._flush_timer.start()
        return {"ok": True, "seq": None, "mode": "group", "replicas": None,
                "of": len(self.replicas)}

    def close(self) -> None:
        """Clean shutdown (SIGTERM): stop acknowledging from memory, write what is pending.

        Replication is left to catch-up after the restart, so shutdown stays quick.
        """
        with self._state:
            self._closing = True
        self.flush_pending(replicate=False)

    def flush_pending(self, replicate: bool = True) -> None:
        """Make group-committed writes durable and replicate them (timer, close)."""
        with self._commit:
            with self._state:
                batch, self._pending, self._flush_timer = self._pending, [], None
            if not batch:
                return
            entries = [{"seq": self.seq + i, "key": k, "value": v}
                       for i, (k, v) in enumerate(batch, 1)]
            self.log.append(entries)
            if replicate:
                self._replicate(entries)

    def _replicate(self, entries: list[Entry]) -> int:
        """Send fresh entries to each healthy replica (caller holds _commit); count the acks.

        A replica that is slow, down or missing earlier entries is marked lagging and
        left to the catch-up thread, so a dead replica costs one short timeout, not one
        per write.
        """
        with self._state:
            targets = [r for r in self.replicas if r not in self._lagging]
        acked = 0
        for replica in targets:
            try:
                answer = call(replica, "POST", "/replicate", {"entries": entries},
                              REPLICATE_TIMEOUT)
                ok = answer.get("seq") == entries[-1]["seq"]
            except Unavailable:
                ok = False
            if ok:
                acked += 1
            else:
                with self._state:
                    self._lagging.add(replica)
        return acked

    # -- catch-up (primary) ------------------------------------------------------------

    def _catch_up_forever(self) -> None:
        while True:
            time.sleep(CATCH_UP_INTERVAL)
            for replica in self.replicas:
                try:
                    self._catch_up(replica)
                except Unavailable:
                    with self._state:
                        self._lagging.add(replica)
                except Exception as error:  # keep catching up whatever one answer was
                    log(f"catch-up of {replica} failed: {error!r}")

    def _catch_up(self, replica: str) -> None:
        """Send ``replica`` whatever it lacks; mark it healthy once it has everything."""
        their_seq = call(replica, "GET", "/health", timeout=0.5)["seq"]
        sent = 0
        while True:
            with self._commit:
                if their_seq > self.seq:
                    sdk.unreachable("A replica is ahead of the primary", {
                        "replica": replica, "replica_seq": their_seq, "primary_seq": self.seq})
                    return
                missing = self.log.entries[their_seq:their_seq + CATCH_UP_BATCH]
                if not missing:  # up to date while no write can slip in: sync it again
                    with self._state:
                        was_lagging = replica in self._lagging
                        self._lagging.discard(replica)
                    break
            answer = call(replica, "POST", "/replicate", {"entries": missing}, timeout=1.0)
            their_seq = answer["seq"]
            sent += answer.get("applied", 0)  # not duplicates a racing write already sent
        if sent:
            sdk.reachable("A lagging replica was caught up by the primary",
                          {"replica": replica, "entries": sent})
            log(f"caught up {replica} with {sent} entries")
        elif was_lagging:
            log(f"{replica} is healthy again")

    # -- replication (replica) ---------------------------------------------------------

    def apply(self, entries: list[Entry]) -> dict[str, Any]:
        """Append the entries this replica lacks, in order; refuse a gap (``ok`` false)."""
        with self._commit:
            fresh = [e for e in entries if e["seq"] > self.seq]
            if any(e["seq"] != self.seq + i for i, e in enumerate(fresh, 1)):
                return {"ok": False, "seq": self.seq, "applied": 0}
            if fresh:
                self.log.append(fresh)
                with self._state:
                    self.data.update((e["key"], e["value"]) for e in fresh)
            return {"ok": True, "seq": self.seq, "applied": len(fresh)}
