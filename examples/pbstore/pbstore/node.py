"""One pbstore node: epochs, the failure detector, replication, resync, the planted bug.

State (kept in the data directory, so a SIGKILL loses nothing that was written):

- ``state.json``: the highest epoch this node has accepted. Epochs belong to nodes:
  epoch ``e`` is led by ``peers[(e - 1) % len(peers)]``, so epoch 1 is the first peer's
  and two backups promoting at once can never pick the same number.
- ``pb.log``: JSON lines ``{"seq", "epoch", "key", "value"}``, the node's log. In one
  epoch only its primary appends (before it replicates), so a backup's log is a prefix
  of its primary's once it has synchronised with it.

Three flags, all lost on restart, keep process faults (kill, stop, pause) harmless:

- ``confirmed`` (primary): every peer answered since this node's last start or stall
  and none knows a newer epoch. Only a confirmed primary takes writes.
- ``synced`` (backup): the log was copied whole from this epoch's primary; only then
  are replicated entries accepted.
- ``fresh`` (backup): caught up with the primary since the last start or stall. Only a
  fresh backup may promote itself, so one that slept through writes never does.

A *stall* is a gap in this process's own execution (SIGSTOP/SIGCONT), seen by a thread
that ticks every 50 ms.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import composer_sdk as sdk

Entry = dict[str, Any]

PROBE_INTERVAL = 0.2  # seconds between probe rounds (every node probes every peer)
PROBE_TIMEOUT = 0.25  # a peer slower than this failed the probe
SUSPECT_AFTER = 0.6  # seconds of consecutive failed probes before a backup takes over
SUSPECT_ROUNDS = 3  # ... and at least this many failed rounds
REPLICATE_TIMEOUT = 0.3  # a backup slower than this timed out (see put: the bug)
FETCH_TIMEOUT = 2.0  # a backup fetching the primary's log
TICK = 0.05  # the stall detector's period
# A gap this long in our own execution means we were paused. It must stay BELOW
# REPLICATE_TIMEOUT: a backup paused long enough to time a write out (a degraded ack
# with the bug on) must know it, or it could promote itself without that write and
# lose it under process faults alone. A busy machine's false alarms only cost a round
# of availability (the node reconfirms), never safety.
STALL = 0.25
assert STALL < REPLICATE_TIMEOUT


def nap(seconds: float) -> None:
    """Sleep. Not ``time.sleep``: under libfaketime (composer's clock faults) it fails
    with EINVAL, while waiting on an event works."""
    _never.wait(seconds)


_never = threading.Event()


class Timeout(Exception):
    """The peer did not answer in time: packets dropped (partition) or peer paused."""


class Down(Exception):
    """The peer refused or reset the connection: its process is not running."""


def call(address: str, method: str, path: str, body: Any = None,
         timeout: float = 1.0) -> tuple[int, Any]:
    """Send one JSON request; return (status, answer) or raise ``Timeout`` / ``Down``."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    data = None if body is None else json.dumps(body).encode()
    try:
        connection.request(method, path, body=data,
                           headers={"Content-Type": "application/json"} if data else {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    except TimeoutError as error:
        raise Timeout(f"{method} {address}{path}: timed out") from error
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise Down(f"{method} {address}{path}: {error}") from error
    finally:
        connection.close()


def log(message: str) -> None:
    """One line on stderr, which composer keeps per process."""
    print(f"pbstore {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class Log:
    """An append-only JSON-lines file; each append is one ``write`` on an O_APPEND fd.

    A SIGKILL can at worst leave a torn last line (never acknowledged): loading drops
    it. ``replace`` swaps the whole file atomically (write aside, rename).
    """

    def __init__(self, path: str) -> None:
        self.path = path
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
        os.write(self._fd, "".join(json.dumps(e) + "\n" for e in entries).encode())
        self.entries.extend(entries)

    def replace(self, entries: list[Entry]) -> None:
        aside = self.path + ".new"
        with open(aside, "w") as file:
            file.write("".join(json.dumps(e) + "\n" for e in entries))
        os.replace(aside, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.entries = list(entries)


class Node:
    """This node's epoch, role, log and map, and the threads that keep them current."""

    def __init__(self, me: str, peers: list[str], data_dir: str, bug: bool) -> None:
        self.me = me
        self.peers = peers
        self.index = peers.index(me)
        self.others = [p for p in peers if p != me]
        self.bug = bug
        self._state_path = os.path.join(data_dir, "state.json")
        self.epoch = self._load_epoch()
        self.log = Log(os.path.join(data_dir, "pb.log"))
        self.data: dict[str, str] = {e["key"]: e["value"] for e in self.log.entries}
        self._lock = threading.RLock()  # guards everything below and the log
        self._writes = threading.Lock()  # one write at a time, replicated in seq order
        now = time.monotonic()
        self._tick = now  # last time the stall detector (or anyone) looked at the clock
        self._stalled_at = now  # a start counts as a stall
        self.confirmed = False
        self.synced = False
        self.fresh = False
        self._stepped_down = False  # a former primary that has not resynchronised yet
        self._failed_since: float | None = None  # first failed probe of the primary
        self._failed_rounds = 0
        self._pool = ThreadPoolExecutor(max_workers=4 * len(peers))
        if self.log.entries:
            log(f"{me} restarted with {self.seq} entries at epoch {self.epoch}")
        self._tick = time.monotonic()
        threading.Thread(target=self._watch_stalls, daemon=True).start()
        threading.Thread(target=self._probe_forever, daemon=True).start()

    # -- basics ---------------------------------------------------------------------

    def owner(self, epoch: int) -> str:
        """The node that leads ``epoch``."""
        return self.peers[(epoch - 1) % len(self.peers)]

    @property
    def is_primary(self) -> bool:
        return self.owner(self.epoch) == self.me

    @property
    def seq(self) -> int:
        return len(self.log.entries)

    def _load_epoch(self) -> int:
        try:
            with open(self._state_path) as file:
                return int(json.load(file)["epoch"])
        except FileNotFoundError:
            return 1

    def _set_epoch(self, epoch: int) -> None:
        """Persist, then use, a new epoch (caller holds the lock)."""
        aside = self._state_path + ".new"
        with open(aside, "w") as file:
            json.dump({"epoch": epoch}, file)
        os.replace(aside, self._state_path)
        self.epoch = epoch
        self._failed_since, self._failed_rounds = None, 0

    def status(self) -> dict[str, Any]:
        self._check_stall()
        with self._lock:
            primary = self.is_primary
            return {"node": self.me, "index": self.index, "epoch": self.epoch,
                    "role": "primary" if primary else "backup", "primary": self.owner(self.epoch),
                    "ready": self.confirmed if primary else self.synced and self.fresh,
                    "eligible": not primary and self.synced and self.fresh,
                    "seq": self.seq, "keys": len(self.data), "bug": self.bug}

    def get(self, key: str) -> str | None:
        with self._lock:
            return self.data.get(key)

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {"epoch": self.epoch, "seq": self.seq, "data": dict(self.data)}

    def entries_from(self, start: int) -> dict[str, Any]:
        """The log from ``start`` on, with who we are (a backup's catch-up source)."""
        answer = self.status()
        with self._lock:
            answer["entries"] = self.log.entries[start:]
            answer["seq"] = self.seq
        return answer

    # -- stalls (SIGSTOP / SIGCONT) ---------------------------------------------------

    def _watch_stalls(self) -> None:
        while True:
            nap(TICK)
            self._check_stall()

    def _check_stall(self) -> None:
        """Notice a gap in our own execution; called by the ticker and before decisions."""
        now = time.monotonic()
        gap, self._tick = now - self._tick, now
        if gap > STALL:
            with self._lock:
                self._stalled_at = time.monotonic()
                self.confirmed = self.fresh = False
                self._failed_since, self._failed_rounds = None, 0
            log(f"{self.me} was stalled for {gap:.2f}s: reconfirming before acting")

    # -- the failure detector, epoch gossip and catch-up (every node) ---------------

    def _probe(self, peer: str) -> dict[str, Any] | None:
        try:
            status, answer = call(peer, "GET", "/status", timeout=PROBE_TIMEOUT)
        except (Timeout, Down):
            return None
        return answer if status == 200 else None

    def _probe_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self._round(started)
            except Exception as error:  # keep probing whatever one round met
                log(f"probe round failed: {error!r}")
            nap(max(0.05, PROBE_INTERVAL - (time.monotonic() - started)))

    def _round(self, started: float) -> None:
        """Probe every peer at once, then adopt, confirm, catch up or promote."""
        futures = {peer: self._pool.submit(self._probe, peer) for peer in self.others}
        answers = {peer: future.result() for peer, future in futures.items()}
        self._check_stall()
        fetch = None
        with self._lock:
            if started < self._stalled_at:
                return  # the round straddles a stall: its answers prove nothing
            newest = max((a["epoch"] for a in answers.values() if a), default=0)
            if newest > self.epoch:
                self._adopt(newest, "a peer knows it")
            if self.is_primary:
                if not self.confirmed and all(answers.values()):
                    self.confirmed = True
                    log(f"{self.me} is the confirmed primary of epoch {self.epoch}")
                return
            primary = self.owner(self.epoch)
            answer = answers.get(primary)
            if answer is not None:
                self._failed_since, self._failed_rounds = None, 0
                behind = not (self.synced and self.fresh) or answer["seq"] > self.seq
                if (answer["epoch"] == self.epoch and answer["role"] == "primary"
                        and answer["ready"] and behind):
                    fetch = (primary, self.epoch, self.seq if self.synced else 0)
            else:
                if self._failed_since is None:
                    self._failed_since = started
                self._failed_rounds += 1
                if self._may_promote(answers, primary, started):
                    self._promote(primary)
        if fetch:
            self._catch_up(*fetch, started)

    def _may_promote(self, answers: dict[str, Any], primary: str, started: float) -> bool:
        """A fresh backup takes over after SUSPECT_AFTER s of failed probes, unless a
        lower-index backup that could take over answers (it goes first)."""
        if not (self.synced and self.fresh) or self._failed_since is None:
            return False
        if self._failed_rounds < SUSPECT_ROUNDS or started - self._failed_since < SUSPECT_AFTER:
            return False
        return not any(answer and answer.get("eligible") and self.peers.index(peer) < self.index
                       for peer, answer in answers.items() if peer != primary)

    def _promote(self, old: str) -> None:
        """Lead the next epoch we own (caller holds the lock) and say so."""
        stalled_at = self._stalled_at
        self._check_stall()  # a pause since the decision: its answers are stale
        if self._stalled_at != stalled_at:
            return
        new = self.epoch + 1
        while self.owner(new) != self.me:
            new += 1
        log(f"{self.me} promoted itself to primary of epoch {new}: {old} "
            f"failed {self._failed_rounds} probes in a row")
        # Counts the failovers in the report; not must-hit, as a short run may have none.
        sdk.always_or_unreachable(self.synced and self.fresh,
                                  "A backup promotes itself only when caught up",
                                  {"node": self.me, "epoch": new, "old_primary": old,
                                   "seq": self.seq})
        self._set_epoch(new)
        self.confirmed = True
        for peer in self.others:  # tell everyone now; probes would tell them soon anyway
            self._pool.submit(self._announce, peer, new)

    def _announce(self, peer: str, epoch: int) -> None:
        try:
            call(peer, "POST", "/epoch", {"epoch": epoch}, timeout=PROBE_TIMEOUT)
        except (Timeout, Down):
            pass

    def _adopt(self, epoch: int, why: str) -> None:
        """Follow a newer epoch (caller holds the lock): resynchronise from its primary."""
        if self.is_primary:
            self._stepped_down = True
            log(f"{self.me} steps down: epoch {epoch} is newer than its {self.epoch} ({why})")
        self._set_epoch(epoch)
        self.confirmed = self.synced = self.fresh = False

    def learn_epoch(self, epoch: int) -> None:
        with self._lock:
            if epoch > self.epoch:
                self._adopt(epoch, "announced")

    def _catch_up(self, primary: str, epoch: int, start: int, started: float) -> None:
        """Copy the primary's log (whole when not synced, else its tail)."""
        try:
            status, answer = call(primary, "GET", f"/log?from={start}", timeout=FETCH_TIMEOUT)
        except (Timeout, Down):
            return
        self._check_stall()
        with self._lock:
            if (status != 200 or answer["epoch"] != epoch or self.epoch != epoch
                    or not answer["ready"] or started < self._stalled_at):
                return
            entries, before = answer["entries"], self.seq
            if not self.synced:
                if start != 0:
                    return
                kept = {(e["seq"], e["epoch"], e["key"]) for e in entries}
                dropped = [e for e in self.log.entries
                           if (e["seq"], e["epoch"], e["key"]) not in kept]
                self.log.replace(entries)
                self.data = {e["key"]: e["value"] for e in entries}
                self.synced = True
                what = "former primary" if self._stepped_down else "node"
                self._stepped_down = False
                log(f"{self.me} ({what}) synchronised {len(entries)} entries from {primary} "
                    f"(epoch {epoch}), dropping {len(dropped)} of its own")
                gained = len(entries) - (before - len(dropped))
            else:
                self._apply(entries)
                gained = self.seq - before
            if gained > 0:
                sdk.reachable("A node that had fallen behind caught up from the primary",
                              {"node": self.me, "epoch": epoch, "entries": gained})
            if self.seq >= answer["seq"]:
                self.fresh = True

    # -- replication (backup) -------------------------------------------------------

    def _apply(self, entries: list[Entry]) -> bool:
        """Append the entries that extend our log; False on a gap (caller holds the lock)."""
        fresh = [e for e in entries if e["seq"] > self.seq]
        if any(e["seq"] != self.seq + i for i, e in enumerate(fresh, 1)):
            return False
        if fresh:
            self.log.append(fresh)
            self.data.update((e["key"], e["value"]) for e in fresh)
        return True

    def replicate(self, epoch: int, entries: list[Entry]) -> dict[str, Any]:
        """Take entries from the primary of ``epoch``; refuse a stale epoch or a gap."""
        self._check_stall()
        with self._lock:
            if epoch < self.epoch:
                return {"ok": False, "reason": "stale", "epoch": self.epoch}
            if epoch > self.epoch:
                self._adopt(epoch, "replication from its primary")
            if self.is_primary or not self.synced:
                return {"ok": False, "reason": "unsynced", "epoch": self.epoch, "seq": self.seq}
            if not self._apply(entries):
                return {"ok": False, "reason": "gap", "epoch": self.epoch, "seq": self.seq}
            return {"ok": True, "epoch": self.epoch, "seq": self.seq}

    # -- writes (primary) -----------------------------------------------------------

    def put(self, key: str, value: str) -> tuple[int, dict[str, Any]]:
        """Append, replicate to every backup, and acknowledge only if all of them have it.

        A backup answering with a newer epoch makes us step down; one that is down
        (refused, reset) or unsynced fails the write: the client retries elsewhere.

        THE PLANTED BUG (on unless PBSTORE_BUG=0): a backup that TIMES OUT does not
        fail the write. The primary acknowledges it anyway, "degraded", although no
        other node may have it. A paused backup times out too, but it gets the entry
        when it resumes (or pulls it) and cannot take over before it has caught up;
        behind a network partition, though, the other side promotes a backup, and when
        the partition heals this primary steps down and resynchronises from the new
        one: its degraded acknowledgements are gone.
        """
        with self._writes:
            self._check_stall()
            with self._lock:
                if not self.is_primary:
                    return 409, {"ok": False, "error": "not the primary",
                                 "primary": self.owner(self.epoch), "epoch": self.epoch}
                if not self.confirmed:
                    return 503, {"ok": False, "error": "primary not confirmed yet",
                                 "epoch": self.epoch}
                epoch, stalled_at = self.epoch, self._stalled_at
                entry = {"seq": self.seq + 1, "epoch": epoch, "key": key, "value": value}
                self.log.append([entry])
                self.data[key] = value
            outcomes = dict(zip(self.others, self._pool.map(
                lambda peer: self._send(peer, epoch, entry), self.others)))
            self._check_stall()
            with self._lock:
                newest = max([o[1] for o in outcomes.values() if isinstance(o, tuple)],
                             default=0)
                if newest > self.epoch:
                    self._adopt(newest, "a backup refused a stale write")
                if self.epoch != epoch or self._stalled_at != stalled_at or not self.confirmed:
                    return 503, {"ok": False, "error": "no longer the confirmed primary",
                                 "epoch": self.epoch}
            failed = {p: str(o) for p, o in outcomes.items() if o not in ("ok", "timeout")}
            timed_out = sorted(p for p, o in outcomes.items() if o == "timeout")
            if failed:
                return 503, {"ok": False, "error": "replication failed", "failed": failed}
            if timed_out and not self.bug:
                return 503, {"ok": False, "error": "replication timed out",
                             "timed_out": timed_out}
            return 200, {"ok": True, "seq": entry["seq"], "epoch": epoch,
                         "degraded": bool(timed_out), "timed_out": timed_out}

    def _send(self, peer: str, epoch: int, entry: Entry) -> str | tuple[str, int]:
        """Replicate ``entry`` to ``peer``: "ok", "timeout", "down", ("stale", epoch), ...

        A backup slightly behind (it answered "gap") gets what it lacks in one more try.
        """
        batch = [entry]
        for _ in range(2):
            try:
                _, answer = call(peer, "POST", "/replicate",
                                 {"epoch": epoch, "entries": batch}, REPLICATE_TIMEOUT)
            except Timeout:
                return "timeout"
            except Down:
                return "down"
            if answer.get("ok"):
                return "ok"
            if answer.get("reason") == "stale":
                return ("stale", int(answer["epoch"]))
            if answer.get("reason") != "gap" or entry["seq"] - answer["seq"] > 1000:
                return str(answer.get("reason"))
            with self._lock:
                if self.epoch != epoch:
                    return "stepped down"
                batch = self.log.entries[answer["seq"]:entry["seq"]]
        return "gap"
