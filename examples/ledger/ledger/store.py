"""The ledger's durable state: a snapshot plus a write-ahead log, and the compaction.

On disk, in the data directory:

- ``wal.log``: one JSON line ``{"seq", "id", "payload"}`` per append, written with one
  ``write`` on an O_APPEND descriptor *before* the append is acknowledged. The page
  cache keeps it through a SIGKILL, so an acknowledged append is never lost to a crash
  of the process alone. It may still hold entries the snapshot already has: loading
  skips them.
- ``snapshot.json``: ``{"upto": S, "entries": [...]}``, every entry up to seq S.

A background compactor looks at the log every COMPACT_INTERVAL; once it has grown by
SNAPSHOT_EVERY appends since the last snapshot, it writes a new snapshot (a temporary
file, renamed into place) and then drops the entries it holds from the log, so a
restart reads one file and a short log instead of a log that grows forever.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from typing import Any

import composer_sdk as sdk

Entry = dict[str, Any]

# appends between two snapshots; LEDGER_SNAPSHOT_EVERY sets it (a smaller value opens
# the window sooner and more often, so a short run of the fixed twin still goes through
# many snapshots)
SNAPSHOT_EVERY = int(os.environ.get("LEDGER_SNAPSHOT_EVERY", "50"))
COMPACT_INTERVAL = 1.0  # seconds between two looks of the compactor at the log
SNAPSHOT_CHUNKS = 8  # the snapshot is written in this many pieces ...
SNAPSHOT_PACE = 0.025  # ... seconds apart (a slow disk): a snapshot takes about 0.2 s


def log(message: str) -> None:
    """One line on stderr, which composer keeps per process."""
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
    print(f"ledger {stamp} {message}", file=sys.stderr, flush=True)


def read_log(path: str) -> list[Entry]:
    """Every whole line of the log; a torn last line (never acknowledged) is cut off."""
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


class Ledger:
    """One node's ledger: entries in memory, made durable by the log and the snapshots."""

    def __init__(self, data_dir: str, bug: bool) -> None:
        self.bug = bug
        self.snapshot_path = os.path.join(data_dir, "snapshot.json")
        self.wal_path = os.path.join(data_dir, "wal.log")
        self._lock = threading.Lock()  # guards everything below, and the log file
        self.entries, self.snapshot_upto = self._load()
        self._wal = os.open(self.wal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._snapshotting: threading.Thread | None = None
        self._closing = False
        threading.Thread(target=self.compact_forever, daemon=True).start()

    @property
    def seq(self) -> int:
        return self.entries[-1]["seq"] if self.entries else 0

    def _load(self) -> tuple[list[Entry], int]:
        """The snapshot, then the log entries that continue it."""
        entries: list[Entry] = []
        upto = 0
        try:
            with open(self.snapshot_path) as file:
                snapshot = json.load(file)
            entries, upto = snapshot["entries"], snapshot["upto"]
        except FileNotFoundError:
            pass
        from_log = 0
        for entry in read_log(self.wal_path):
            last = entries[-1]["seq"] if entries else 0
            if entry["seq"] <= last:
                continue  # already in the snapshot
            if entry["seq"] != last + 1:
                log(f"the log resumes at seq {entry['seq']} after seq {last}")
            entries.append(entry)
            from_log += 1
        if entries:
            log(f"loaded {len(entries)} entries: snapshot up to {upto}, {from_log} from the log")
        return entries, upto

    def all(self) -> list[Entry]:
        with self._lock:
            return list(self.entries)

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {"seq": self.seq, "entries": len(self.entries),
                    "snapshot_upto": self.snapshot_upto,
                    "snapshotting": self._snapshotting is not None, "bug": self.bug}

    def append(self, id: str, payload: str) -> Entry:
        """Write one entry to the log, then return it (the caller acknowledges it)."""
        with self._lock:
            entry = {"seq": self.seq + 1, "id": id, "payload": payload}
            os.write(self._wal, (json.dumps(entry) + "\n").encode())
            self.entries.append(entry)
        return entry

    def compact_forever(self) -> None:
        """The compactor thread: every COMPACT_INTERVAL, snapshot if the log has grown
        by SNAPSHOT_EVERY entries since the last snapshot."""
        while True:
            time.sleep(COMPACT_INTERVAL)
            with self._lock:
                if self._closing:
                    return
                due = self.seq - self.snapshot_upto >= SNAPSHOT_EVERY
                if due:
                    self._snapshotting = threading.current_thread()
            if due:
                self.snapshot()

    def snapshot(self) -> None:
        """Compact: write every entry so far to the snapshot, then cut them from the log.

        THE PLANTED BUG: with ``bug`` on, the log is cut *first* and the snapshot written
        after, so until its rename the entries since the previous snapshot exist only in
        memory; a SIGKILL then loses them although each was acknowledged. Fixed
        (``bug`` off): the snapshot is written, fsynced and renamed into place first, and
        only then does the log drop what the snapshot holds.
        """
        try:
            with self._lock:
                upto, entries = self.seq, list(self.entries)
                sdk.reachable("Ledger snapshot started",
                              {"upto": upto, "previous": self.snapshot_upto})
                log(f"snapshot of {upto} entries started")
                if self.bug:
                    os.ftruncate(self._wal, 0)  # the bug: appends since the last snapshot
                    # are now in memory only, until the new snapshot is renamed into place
            self._write_snapshot(upto, entries)
            with self._lock:
                self.snapshot_upto = upto
                if not self.bug:
                    self._cut_log(upto)
            log(f"snapshot of {upto} entries in place")
        finally:
            with self._lock:
                self._snapshotting = None

    def _write_snapshot(self, upto: int, entries: list[Entry]) -> None:
        """Write the snapshot to a temporary file, piece by piece, then rename it."""
        data = json.dumps({"upto": upto, "entries": entries}).encode()
        step = max(1, math.ceil(len(data) / SNAPSHOT_CHUNKS))
        temporary = self.snapshot_path + ".tmp"
        with open(temporary, "wb") as file:
            for start in range(0, len(data), step):
                file.write(data[start:start + step])
                file.flush()
                time.sleep(SNAPSHOT_PACE)
            os.fsync(file.fileno())
        os.replace(temporary, self.snapshot_path)

    def _cut_log(self, upto: int) -> None:
        """Replace the log by the entries after ``upto`` (caller holds the lock).

        A crash before the rename leaves the old log, whose extra entries loading skips.
        """
        keep = "".join(json.dumps(e) + "\n" for e in self.entries if e["seq"] > upto)
        temporary = self.wal_path + ".tmp"
        with open(temporary, "w") as file:
            file.write(keep)
        os.replace(temporary, self.wal_path)
        os.close(self._wal)
        self._wal = os.open(self.wal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        """Clean shutdown (SIGTERM): let a running snapshot finish, start no other.

        The compactor ends at its next look, so joining it waits for the snapshot.
        """
        with self._lock:
            self._closing = True
            running = self._snapshotting
        if running is not None:
            running.join(5.0)
