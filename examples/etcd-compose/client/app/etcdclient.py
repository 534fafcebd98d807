"""The client's etcd library: installed as /opt/client/etcdclient.py, imported by the
entrypoint and by every test command under /opt/antithesis/test/v1/main/.

Talks to etcd's HTTP/JSON gRPC gateway (``POST /v3/kv/put``, ``/v3/kv/range``,
``/v3/kv/deleterange``, keys and values base64) with the standard library only.
Endpoints come from ``$ETCD_ENDPOINTS`` (``http://etcd0:2379,...``).

Every request has a short timeout, name lookup included. A refused or reset
connection, a name that does not resolve (a stopped container), a timeout, or an error
answer from etcd ("no leader", "request timed out", ...) raises ``Unavailable``:
expected while faults are on, never a property failure. For a write it is *ambiguous*:
the write may or may not take effect, now or a little later. So the ledger records an
intent before every write and the outcome after it, one JSON line per event:

    {"op": "put-try", "key": K}   {"op": "put-ack", "key": K, "value": V}
    {"op": "del-try", "key": K}   {"op": "del-ack", "key": K}

in ``$CLIENT_STATE_DIR/ledger.jsonl`` (the client container's own disk, shared by every
command), appended with one ``write`` on an O_APPEND descriptor so concurrent drivers
never interleave. Every key is written by one put only, never retried, so a value read
back can only be the one that put wrote.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from antithesis.assertions import sometimes, unreachable
from antithesis.random import get_random

TIMEOUT = 2.0  # seconds per request: ample for a healthy cluster, short beside a fault
PREFIX = "etcd-compose/"  # every key the drivers write: PREFIX<writer token>/<n>


class Unavailable(Exception):
    """No (successful) answer: expected while faults are on, never a property failure."""


def endpoints() -> list[str]:
    """Every etcd member's client URL, from ``$ETCD_ENDPOINTS``."""
    urls = [u.strip().rstrip("/") for u in os.environ.get("ETCD_ENDPOINTS", "").split(",")]
    urls = [u if "://" in u else f"http://{u}" for u in urls if u]
    if not urls:
        raise SystemExit("ETCD_ENDPOINTS is not set (e.g. http://etcd0:2379,http://etcd1:2379)")
    return urls


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(prefix: str) -> str:
    """The range_end that makes a range cover every key starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def resolve(host: str, timeout: float) -> str:
    """``host``'s address, or ``Unavailable`` after ``timeout`` seconds.

    getaddrinfo knows no timeout, and a name that does not resolve (the container is
    stopped or killed) can block it for 10 s or more; so it runs in a daemon thread and
    is given up on in time.
    """
    found: dict[str, Any] = {}

    def lookup() -> None:
        try:
            found["address"] = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]
        except OSError as error:
            found["error"] = error

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(timeout)
    if "address" not in found:
        raise Unavailable(f"{host}: {found.get('error') or f'no address within {timeout:g}s'}")
    address = found["address"]
    return f"[{address}]" if ":" in address else address


def _open(endpoint: str, path: str, data: bytes | None, timeout: float) -> bytes:
    """One HTTP request to ``endpoint``; the whole of it (name lookup too) within
    ``timeout`` seconds. Raises ``Unavailable``."""
    deadline = time.monotonic() + timeout
    url = urllib.parse.urlsplit(endpoint)
    try:
        address = resolve(url.hostname or "", timeout)
        request = urllib.request.Request(
            f"{url.scheme}://{address}:{url.port or 2379}{path}", data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json", "Host": url.netloc})
        with urllib.request.urlopen(request,
                                    timeout=max(0.1, deadline - time.monotonic())) as response:
            return response.read()
    except urllib.error.HTTPError as error:  # etcd said no (no leader, timed out, ...)
        raise Unavailable(
            f"{path} on {endpoint}: HTTP {error.code} {error.read()[:200]!r}") from error
    except (OSError, http.client.HTTPException) as error:
        raise Unavailable(f"{path} on {endpoint}: {error}") from error


def call(endpoint: str, path: str, body: dict | None = None,
         timeout: float = TIMEOUT) -> dict[str, Any]:
    """POST ``body`` as JSON to ``path`` on ``endpoint``; return the answer or raise."""
    answer = _open(endpoint, path, json.dumps(body or {}).encode(), timeout)
    try:
        return json.loads(answer or b"{}")
    except ValueError as error:
        raise Unavailable(f"{path} on {endpoint}: {error}") from error


def put(endpoint: str, key: str, value: str, timeout: float = TIMEOUT) -> int:
    """Put through ``endpoint``; return the revision of the acknowledged write."""
    answer = call(endpoint, "/v3/kv/put", {"key": b64(key), "value": b64(value)}, timeout)
    return int(answer.get("header", {}).get("revision", 0))


def get(endpoint: str, key: str, timeout: float = TIMEOUT) -> str | None:
    """A linearizable read (etcd's default) of ``key``; None if absent."""
    answer = call(endpoint, "/v3/kv/range", {"key": b64(key)}, timeout)
    kvs = answer.get("kvs") or []
    return unb64(kvs[0].get("value", "")) if kvs else None


def delete(endpoint: str, key: str, timeout: float = TIMEOUT) -> int:
    """Delete ``key``; return how many keys etcd says it deleted."""
    answer = call(endpoint, "/v3/kv/deleterange", {"key": b64(key)}, timeout)
    return int(answer.get("deleted", 0))


def scan(endpoint: str, prefix: str = PREFIX, timeout: float = 5.0) -> dict[str, str]:
    """Every key under ``prefix`` with its value, in one linearizable range read."""
    answer = call(endpoint, "/v3/kv/range",
                  {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}, timeout)
    return {unb64(kv["key"]): unb64(kv.get("value", "")) for kv in answer.get("kvs") or []}


def scan_any(seconds: float, prefix: str = PREFIX) -> tuple[str, dict[str, str]]:
    """``scan`` through whichever member answers first, trying them in turn (from a
    random one) for up to ``seconds``; return (that member, the keys and values).
    Raises ``Unavailable`` if none answered."""
    deadline = time.monotonic() + seconds
    order = endpoints()
    first = get_random() % len(order)
    order = order[first:] + order[:first]
    errors: list[str] = []
    while True:
        for endpoint in order:
            try:
                left = deadline - time.monotonic()
                return endpoint, scan(endpoint, prefix, timeout=min(5.0, max(0.5, left)))
            except Unavailable as error:
                errors.append(str(error))
            if time.monotonic() > deadline:
                raise Unavailable(f"no member answered within {seconds:g}s: {errors[-3:]}")
        time.sleep(0.5)


def status(endpoint: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """``/v3/maintenance/status``: the member's revision, leader, raft index."""
    return call(endpoint, "/v3/maintenance/status", {}, timeout)


def healthy(endpoint: str, timeout: float = TIMEOUT) -> bool:
    """Whether ``GET /health`` says true (etcd answers it with a quorum read)."""
    try:
        return json.loads(_open(endpoint, "/health", None, timeout)).get("health") == "true"
    except (Unavailable, ValueError, AttributeError):
        return False


def converged(timeout: float = TIMEOUT) -> tuple[bool, dict[str, Any]]:
    """Whether every member answers, sees the same leader and is at the same revision."""
    seen: dict[str, Any] = {}
    for endpoint in endpoints():
        try:
            answer = status(endpoint, timeout)
            seen[endpoint] = {"revision": int(answer["header"]["revision"]),
                              "leader": str(answer.get("leader", "0"))}
        except (Unavailable, KeyError, ValueError) as error:
            seen[endpoint] = f"unavailable: {error}"
    answers = [s for s in seen.values() if isinstance(s, dict)]
    ok = (len(answers) == len(seen)
          and len({s["revision"] for s in answers}) == 1
          and len({s["leader"] for s in answers}) == 1
          and answers[0]["leader"] != "0")
    return ok, seen


def wait_healthy(seconds: float) -> tuple[list[str], float]:
    """Poll every member's /health for up to ``seconds``; return (the sick ones, time)."""
    start = time.monotonic()
    while True:
        sick = [e for e in endpoints() if not healthy(e)]
        took = time.monotonic() - start
        if not sick or took > seconds:
            return sick, took
        time.sleep(0.5)


def wait_converged(seconds: float) -> tuple[bool, dict[str, Any], float]:
    """Poll ``converged`` for up to ``seconds``; return (ok, last answers, time taken)."""
    start = time.monotonic()
    while True:
        ok, seen = converged()
        took = time.monotonic() - start
        if ok or took > seconds:
            return ok, seen, took
        time.sleep(0.5)


def writer_of(key: str) -> str:
    """The writer token of a driver key (``PREFIX<token>/<n>``)."""
    return key[len(PREFIX):].split("/", 1)[0]


# ---- the ledger -----------------------------------------------------------------------

def ledger_path() -> Path:
    return Path(os.environ.get("CLIENT_STATE_DIR", "/var/lib/etcd-client")) / "ledger.jsonl"


def record(op: str, key: str, **more: Any) -> None:
    """Append one ledger line (atomic beside concurrent writers)."""
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"op": op, "key": key, **more}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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

    def writers(self) -> set[str]:
        """The writer tokens this ledger knows (keys of other writers are not judged)."""
        return {writer_of(k) for k in self.tried | set(self.acked)}

    def deletable(self) -> list[str]:
        """Acknowledged keys no delete has touched yet, in a stable order."""
        return sorted(self.must_exist())


# ---- never called ---------------------------------------------------------------------

def restore_from_snapshot(snapshot: str) -> None:
    """Disaster recovery: rebuild the cluster from a snapshot after losing quorum for good.

    No test command calls this: a 3-member cluster that only loses one member at a time
    never needs it. The assertion below is therefore never evaluated, and a run learns of
    it only from the assertion catalog built into the image (``"hit": false``), where it
    shows up as a property that was never reached (and, being ``unreachable``, holds).
    """
    unreachable("Disaster recovery: the client restored the cluster from a snapshot",
                {"snapshot": snapshot})
    raise NotImplementedError("restoring etcd from a snapshot is not part of this example")
