"""Coordination between nodes: barriers, counters and topics on the run's sync service.

Testground's sync API for drivers and services: ``signal_entry`` (1..N, once each),
``barrier``, ``signal_and_wait``, ``publish``, ``subscribe`` (a late subscriber gets the
topic from its first message), ``publish_subscribe``; every wait has a timeout and says
what it waited for. The service is found at ``$COMPOSER_SYNC_URL``, else
``ws://$SYNC_SERVICE_HOST:$SYNC_SERVICE_PORT`` as Testground's clients find it, and
names are scoped as Testground's Go SDK scopes them (``run:$TEST_RUN:plan:$TEST_PLAN:
case:$TEST_CASE:states:NAME``, ``...:topics:NAME``), so a Go plan and a Python driver of
one timeline meet on the same states. Standard library only.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._websocket import WebSocket

__all__ = ["SyncClient", "SyncError", "signal_entry", "barrier", "signal_and_wait",
           "publish", "subscribe", "publish_subscribe", "configure_network"]

#: seconds a wait lasts unless told otherwise
DEFAULT_TIMEOUT = 60.0


class SyncError(Exception):
    """The sync service refused a request or ended it (its timeline ended)."""


def service_url() -> str:
    url = os.environ.get("COMPOSER_SYNC_URL")
    if url:
        return url
    host = os.environ.get("SYNC_SERVICE_HOST")
    if not host:
        raise SyncError("no sync service: COMPOSER_SYNC_URL (or SYNC_SERVICE_HOST) is not "
                        "set; composer sets it for every command and service it starts")
    return f"ws://{host}:{os.environ.get('SYNC_SERVICE_PORT', '5050')}"


def scope() -> str:
    """The prefix of every name, as Testground's Go SDK builds it."""
    env = os.environ
    return (f"run:{env.get('TEST_RUN', 'default')}:plan:{env.get('TEST_PLAN', 'composer')}"
            f":case:{env.get('TEST_CASE', 'default')}")


