"""One leaderkv node: terms, elections, and the follower's side of replication.

A small Raft. Each term has at most one leader (a candidate needs a majority of votes
and every node votes once per term, persisted before it answers). A node votes only
for a candidate whose log is at least as up to date as its own (last term, then
length), so a new leader has every write a majority stored. Followers accept appends
from the leader of their term and drop their own entries only from the first one that
conflicts with the leader's (same index, other term).

Leadership moves on its own: a leader hands over after ``TERM_SECONDS`` (see
``leading.py``), and a follower that hears no leader for ``ELECTION_TIMEOUT`` (plus a
rank step) campaigns. When a node becomes leader it says so with
``sdk.reachable("A node became leader")``.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import composer_sdk as sdk

from .leading import Leadership
from .storage import Down, Log, State, Timeout, call, log, nap
from .timing import (ELECTION_TIMEOUT, FIRST_ELECTION, HEARTBEAT, RANK_STEP, RPC_TIMEOUT,
                     STALL, TICK)


class Node:
    """This node's term, role, log and map, and the threads that keep them current."""

    def __init__(self, me: str, peers: list[str], data_dir: str, bug: bool) -> None:
        self.me = me
        self.name = os.environ.get("COMPOSER_NODE", me)
        self.peers = peers
        self.index = peers.index(me)
        self.others = [p for p in peers if p != me]
        self.majority = len(peers) // 2 + 1
        self.bug = bug
        self.state = State(os.path.join(data_dir, "state.json"))
        self.log = Log(os.path.join(data_dir, "log.jsonl"))
        self.data: dict[str, str] = self.log.data()
        self.lock = threading.RLock()  # guards everything here and in self.leading
        self.role = "follower"
        self.leader: str | None = None  # the leader of our term, once we heard from it
        self.last_leader: str | None = None  # the most recent leader we knew (for ranks)
        self.leading: Leadership | None = None
        self.last_heard = time.monotonic()  # leader contact, a granted vote, or a start
        self._tick = self.last_heard
        self.pool = ThreadPoolExecutor(max_workers=8 * len(peers))
        if self.log.entries:
            log(f"{me} restarted at term {self.state.term} with {len(self.log)} entries")

    def start(self) -> None:
        """Start the timers (after the server listens, so peers can answer us)."""
        for loop in (self._watch_stalls, self._election_timer, self._heartbeats):
            threading.Thread(target=loop, daemon=True).start()

    # -- what clients and checks see ---------------------------------------------

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"node": self.me, "name": self.name, "index": self.index,
                    "term": self.state.term, "role": self.role, "leader": self.leader,
                    "length": len(self.log), "last_term": self.log.last_term,
                    "keys": len(self.data), "bug": self.bug}

    def get(self, key: str) -> str | None:
        with self.lock:
            return self.data.get(key)

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {**self.status(), "data": dict(self.data)}

    def entries_from(self, start: int) -> dict[str, Any]:
        with self.lock:
            return {"term": self.state.term, "start": start,
                    "entries": self.log.entries[start:]}

    def write(self, key: str, value: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            leading = self.leading
            if leading is None:
                return 409, {"ok": False, "error": "not the leader", "leader": self.leader,
                             "term": self.state.term}
        return leading.write(key, value)

    # -- terms and roles (caller holds the lock) ----------------------------------

    def follow(self, term: int, leader: str | None, why: str = "") -> None:
        """Be a follower in ``term`` (persisted first if it is new), of ``leader`` if known."""
        if term > self.state.term:
            self.state.save(term, None)
        if self.role == "leader":
            log(f"{self.me} steps down in term {term}: {why}")
            self.last_heard = time.monotonic()  # a former leader has heard no one lately
        if self.leading is not None:
            self.leading.active = False
            self.leading = None
        self.role = "follower"
        self.leader = leader
        if leader is not None:
            self.last_leader = leader

    def _lead(self) -> None:
        term = self.state.term
        self.role, self.leader, self.last_leader = "leader", self.me, self.me
        self.leading = Leadership(self, term)
        log(f"{self.me} is the leader of term {term} with {len(self.log)} entries")
        sdk.reachable("A node became leader", {"node": self.name, "address": self.me,
                                               "term": term, "length": len(self.log)})
        self.leading.tick()

    # -- elections ---------------------------------------------------------------

    def _election_timeout(self) -> float:
        """ELECTION_TIMEOUT plus a step per place after the last leader in the ring."""
        ref = self.peers.index(self.last_leader) if self.last_leader in self.peers else -1
        rank = (self.index - ref - 1) % len(self.peers)
        base = FIRST_ELECTION if self.state.term == 0 else ELECTION_TIMEOUT
        return base + RANK_STEP * rank

    def _election_timer(self) -> None:
        while True:
            nap(TICK)
            with self.lock:
                silent = time.monotonic() - self.last_heard
                due = self.role != "leader" and silent > self._election_timeout()
            if due:
                self.campaign(f"no leader heard for {silent:.1f}s")

    def campaign(self, why: str) -> None:
        """Ask every peer for its vote in the next term; lead if a majority says yes."""
        with self.lock:
            if self.role == "leader":
                return
            term = self.state.term + 1
            self.state.save(term, self.me)
            self.role, self.leader = "candidate", None
            self.last_heard = time.monotonic()  # the next try waits a full timeout
            request = {"term": term, "candidate": self.me, "last_index": len(self.log),
                       "last_term": self.log.last_term}
        log(f"{self.me} campaigns in term {term}: {why}")
        answers = list(self.pool.map(lambda peer: self._ask(peer, "/vote", request),
                                     self.others))
        with self.lock:
            if self.state.term != term or self.role != "candidate":
                return
            newest = max((a["term"] for a in answers if a), default=0)
            if newest > term:
                self.follow(newest, None, "a peer has a newer term")
                return
            votes = 1 + sum(1 for a in answers if a and a.get("granted"))
            if votes >= self.majority:
                self._lead()

    def _ask(self, peer: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            status, answer = call(peer, "POST", path, body, RPC_TIMEOUT)
        except (Timeout, Down):
            return None
        return answer if status == 200 else None

    def vote(self, request: dict[str, Any]) -> dict[str, Any]:
        """Grant at most one vote per term, only to a candidate at least as up to date."""
        with self.lock:
            if request["term"] > self.state.term:
                self.follow(request["term"], None, f"{request['candidate']} campaigns")
            term = self.state.term
            mine = (self.log.last_term, len(self.log))
            theirs = (request["last_term"], request["last_index"])
            granted = (request["term"] == term and theirs >= mine
                       and self.state.voted_for in (None, request["candidate"]))
            if granted:
                self.state.save(term, request["candidate"])
                self.last_heard = time.monotonic()
            return {"term": term, "granted": granted}

    def timeout_now(self, request: dict[str, Any]) -> dict[str, Any]:
        """The leader hands over to us: campaign at once instead of waiting."""
        with self.lock:
            ok = (request["term"] == self.state.term and self.role == "follower"
                  and request["leader"] == self.leader)
        if ok:
            threading.Thread(target=self.campaign, args=(f"{request['leader']} hands over",),
                             daemon=True).start()
        return {"ok": ok, "term": self.state.term}

    # -- the follower's side of replication -------------------------------------

    def append(self, request: dict[str, Any]) -> dict[str, Any]:
        """Take the leader's entries after ``prev_index`` if our log matches up to it."""
        with self.lock:
            if request["term"] < self.state.term:
                return {"ok": False, "term": self.state.term, "reason": "stale"}
            self.follow(request["term"], request["leader"], f"{request['leader']} leads")
            self.last_heard = time.monotonic()
            prev, entries = request["prev_index"], request["entries"]
            if prev > len(self.log) or self.log.term_at(prev) != request["prev_term"]:
                return {"ok": False, "term": self.state.term, "reason": "mismatch",
                        "length": min(len(self.log), prev - 1)}
            for k, entry in enumerate(entries):
                index = prev + 1 + k
                if index <= len(self.log) and self.log.term_at(index) == entry["term"]:
                    continue  # already have it (a late or repeated append)
                if index <= len(self.log):  # conflict: the leader's log wins from here
                    log(f"{self.me} drops {len(self.log) - index + 1} entries from "
                        f"{index} on: they conflict with leader {request['leader']}")
                    self.log.truncate(index - 1)
                    self.data = self.log.data()
                self.log.append(entries[k:])
                self.data.update((e["key"], e["value"]) for e in entries[k:])
                break
            return {"ok": True, "term": self.state.term, "match": prev + len(entries),
                    "length": len(self.log)}

    # -- stalls and heartbeats ---------------------------------------------------

    def _watch_stalls(self) -> None:
        """A gap in our own execution means we were paused: wait a full election
        timeout before campaigning, since the leader may be alive and ahead of us."""
        while True:
            nap(TICK)
            now = time.monotonic()
            gap, self._tick = now - self._tick, now
            if gap > STALL:
                with self.lock:
                    self.last_heard = now
                log(f"{self.me} was stalled for {gap:.1f}s")

    def _heartbeats(self) -> None:
        while True:
            nap(HEARTBEAT)
            with self.lock:
                leading = self.leading
            if leading is not None:
                leading.tick()
