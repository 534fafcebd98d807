"""Code shared by the etcd drivers of both templates (a helper_ file: composer never runs it).

Talks to etcd's HTTP/JSON gRPC gateway (``/v3/kv/put``, ``/v3/kv/range``, ...) with the
standard library only, and imports no SDK, so the ``antithesis`` template (official SDK)
uses it too (its helper_etcd.py is a symlink to this file).

Every request has a short timeout; a refused or reset connection, a timeout, or an error
answer from etcd ("no leader", "request timed out", ...) raises ``Unavailable``. For a
write that is *ambiguous*: it may or may not take effect, now or a little later. So the
ledger records an intent before every write and the outcome after it:

    {"op": "put-try", "key": K}   {"op": "put-ack", "key": K, "value": V}
    {"op": "del-try", "key": K}   {"op": "del-ack", "key": K}

one JSON line per event in ``$COMPOSER_DATA/ledger.jsonl`` (the client node's data
directory, shared by every driver), appended with one ``write`` on an O_APPEND descriptor
so concurrent drivers never interleave. Every key is written by one put only, never
retried, so a value read back can only be the one that put wrote.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PORT = 2379
TIMEOUT = 1.5  # seconds: ample for a healthy cluster, short beside a fault
PREFIX = "composer/"


class Unavailable(Exception):
    """No (successful) answer: expected while faults are on, never a property failure."""


def members() -> list[str]:
    """Every etcd member as ``host:port`` (from ``$COMPOSER_HOSTS_ETCD``)."""
    hosts = [h for h in os.environ.get("COMPOSER_HOSTS_ETCD", "").split(",") if h]
    if not hosts:
        raise SystemExit("COMPOSER_HOSTS_ETCD is not set: run the drivers through composer")
    return [h if ":" in h else f"{h}:{PORT}" for h in hosts]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(prefix: str) -> str:
    """The range_end that makes a range cover every key starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def call(member: str, path: str, body: dict | None = None,
         timeout: float = TIMEOUT) -> dict[str, Any]:
    """POST ``body`` as JSON to ``path`` on ``member``; return the answer or raise."""
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(f"http://{member}{path}", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:  # etcd said no (no leader, timed out, ...)
        raise Unavailable(f"{path} on {member}: HTTP {error.code} {error.read()[:200]!r}") from error
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise Unavailable(f"{path} on {member}: {error}") from error


def put(member: str, key: str, value: str, timeout: float = TIMEOUT) -> int:
    """Put through ``member``; return the revision of the acknowledged write."""
    answer = call(member, "/v3/kv/put", {"key": b64(key), "value": b64(value)}, timeout)
    return int(answer.get("header", {}).get("revision", 0))


def get(member: str, key: str, timeout: float = TIMEOUT) -> str | None:
    """A linearizable read (etcd's default) of ``key`` through ``member``; None if absent."""
    answer = call(member, "/v3/kv/range", {"key": b64(key)}, timeout)
    kvs = answer.get("kvs") or []
    return unb64(kvs[0].get("value", "")) if kvs else None


def delete(member: str, key: str, timeout: float = TIMEOUT) -> int:
    """Delete ``key`` through ``member``; return how many keys were deleted."""
    answer = call(member, "/v3/kv/deleterange", {"key": b64(key)}, timeout)
    return int(answer.get("deleted", 0))


def keys(member: str, prefix: str = PREFIX, timeout: float = 5.0) -> set[str]:
    """Every key under ``prefix`` (a linearizable read)."""
    answer = call(member, "/v3/kv/range",
                  {"key": b64(prefix), "range_end": b64(prefix_end(prefix)), "keys_only": True},
                  timeout)
    return {unb64(kv["key"]) for kv in answer.get("kvs") or []}


def status(member: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """``/v3/maintenance/status``: the member's revision, leader, raft index."""
    return call(member, "/v3/maintenance/status", {}, timeout)


def healthy(member: str, timeout: float = TIMEOUT) -> bool:
    """Whether ``GET /health`` says true (etcd answers it with a quorum read)."""
    try:
        with urllib.request.urlopen(f"http://{member}/health", timeout=timeout) as response:
            return json.loads(response.read()).get("health") == "true"
    except (OSError, http.client.HTTPException, ValueError):
        return False


def converged(timeout: float = TIMEOUT) -> tuple[bool, dict[str, Any]]:
    """Whether every member answers, sees the same leader and is at the same revision."""
    seen: dict[str, Any] = {}
    for member in members():
        try:
            answer = status(member, timeout)
            seen[member] = {"revision": int(answer["header"]["revision"]),
                            "leader": answer.get("leader", "0")}
        except (Unavailable, KeyError, ValueError) as error:
            seen[member] = f"unavailable: {error}"
    answers = [s for s in seen.values() if isinstance(s, dict)]
    ok = (len(answers) == len(seen)
          and len({s["revision"] for s in answers}) == 1
          and len({s["leader"] for s in answers}) == 1
          and answers[0]["leader"] not in ("0", 0))
    return ok, seen


def wait_converged(seconds: float) -> tuple[bool, dict[str, Any], float]:
    """Poll ``converged`` for up to ``seconds``; return (ok, last answers, time taken)."""
    start = time.monotonic()
    while True:
        ok, seen = converged()
        took = time.monotonic() - start
        if ok or took > seconds:
            return ok, seen, took
        time.sleep(0.5)


# ---- the ledger -----------------------------------------------------------------------

def ledger_path() -> Path:
    return Path(os.environ.get("COMPOSER_DATA", ".")) / "ledger.jsonl"


def record(op: str, key: str, **more: Any) -> None:
    """Append one ledger line (atomic beside concurrent writers)."""
    line = json.dumps({"op": op, "key": key, **more}) + "\n"
    fd = os.open(ledger_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class Ledger:
    """What the drivers recorded: which keys must and which may be in etcd now."""

    def __init__(self) -> None:
        self.tried: set[str] = set()
        self.acked: dict[str, str] = {}
        self.del_tried: set[str] = set()
        self.del_acked: set[str] = set()
        try:
            text = ledger_path().read_text()
        except FileNotFoundError:
            text = ""
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # a writer killed mid-line
                continue
            op, key = entry.get("op"), entry.get("key")
            if op == "put-try":
                self.tried.add(key)
            elif op == "put-ack":
                self.acked[key] = entry.get("value")
            elif op == "del-try":
                self.del_tried.add(key)
            elif op == "del-ack":
                self.del_acked.add(key)

    def must_exist(self) -> dict[str, str]:
        """Acknowledged puts never touched by a delete: etcd must have them, unchanged."""
        return {k: v for k, v in self.acked.items() if k not in self.del_tried}

    def may_exist(self) -> set[str]:
        """Every key a put was attempted for (acked or ambiguous) and no delete acked."""
        return (self.tried | set(self.acked)) - self.del_acked

    def deletable(self) -> list[str]:
        """Acknowledged keys no delete has touched yet, in a stable order."""
        return sorted(self.must_exist())
