"""Code shared by the lease drivers (a helper_ file: composer never runs it).

Every request turns expected trouble (connection refused or reset, timeouts while a
node is killed or paused) into ``Unavailable``, so drivers exit 0 through faults. What
the store acknowledged is on record at the workers: each journals the items it posted
(``GET /acked``), so the record survives drivers being killed at the end of the
driver phase.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
import urllib.error
import urllib.request
from typing import Any

import composer_sdk as sdk

LOCK_PORT, STORE_PORT, WORKER_PORT = 7200, 7300, 7400


class Unavailable(Exception):
    """The node did not answer: expected while faults are on, never a driver failure."""


def _hosts(service: str, port: int) -> list[str]:
    hosts = [h for h in os.environ.get(f"COMPOSER_HOSTS_{service}", "").split(",") if h]
    if not hosts:
        raise SystemExit(f"COMPOSER_HOSTS_{service} is not set: run the drivers through composer")
    return [h if ":" in h else f"{h}:{port}" for h in hosts]


def workers() -> list[str]:
    return _hosts("WORKER", WORKER_PORT)


def store() -> str:
    return _hosts("STORE", STORE_PORT)[0]


def lock() -> str:
    return _hosts("LOCK", LOCK_PORT)[0]


def rng() -> random.Random:
    """The driver's randomness: from ``sdk`` so a replay (same COMPOSER_SEED) repeats it."""
    return sdk.AntithesisRandom()


def request(node: str, method: str, path: str, body: Any = None,
            timeout: float = 1.0) -> tuple[int, Any]:
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


def queue_work(worker: str, batch: str, count: int) -> int | None:
    """Hand ``worker`` a batch of ``count`` items to post; return its backlog, or None
    if it has too much queued already."""
    status, answer = request(worker, "POST", "/work", {"batch": batch, "count": count})
    if status == 503:
        return None
    if status != 200:  # a worker refusing well-formed work is a bug here, not a fault
        raise RuntimeError(f"work for {worker}: HTTP {status} {answer}")
    return answer["backlog"]


def acked(worker: str) -> list[str]:
    """Every item ``worker`` journaled as acknowledged by the store."""
    return request(worker, "GET", "/acked", timeout=5.0)[1]["acked"]


def items(timeout: float = 5.0) -> list[str]:
    """The store's board, for checks (no fencing token)."""
    return request(store(), "GET", "/items", timeout=timeout)[1]["items"]


def health(node: str, timeout: float = 1.0) -> dict[str, Any]:
    return request(node, "GET", "/health", timeout=timeout)[1]


def wait_until_up(node: str, seconds: float) -> dict[str, Any] | None:
    """Poll ``node`` until it answers /health; return its health, or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return health(node)
        except Unavailable:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)


def wait_until_idle(seconds: float) -> list[str]:
    """Poll the workers until none has work queued or in hand; return those still busy."""
    deadline = time.monotonic() + seconds
    while True:
        busy = []
        for worker in workers():
            try:
                answer = health(worker)
                if answer["backlog"] or answer["busy"]:
                    busy.append(worker)
            except Unavailable:
                busy.append(worker)
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(0.3)
