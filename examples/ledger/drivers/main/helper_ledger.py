"""Code shared by the ledger drivers (a helper_ file: composer never runs it).

Every request uses a short timeout and turns expected trouble (connection refused or
reset, timeouts while the node is killed or paused) into ``Unavailable``, so drivers
exit 0 through faults. The record ``$COMPOSER_DATA/acked.jsonl`` holds every append
the ledger acknowledged: one JSON line per ack, appended with a single ``write`` on an
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

import composer_sdk as sdk

PORT = 7100
TIMEOUT = 1.0  # seconds: longer than a healthy answer, shorter than a paused node


class Unavailable(Exception):
    """The node did not answer: expected while faults are on, never a driver failure."""


def ledger_node() -> str:
    """The ledger node as ``host:port`` (from ``$COMPOSER_HOSTS_LEDGER``)."""
    hosts = [h for h in os.environ.get("COMPOSER_HOSTS_LEDGER", "").split(",") if h]
    if not hosts:
        raise SystemExit("COMPOSER_HOSTS_LEDGER is not set: run the drivers through composer")
    return hosts[0] if ":" in hosts[0] else f"{hosts[0]}:{PORT}"


def rng() -> random.Random:
    """The driver's randomness: from ``sdk`` so a replay (same COMPOSER_SEED) repeats it."""
    return sdk.AntithesisRandom()


def request(method: str, path: str, body: Any = None, timeout: float = TIMEOUT) -> tuple[int, Any]:
    """Send one JSON request to the ledger; return (status, answer) or raise ``Unavailable``."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{ledger_node()}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:  # the node may die in the middle of an error answer too
            return error.code, json.loads(error.read() or b"null")
        except (OSError, http.client.HTTPException, ValueError) as cut:
            raise Unavailable(f"{method} {path}: {cut}") from cut
    except (OSError, http.client.HTTPException, ValueError) as error:
        # refused, reset, timed out, or the node died mid-answer
        raise Unavailable(f"{method} {path}: {error}") from error


def append(id: str, payload: str) -> int:
    """Append one entry; return its seq once acknowledged (raises ``Unavailable``)."""
    status, answer = request("POST", "/append", {"id": id, "payload": payload})
    if status != 200:  # the ledger refusing a well-formed append is a bug here, not a fault
        raise RuntimeError(f"append {id}: HTTP {status} {answer}")
    return answer["seq"]


def entries(timeout: float = 5.0) -> list[dict[str, Any]]:
    """Every entry of the ledger, in order (a bigger answer: a longer timeout)."""
    return request("GET", "/entries", timeout=timeout)[1]["entries"]


def health(timeout: float = TIMEOUT) -> dict[str, Any]:
    return request("GET", "/health", timeout=timeout)[1]


def wait_until_up(seconds: float) -> dict[str, Any] | None:
    """Poll the node until it answers /health; return its health, or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return health(timeout=1.0)
        except Unavailable:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)


def acked_path() -> Path:
    return Path(os.environ.get("COMPOSER_DATA", ".")) / "acked.jsonl"


def record_ack(id: str, payload: str, seq: int) -> None:
    """Append one acknowledged append to the record (atomic with concurrent writers)."""
    line = json.dumps({"id": id, "payload": payload, "seq": seq}) + "\n"
    fd = os.open(acked_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_acked() -> dict[str, dict[str, Any]]:
    """Every acknowledged append so far, id -> {"payload", "seq"} (empty before the first)."""
    acked: dict[str, dict[str, Any]] = {}
    try:
        text = acked_path().read_text()
    except FileNotFoundError:
        return acked
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:  # a driver killed mid-line; that append is not on record
            continue
        acked[entry["id"]] = entry
    return acked
