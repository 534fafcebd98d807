"""Code shared by the leaderkv drivers (a helper_ file: composer never runs it).

Every request turns expected trouble (connection refused or reset, timeouts while a node
is killed, paused or cut off) into ``Unavailable``, so drivers exit 0 through faults.
No timeout is below a second: on a busy machine a healthy node can be slow, and a
check must not mistake that for a fault. The ledger ``$COMPOSER_DATA/acked.jsonl``
holds every write a leader acknowledged, one JSON line each, appended under ``flock``
because several drivers run at once.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import composer_sdk as sdk

PORT = 7200
TIMEOUT = 1.5  # seconds: status polls and reads
# A write on a leader cut off from its followers waits 1 s for them (leaderkv's
# RPC_TIMEOUT) before it is acknowledged or refused; leave room for a few queued ones.
WRITE_TIMEOUT = 4.0

Status = dict[str, Any]

# Drivers are often SIGKILLed at the end of the driver phase: without line buffering their
# last lines, the interesting ones, would die in the buffer instead of reaching the log.
sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]


class Unavailable(Exception):
    """The node did not answer: expected while faults are on, never a driver failure."""


def nodes() -> list[str]:
    """Every node as ``host:port``, in ring order (from ``$COMPOSER_HOSTS_NODE``)."""
    hosts = [h for h in os.environ.get("COMPOSER_HOSTS_NODE", "").split(",") if h]
    if not hosts:
        raise SystemExit("COMPOSER_HOSTS_NODE is not set: run the drivers through composer")
    return [h if ":" in h else f"{h}:{PORT}" for h in hosts]


def rng() -> random.Random:
    """The driver's randomness: from ``sdk`` so a replay (same COMPOSER_SEED) repeats it."""
    return sdk.AntithesisRandom()


def request(node: str, method: str, path: str, body: Any = None,
            timeout: float = TIMEOUT) -> tuple[int, Any]:
    """Send one JSON request; return (status, decoded answer) or raise ``Unavailable``."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{node}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            answer = json.loads(error.read() or b"{}")
        except (OSError, http.client.HTTPException, ValueError):
            answer = {}
        return error.code, answer if isinstance(answer, dict) else {}
    except (OSError, http.client.HTTPException, ValueError) as error:
        # refused, reset, timed out, or the node died mid-answer
        raise Unavailable(f"{method} {node}{path}: {error}") from error


def statuses(timeout: float = TIMEOUT) -> dict[str, Status | None]:
    """Every node's ``/status`` (None: no answer), asked all at once."""
    answers: dict[str, Status | None] = {}

    def ask(node: str) -> None:
        try:
            answers[node] = request(node, "GET", "/status", timeout=timeout)[1]
        except Unavailable:
            answers[node] = None

    threads = [threading.Thread(target=ask, args=(node,)) for node in nodes()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {node: answers.get(node) for node in nodes()}


def find_leader(answers: dict[str, Status | None]) -> str | None:
    """The node that says it leads the highest term: the real leader once nodes agree."""
    leaders = [(a["term"], node) for node, a in answers.items() if a and a["role"] == "leader"]
    return max(leaders)[1] if leaders else None


def pick_leader(answers: dict[str, Status | None]) -> str | None:
    """Any node that says it leads, as a simple client picks one (seeded choice).

    Usually there is one. Behind a partition of the leader there are two for a while:
    the old leader, which has not heard of the new term, and the one the other side
    elected. The client cannot tell who is right and writes to either.
    """
    leaders = sorted(node for node, a in answers.items() if a and a["role"] == "leader")
    return sdk.random_choice(leaders) if leaders else None


def put(node: str, key: str, value: str) -> tuple[int, dict[str, Any]]:
    """Write ``key`` on ``node``; (status, answer), 200 when acknowledged."""
    return request(node, "PUT", f"/kv/{quote(key, safe='')}", {"value": value},
                   timeout=WRITE_TIMEOUT)


def get(node: str, key: str) -> str | None:
    """Read ``key`` from any node (a follower may be behind); None when absent."""
    status, answer = request(node, "GET", f"/kv/{quote(key, safe='')}")
    if status not in (200, 404):
        raise RuntimeError(f"GET {key} on {node}: HTTP {status} {answer}")
    return answer["value"]


def dump(node: str) -> dict[str, Any]:
    """The node's status plus ``"data"``, its whole map (bigger answer: longer timeout)."""
    return request(node, "GET", "/dump", timeout=5.0)[1]


def agreement(answers: dict[str, Status | None]) -> tuple[str | None, list[str]]:
    """(leader, problems): the leader of the newest term any node reports (None when that
    term has no leader yet, as during an election), and what keeps the nodes from
    agreeing: a node that does not answer, follows another term or leader, or holds a
    different log. A leader of the newest term holds every write a majority stored."""
    problems = [f"{node} does not answer" for node, a in answers.items() if a is None]
    up = {node: a for node, a in answers.items() if a}
    newest = max((a["term"] for a in up.values()), default=0)
    leader = find_leader(up)
    if leader is None or up[leader]["term"] != newest:
        return None, problems + [f"no node leads term {newest}"]
    mine = up[leader]
    for node, a in up.items():
        if node == leader:
            continue
        if a["term"] != mine["term"] or a["leader"] != leader:
            problems.append(f"{node} is in term {a['term']} following {a['leader']}")
        elif (a["length"], a["last_term"]) != (mine["length"], mine["last_term"]):
            problems.append(f"{node} has {a['length']} entries, the leader {mine['length']}")
    return leader, problems


def wait_for_agreement(seconds: float) -> tuple[str | None, list[str]]:
    """Poll until ``agreement`` has no problems, or ``seconds`` pass: (leader, problems).

    For checks after faults are healed. Past the deadline it still returns the last
    leader it saw (with what is still wrong), so a leaderless moment at the very end, a
    handover say, does not count as "no leader".
    """
    deadline = time.monotonic() + seconds
    seen: str | None = None
    while True:
        leader, problems = agreement(statuses())
        seen = leader or seen
        if (leader and not problems) or time.monotonic() > deadline:
            return seen, problems
        time.sleep(0.3)


def ledger_path() -> Path:
    return Path(os.environ.get("COMPOSER_DATA", ".")) / "acked.jsonl"


def record_ack(key: str, value: str, answer: dict[str, Any]) -> None:
    """Append one acknowledged write to the ledger, locked against concurrent drivers."""
    line = json.dumps({"key": key, "value": value, "leader": answer.get("leader"),
                       "term": answer.get("term"), "degraded": answer.get("degraded")}) + "\n"
    with open(ledger_path(), "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            file.write(line)
            file.flush()
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def read_ledger() -> dict[str, dict[str, Any]]:
    """Every acknowledged write so far, key -> its ledger line (empty before the first)."""
    acked: dict[str, dict[str, Any]] = {}
    try:
        with open(ledger_path()) as file:
            fcntl.flock(file, fcntl.LOCK_SH)
            text = file.read()
    except FileNotFoundError:
        return acked
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:  # a writer killed mid-line; that write is not on record
            continue
        acked[entry["key"]] = entry
    return acked