class SyncClient:
    """One connection to the sync service (blocking; one thread at a time)."""

    def __init__(self, url: str | None = None, prefix: str | None = None,
                 connect_timeout: float = 10.0) -> None:
        self.url = url or service_url()
        self.prefix = scope() if prefix is None else prefix
        try:
            self._ws = WebSocket(self.url, connect_timeout)
        except OSError as exc:
            raise SyncError(f"cannot reach the sync service at {self.url}: {exc}") from None
        self._ids = itertools.count()
        #: responses read while waiting for another request's
        self._pending: dict[str, deque[dict]] = defaultdict(deque)

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def state(self, name: str) -> str:
        return f"{self.prefix}:states:{name}"

    def topic(self, name: str) -> str:
        return f"{self.prefix}:topics:{name}"

    def signal_entry(self, state: str, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Enter ``state``; return how many have entered it, this one included (1..N)."""
        reply = self._ask({"signal_entry": {"state": self.state(state)}}, timeout,
                          f"signal_entry {state!r}")
        return int(reply["signal_entry"]["seq"])

    def barrier(self, state: str, target: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until ``target`` have entered ``state``."""
        self._ask({"barrier": {"state": self.state(state), "target": int(target)}}, timeout,
                  f"barrier {state!r} (waiting for {target})")

    def signal_and_wait(self, state: str, target: int,
                        timeout: float = DEFAULT_TIMEOUT) -> int:
        """Enter ``state`` and wait until ``target`` have; return this one's number."""
        began = time.monotonic()
        seq = self.signal_entry(state, timeout)
        self.barrier(state, target, max(0.0, timeout - (time.monotonic() - began)))
        return seq

    def publish(self, topic: str, payload: Any, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Append ``payload`` (anything JSON) to ``topic``; return its position (1..)."""
        reply = self._ask({"publish": {"topic": self.topic(topic), "payload": payload}},
                          timeout, f"publish to {topic!r}")
        return int(reply["publish"]["seq"])

    def subscribe(self, topic: str, count: int | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> Iterator[Any]:
        """The messages of ``topic`` from its first, in order: ``count`` of them (or
        for ever), each within ``timeout`` seconds of the previous."""
        request_id = self._send({"subscribe": {"topic": self.topic(topic)}})
        try:
            for _ in range(count) if count is not None else itertools.count():
                reply = self._reply(request_id, timeout, f"subscription to {topic!r}")
                yield json.loads(reply["subscribe"])
        finally:
            try:
                self._ws.send(json.dumps({"id": request_id, "is_cancel": True}))
            except OSError:
                pass
            self._pending.pop(request_id, None)

    def publish_subscribe(self, topic: str, payload: Any, count: int,
                          timeout: float = DEFAULT_TIMEOUT) -> tuple[int, list[Any]]:
        """Publish ``payload`` to ``topic`` and read its first ``count`` messages (every
        participant's, when each publishes one)."""
        seq = self.publish(topic, payload, timeout)
        return seq, list(self.subscribe(topic, count, timeout))

    def configure_network(self, *, latency: float = 0.0, jitter: float = 0.0,
                          bandwidth: float = 0.0, loss: float = 0.0, corrupt: float = 0.0,
                          reorder: float = 0.0, duplicate: float = 0.0,
                          filter: str = "accept", enabled: bool = True,
                          rules: Sequence[Mapping[str, Any]] = (),
                          callback_state: str = "", timeout: float = DEFAULT_TIMEOUT) -> None:
        """Shape this node's own link (what it sends to its peers) and return once
        composer applied it: ``latency`` and ``jitter`` in seconds, ``bandwidth`` in
        bits/s (0: unlimited), ``loss``, ``corrupt``, ``reorder``, ``duplicate`` in
        percent, ``filter`` accept/reject/drop; ``rules``: the same per subnet
        (``{"subnet": "10.77.3.2/32", "filter": "drop"}``), first match wins;
        ``enabled=False`` cuts the link. ``SyncError`` names a field the backend cannot
        apply. Testground's ``ConfigureNetwork``: the same request on the same topic."""
        host = os.environ.get("COMPOSER_NODE") or socket.gethostname()
        config = {"network": "default", "enable": enabled, "callback_state": callback_state,
                  "default": _link_shape(dict(latency=latency, jitter=jitter,
                                              bandwidth=bandwidth, loss=loss, corrupt=corrupt,
                                              reorder=reorder, duplicate=duplicate,
                                              filter=filter)),
                  "rules": [{**_link_shape(rule), "subnet": rule.get("subnet")} for rule in rules]}
        began = time.monotonic()
        seq = self.publish(f"network:{host}", config, timeout)
        left = max(0.1, timeout - (time.monotonic() - began))
        for answer in self.subscribe(f"network-result:{host}", timeout=left):
            if answer.get("seq") == seq:
                if answer.get("error"):
                    raise SyncError(answer["error"])
                return

    # -- the wire ----------------------------------------------------------------------

    def _send(self, body: dict) -> str:
        request_id = str(next(self._ids))
        self._ws.send(json.dumps({"id": request_id, "is_cancel": False, **body}))
        return request_id

    def _ask(self, body: dict, timeout: float, what: str) -> dict:
        return self._reply(self._send(body), timeout, what)

    def _reply(self, request_id: str, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while not self._pending[request_id]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"sync: {what} not done in {timeout:g}s")
            self._ws.settimeout(left)
            try:
                reply = json.loads(self._ws.recv())
            except socket.timeout:
                raise TimeoutError(f"sync: {what} not done in {timeout:g}s") from None
            except OSError as exc:
                raise SyncError(f"sync: {what}: {exc}") from None
            self._pending[str(reply.get("id"))].append(reply)
        reply = self._pending[request_id].popleft()
        if reply.get("error"):
            raise SyncError(f"sync: {what}: {reply['error']}")
        return reply


_FILTERS = {"accept": 0, "reject": 1, "drop": 2}


def _link_shape(shape: Mapping[str, Any]) -> dict[str, Any]:
    """Testground's LinkShape JSON (nanoseconds, bits/s, filter as a number)."""
    unknown = set(shape) - {"latency", "jitter", "bandwidth", "loss", "corrupt", "reorder",
                            "duplicate", "filter", "subnet"}
    if unknown:
        raise ValueError(f"configure_network: unknown field {sorted(unknown)[0]!r}")
    action = shape.get("filter", "accept")
    if action not in _FILTERS:
        raise ValueError(f"configure_network: filter must be accept, reject or drop, not {action!r}")
    return {"latency": round(float(shape.get("latency", 0)) * 1e9),
            "jitter": round(float(shape.get("jitter", 0)) * 1e9),
            "bandwidth": round(float(shape.get("bandwidth", 0))),
            "filter": _FILTERS[action],
            **{k: float(shape.get(k, 0)) for k in ("loss", "corrupt", "reorder", "duplicate")}}


_client: SyncClient | None = None


def _default() -> SyncClient:
    global _client
    if _client is None:
        _client = SyncClient()
    return _client


def signal_entry(state: str, timeout: float = DEFAULT_TIMEOUT) -> int:
    return _default().signal_entry(state, timeout)


def barrier(state: str, target: int, timeout: float = DEFAULT_TIMEOUT) -> None:
    _default().barrier(state, target, timeout)


def signal_and_wait(state: str, target: int, timeout: float = DEFAULT_TIMEOUT) -> int:
    return _default().signal_and_wait(state, target, timeout)


def publish(topic: str, payload: Any, timeout: float = DEFAULT_TIMEOUT) -> int:
    return _default().publish(topic, payload, timeout)


def subscribe(topic: str, count: int | None = None,
              timeout: float = DEFAULT_TIMEOUT) -> Iterator[Any]:
    return _default().subscribe(topic, count, timeout)


def publish_subscribe(topic: str, payload: Any, count: int,
                      timeout: float = DEFAULT_TIMEOUT) -> tuple[int, list[Any]]:
    return _default().publish_subscribe(topic, payload, count, timeout)


def configure_network(**shape: Any) -> None:
    _default().configure_network(**shape)


configure_network.__doc__ = SyncClient.configure_network.__doc__
