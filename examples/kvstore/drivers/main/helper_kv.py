"""Code shared by the kvstore drivers (a helper_ file: composer never runs it).

Every request uses a short timeout and turns expected trouble (connection refused or
reset, timeouts while a node is killed or paused) into ``Unavailable``, so drivers exit
0 through faults. The ledger ``$COMPOSER_DATA/acked.jsonl`` holds every write the
primary acknowledged: one JSON line per ack, appended with a single ``write`` on an
O_APPEND descriptor so concurrent drivers never interleave.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import composer_sdk as sdk

PORT = 7000
TIMEOUT = 1.0  # seconds: longer than a healthy answer, shorter than a paused node


class Unavailable(Exception):
    """The node did not answer: expected while faults are on, never a driver failure."""


def kv_nodes() -> list[str]:
    """Every kv node as ``host:port``, the primary first (from ``$COMPOSER_HOSTS_KV``)."""
    hosts = [h for h in os.environ.get("COMPOSER_HOSTS_KV", "").split(",") if h]
    if not hosts:
        raise SystemExit("COMPOSER_HOSTS_KV is not set: run the drivers through composer")
    return [h if ":" in h else f"{h}:{PORT}" for h in hosts]


def primary() -> str:
    return kv_nodes()[0]


def rng() -> random.Random:
    """The driver's randomness: from ``sdk`` so a replay (same COMPOSER_SEED) repeats it."""
    return sdk.AntithesisRandom()


def request(node: str, method: str, path: str, body: Any = None,
            timeout: float = TIMEOUT) -> tuple[int, Any]:
    """Send one JSON request; return (status, decoded answer) or raise ``Unavailable``.

    ``X-Writer`` names this driver process, so the store can tell concurrent writers
    from one writer whose timed-out request is still queued.
    """
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json",
               "X-Writer": f"{os.environ.get('COMPOSER_NODE', 'driver')}/{os.getpid()}"}
    req = urllib.request.Request(f"http://{node}{path}", data=data, method=method,
                                 headers=headers)
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


def put(key: str, value: str) -> dict[str, Any]:
    """Write to the primary; return its acknowledgement (raises ``Unavailable``)."""
    status, answer = request(primary(), "PUT", f"/kv/{quote(key, safe='')}", {"value": value})
    if status != 200:  # the primary refusing a well-formed write is a setup bug, not a fault
        raise RuntimeError(f"PUT {key} on {primary()}: HTTP {status} {answer}")
    return answer


def get(node: str, key: str) -> str | None:
    """Read ``key`` from any node (replicas may be stale); None when absent."""
    status, answer = request(node, "GET", f"/kv/{quote(key, safe='')}")
    if status not in (200, 404):
        raise RuntimeError(f"GET {key} on {node}: HTTP {status} {answer}")
    return answer["value"]


def health(node: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    return request(node, "GET", "/health", timeout=timeout)[1]


def dump(node: str) -> dict[str, str]:
    """The node's whole map (bigger answer: a longer timeout)."""
    return request(node, "GET", "/dump", timeout=5.0)[1]["data"]


def wait_until_up(node: str, seconds: float) -> dict[str, Any] | None:
    """Poll ``node`` until it answers /health; return its health, or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return health(node, timeout=0.5)
        except Unavailable:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)


def ledger_path() -> Path:
    return Path(os.environ.get("COMPOSER_DATA", ".")) / "acked.jsonl"


def record_ack(key: str, value: str) -> None:
    """Append one acknowledged write to the ledger (atomic with concurrent writers)."""
    line = json.dumps({"key": key, "value": value}) + "\n"
    fd = os.open(ledger_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_ledger() -> dict[str, str]:
    """Every acknowledged write so far, key -> value (empty before the first ack)."""
    acked: dict[str, str] = {}
    try:
        text = ledger_path().read_text()
    except FileNotFoundError:
        return acked
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:  # a writer killed mid-line; that write is not on record
            continue
        acked[entry["key"]] = entry["value"]
    return acked
