"""The leader's side: appends and heartbeats, writes, log repair, handover, and the bug.

A leader appends a write to its own log, sends it to every follower at once and
acknowledges it when a majority (itself included) has stored it. Heartbeats every
``HEARTBEAT`` seconds carry whatever a follower lacks. After ``TERM_SECONDS`` the leader
hands over to the next node in the ring that is caught up (Raft's TimeoutNow), so the
leader moves: node-1, node-2, node-3, node-1, ...

Log repair goes both ways. Where a follower's log conflicts with the leader's, the
follower drops its entries (``Node.append``). Where a follower merely has MORE, entries
an earlier leader wrote that never reached this one, the leader takes them over and
writes them again in its own term, so nothing an earlier leader wrote is dropped
needlessly.

THE PLANTED BUG (on unless ``LEADER_BUG=0``), in ``Leadership.write``: when no follower
stored a write because every one of them TIMED OUT, the leader acknowledges it anyway
("degraded": "they are slow, heartbeats will catch them up"), and it never checks that
it still has a majority behind it (no lease). Cut the leader off from the others and it
keeps acknowledging writes on its own while the others elect a new leader. If the new
leader also takes a write, the two logs conflict: when the partition heals, the old
leader follows the new one and drops its own entries, acknowledged or not. (If the new
leader took no write, the repair above saves them: it takes a write on EACH side.)

The fixed twin (``LEADER_BUG=0``) acknowledges only majority-stored writes and steps
down when it has heard from no majority for ``LEASE`` seconds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .storage import Down, Timeout, call, log
from .timing import HANDOVER_WAIT, HEARTBEAT, LEASE, MAX_BATCH, RPC_TIMEOUT, TERM_SECONDS

if TYPE_CHECKING:
    from .node import Node


class Leadership:
    """One term's leadership: per-follower progress. Guarded by ``node.lock``."""

    def __init__(self, node: Node, term: int) -> None:
        self.node = node
        self.term = term
        self.active = True  # cleared by Node.follow when we step down
        now = time.monotonic()
        self.since = now
        start = len(node.log) + 1
        self.next = {p: start for p in node.others}  # next entry to send
        self.match = {p: 0 for p in node.others}  # highest entry known stored there
        self.last_ack = {p: now for p in node.others}  # last answer in this term
        self.outcome = {p: "none" for p in node.others}  # how the last append went
        self.inflight: set[str] = set()  # followers a heartbeat is still waiting for
        self.handing_over_until = 0.0

    def current(self) -> bool:
        return self.active and self.node.leading is self and self.node.state.term == self.term

    # -- replication -------------------------------------------------------------

    def replicate(self, peer: str) -> str:
        """Send ``peer`` what it lacks; return "ok", "behind", "timeout", "down" or "stale"."""
        node = self.node
        with node.lock:
            if not self.current():
                return "stale"
            prev = self.next[peer] - 1
            entries = node.log.entries[prev:prev + MAX_BATCH]
            body = {"term": self.term, "leader": node.me, "prev_index": prev,
                    "prev_term": node.log.term_at(prev), "entries": entries}
        try:
            _, answer = call(peer, "POST", "/append", body, RPC_TIMEOUT)
        except (Timeout, Down) as error:
            with node.lock:
                result = "timeout" if isinstance(error, Timeout) else "down"
                self.outcome[peer] = result
                return result
        pull = None
        with node.lock:
            if not self.current():
                return "stale"
            if answer["term"] > self.term:
                node.follow(answer["term"], None, f"{peer} is in term {answer['term']}")
                return "stale"
            self.last_ack[peer] = time.monotonic()
            if answer["ok"]:
                self.match[peer] = max(self.match[peer], answer["match"])
                self.next[peer] = max(self.next[peer], answer["match"] + 1)
                result = "ok"
                if answer["length"] > answer["match"] == len(node.log):
                    pull = answer["match"]
            else:
                self.next[peer] = max(1, min(self.next[peer], answer["length"] + 1))
                result = "behind"
            self.outcome[peer] = result
        if pull is not None:
            self._take_over(peer, pull)
        return result

    def _take_over(self, peer: str, start: int) -> None:
        """``peer`` holds entries past our end that agree with our log: write them again
        in our term (the next append replaces its copies with ours)."""
        node = self.node
        try:
            _, answer = call(peer, "GET", f"/log?from={start}", timeout=RPC_TIMEOUT)
        except (Timeout, Down):
            return
        with node.lock:
            if not self.current() or len(node.log) != start or answer["term"] != self.term:
                return
            entries = [{"term": self.term, "key": e["key"], "value": e["value"]}
                       for e in answer["entries"]]
            node.log.append(entries)
            node.data.update((e["key"], e["value"]) for e in entries)
            log(f"{node.me} takes over {len(entries)} entries from {peer} "
                f"(written by an earlier leader, beyond our log)")

    # -- writes ------------------------------------------------------------------

    def write(self, key: str, value: str) -> tuple[int, dict[str, Any]]:
        """Append, replicate, and acknowledge when a majority stored it (see the bug)."""
        node = self.node
        with node.lock:
            if not self.current():
                return 409, {"ok": False, "error": "not the leader", "leader": node.leader}
            if time.monotonic() < self.handing_over_until:
                return 503, {"ok": False, "error": "handing over", "term": self.term}
            node.log.append([{"term": self.term, "key": key, "value": value}])
            node.data[key] = value
            index = len(node.log)
        futures = {p: node.pool.submit(self.replicate, p) for p in node.others}
        outcomes = {p: f.result() for p, f in futures.items()}
        with node.lock:
            if not self.current():
                return 503, {"ok": False, "error": "lost leadership", "outcomes": outcomes}
            stored = 1 + sum(1 for p in node.others if self.match[p] >= index)
            answer = {"ok": True, "index": index, "term": self.term, "stored": stored,
                      "leader": node.me, "degraded": False}
            if stored >= node.majority:
                return 200, answer
            lagging = [p for p in node.others if self.match[p] < index]
            if node.bug and all(outcomes[p] == "timeout" for p in lagging):
                # THE PLANTED BUG: nobody else has it, yet we acknowledge it.
                return 200, {**answer, "degraded": True}
            return 503, {"ok": False, "error": "no majority stored the write",
                         "outcomes": outcomes}

    # -- heartbeats, lease, handover ---------------------------------------------

    def tick(self) -> None:
        """One heartbeat round; then the lease (fixed twin) and the handover clock."""
        node = self.node
        target = None
        with node.lock:
            if not self.current():
                return
            for peer in node.others:
                if peer not in self.inflight:
                    self.inflight.add(peer)
                    node.pool.submit(self._beat, peer)
            now = time.monotonic()
            if not node.bug and now - max(self.last_ack.values()) > LEASE:
                node.follow(self.term, None, f"no majority answered for {LEASE:g}s")
                return
            if now - self.since > TERM_SECONDS and now >= self.handing_over_until:
                target = self._successor(now)
                if target is not None:
                    self.handing_over_until = now + HANDOVER_WAIT
        if target is not None:
            self._hand_over(target)

    def _beat(self, peer: str) -> None:
        try:
            self.replicate(peer)
        finally:
            with self.node.lock:
                self.inflight.discard(peer)

    def _successor(self, now: float) -> str | None:
        """The next node in the ring that has our whole log and answered lately."""
        node = self.node
        for step in range(1, len(node.peers)):
            peer = node.peers[(node.index + step) % len(node.peers)]
            if (self.match[peer] == len(node.log) and self.outcome[peer] == "ok"
                    and now - self.last_ack[peer] < 2 * HEARTBEAT + RPC_TIMEOUT):
                return peer
        return None

    def _hand_over(self, target: str) -> None:
        """Ask ``target`` to campaign now; its vote request will make us step down."""
        node = self.node
        try:
            _, answer = call(target, "POST", "/timeout_now",
                             {"term": self.term, "leader": node.me}, RPC_TIMEOUT)
            ok = bool(answer.get("ok"))
        except (Timeout, Down):
            ok = False
        with node.lock:
            if ok:
                log(f"{node.me} hands term {self.term} over to {target}")
            elif self.current():
                self.handing_over_until = 0.0  # carry on leading, try again later
