"""Code shared by the pbstore drivers (a helper_ file: composer never runs it).

Every request uses a short timeout and turns expected trouble (connection refused or
reset, timeouts while a node is killed, paused or cut off) into ``Unavailable``, so
drivers exit 0 through faults. The ledger ``$COMPOSER_DATA/acked.jsonl`` holds every
write a primary acknowledged, one JSON line each, appended under an exclusive
``flock`` because several drivers run at once.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import composer_sdk as sdk

PORT = 7100
TIMEOUT = 1.0  # seconds: longer than a healthy answer
QUICK = 0.3  # seconds: for status polls and reads while faults are on
WRITE_TIMEOUT = 1.0  # a write may queue behind others that each wait 0.3 s for a backup


class Unavailable(Exception):
    """The node did not answer: expected while faults are on, never a driver failure."""


def nodes() -> list[str]:
    """Every pb node as ``host:port``, in ``--peers`` order (from ``$COMPOSER_HOSTS_PB``)."""
    hosts = [h for h in os.environ.get("COMPOSER_HOSTS_PB", "").split(",") if h]
    if not hosts:
        raise SystemExit("COMPOSER_HOSTS_PB is not set: run the drivers through composer")
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
        try:  # the node may die in the middle of an error answer too
            return error.code, json.loads(error.read() or b"null")
        except (OSError, http.client.HTTPException, ValueError) as cut:
            raise Unavailable(f"{method} {node}{path}: {cut}") from cut
    except (OSError, http.client.HTTPException, ValueError) as error:
        # refused, reset, timed out, or the node died mid-answer
        raise Unavailable(f"{method} {node}{path}: {error}") from error


def status(node: str, timeout: float = QUICK) -> dict[str, Any]:
    return request(node, "GET", "/status", timeout=timeout)[1]


def statuses(timeout: float = QUICK) -> dict[str, dict[str, Any] | None]:
    """Every node's status (None: no answer), asked all at once."""
    answers: dict[str, dict[str, Any] | None] = {}

    def ask(node: str) -> None:
        try:
            answers[node] = status(node, timeout)
        except Unavailable:
            answers[node] = None

    threads = [threading.Thread(target=ask, args=(node,)) for node in nodes()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {node: answers.get(node) for node in nodes()}


def find_primary(answers: dict[str, dict[str, Any] | None]) -> str | None:
    """The FIRST node (in --peers order) that says it is a ready primary.

    Not the one with the highest epoch: behind a partition the client keeps using an
    old primary it can still reach, as a real client with a cached leader would.
    """
    for node, answer in answers.items():
        if answer and answer["role"] == "primary" and answer["ready"]:
            return node
    return None


def put(node: str, key: str, value: str) -> tuple[int, dict[str, Any]]:
    """Write ``key`` on ``node``; (status, answer), 200 when acknowledged."""
    return request(node, "PUT", f"/kv/{quote(key, safe='')}", {"value": value},
                   timeout=WRITE_TIMEOUT)


def get(node: str, key: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Read ``key`` from any node: ``{"value" (None when absent), "epoch"}``."""
    status_, answer = request(node, "GET", f"/kv/{quote(key, safe='')}", timeout=timeout)
    if status_ not in (200, 404):
        raise RuntimeError(f"GET {key} on {node}: HTTP {status_} {answer}")
    return answer


def dump(node: str) -> dict[str, Any]:
    """The node's ``{"epoch", "seq", "data"}`` (bigger answer: a longer timeout)."""
    return request(node, "GET", "/dump", timeout=5.0)[1]


def agreement(answers: dict[str, dict[str, Any] | None]) -> tuple[str | None, list[str]]:
    """(the primary, []) when every node answers, all share the newest epoch, its primary
    is ready and every backup is caught up with it; else (None, what is still wrong)."""
    problems = [f"{node} does not answer" for node, a in answers.items() if a is None]
    up = {node: a for node, a in answers.items() if a}
    if not up:
        return None, problems
    epoch = max(a["epoch"] for a in up.values())
    problems += [f"{node} is at epoch {a['epoch']}, not {epoch}"
                 for node, a in up.items() if a["epoch"] != epoch]
    primary = next(iter(up.values()))["primary"] if not problems else None
    leader = up.get(primary) if primary else None
    if primary and (not leader or leader["role"] != "primary" or not leader["ready"]):
        problems.append(f"{primary}, primary of epoch {epoch}, is not ready")
    if leader:
        problems += [f"{node} has {a['seq']} entries, the primary {leader['seq']}"
                     for node, a in up.items() if a["seq"] != leader["seq"]]
        problems += [f"{node} is not caught up" for node, a in up.items()
                     if node != primary and not a["ready"]]
    return (primary if not problems else None), problems


def wait_for_agreement(seconds: float) -> tuple[str | None, list[str]]:
    """Poll until ``agreement`` holds; (primary, []) or (None, problems) after ``seconds``.

    For the setup and end checks, which run without faults: a generous status timeout,
    so a busy machine does not count as a node that does not answer.
    """
    deadline = time.monotonic() + seconds
    while True:
        primary, problems = agreement(statuses(TIMEOUT))
        if primary or time.monotonic() > deadline:
            return primary, problems
        time.sleep(0.3)


def ledger_path() -> Path:
    return Path(os.environ.get("COMPOSER_DATA", ".")) / "acked.jsonl"


def record_ack(key: str, value: str, answer: dict[str, Any]) -> None:
    """Append one acknowledged write to the ledger, locked against concurrent drivers."""
    line = json.dumps({"key": key, "value": value, "epoch": answer.get("epoch"),
                       "degraded": answer.get("degraded")}) + "\n"
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
