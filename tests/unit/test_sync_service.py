"""The sync service and the SDK's client over a real WebSocket on loopback: Testground's
semantics (signal_entry 1..N once each, barriers, topics replayed to late subscribers),
its wire format, bounded topics, and a timeline's waits ended with it."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from composer.sync_service import SyncService
from composer.sync_state import SyncState
from composer_sdk._websocket import WebSocket
from composer_sdk.sync import SyncClient, SyncError

pytest.importorskip("websockets")


class Running:
    """A sync service in a loop of its own thread, as the runner holds one."""

    def __init__(self, state: SyncState) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.service = self.call(SyncService(state=state).start())
        self.url = self.service.url

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def in_loop(self, function, *args):
        async def run():
            return function(*args)
        return self.call(run())

    def stop(self) -> None:
        self.call(self.service.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def sync():
    running = Running(SyncState(max_messages=50, max_bytes=10_000))
    yield running
    running.stop()


def test_signal_entry_gives_1_to_n_once_each_under_concurrency(sync):
    def enter(_):
        with SyncClient(sync.url, prefix="run:t1") as client:
            return client.signal_entry("joined")

    with ThreadPoolExecutor(20) as pool:
        seqs = list(pool.map(enter, range(40)))
    assert sorted(seqs) == list(range(1, 41))


def test_a_barrier_releases_every_participant_at_the_last_arrival(sync):
    released: list[float] = []
    lock = threading.Lock()

    def participant(i):
        with SyncClient(sync.url, prefix="run:t2") as client:
            if i == 49:
                time.sleep(0.5)  # the last one is late: nobody may pass before it
            client.signal_and_wait("ready", 50, timeout=30)
            with lock:
                released.append(time.monotonic())

    began = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        list(pool.map(participant, range(50)))
    assert len(released) == 50
    assert min(released) - began >= 0.5, "released before the last participant arrived"
    assert max(released) - min(released) < 1.0


def test_a_late_subscriber_sees_every_message_in_order_then_new_ones(sync):
    with SyncClient(sync.url, prefix="run:t3") as early, \
            SyncClient(sync.url, prefix="run:t3") as late:
        assert [early.publish("peers", {"n": i}) for i in range(5)] == [1, 2, 3, 4, 5]
        messages = late.subscribe("peers", count=7, timeout=10)
        first = [next(messages) for _ in range(5)]
        early.publish("peers", {"n": 5})
        early.publish("peers", {"n": 6})
        rest = list(messages)
    assert [m["n"] for m in first + rest] == list(range(7))


def test_names_are_scoped_so_two_timelines_never_meet(sync):
    with SyncClient(sync.url, prefix="run:a") as a, SyncClient(sync.url, prefix="run:b") as b:
        assert a.signal_entry("s") == 1 and b.signal_entry("s") == 1
        with pytest.raises(TimeoutError, match="barrier 's' \\(waiting for 2\\)"):
            b.barrier("s", 2, timeout=0.3)


def test_a_full_topic_is_an_error_that_says_so(sync):
    with SyncClient(sync.url, prefix="run:t4") as client:
        for i in range(50):
            client.publish("flood", i)
        with pytest.raises(SyncError, match="topic .* is full \\(50 messages"):
            client.publish("flood", 50)
        with pytest.raises(SyncError, match="is full"):
            client.publish("big", "x" * 20_000)
        assert client.publish("other", 1) == 1, "one full topic blocked another"


def test_the_end_of_a_timeline_releases_its_waits_with_an_error_and_forgets_it(sync):
    errors: list[str] = []

    def waiting():
        with SyncClient(sync.url, prefix="run:ending") as client:
            try:
                client.barrier("never", 5, timeout=30)
            except SyncError as exc:
                errors.append(str(exc))

    thread = threading.Thread(target=waiting)
    thread.start()
    with SyncClient(sync.url, prefix="run:other") as other:
        other.signal_entry("kept")
        deadline = time.monotonic() + 10
        while not sync.in_loop(lambda: sync.service.state._barriers.get("run:ending:states:never")) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        ended = sync.in_loop(sync.service.state.end_scope, "run:ending:", "timeline 3 ended")
        thread.join(10)
        assert ended == 1 and errors == ["sync: barrier 'never' (waiting for 5): timeline 3 ended"]
        assert other.signal_entry("kept") == 2, "another timeline's state was dropped"
    assert sync.in_loop(sync.service.state.keys) == 1


def test_testground_clients_get_testground_responses(sync):
    """Requests as testground/sdk-go sends them and responses as testground/sync-service
    writes them (``types.go``: ``Request{id, is_cancel, publish|subscribe|barrier|
    signal_entry}``, ``Response{id, error, publish, subscribe, signal_entry}``, every
    response key present, a subscription's payload as a JSON string)."""
    ws = WebSocket(sync.url + "/any/path")
    ws.settimeout(10)
    prefix = "run:r1:plan:ping:case:quickstart"

    def ask(request: dict) -> dict:
        ws.send(json.dumps(request))
        return json.loads(ws.recv())

    assert ask({"id": "0", "is_cancel": False, "signal_entry": {"state": f"{prefix}:states:ready"}}) \
        == {"id": "0", "error": "", "publish": None, "subscribe": "", "signal_entry": {"seq": 1}}
    assert ask({"id": "1", "is_cancel": False, "barrier": {"state": f"{prefix}:states:ready",
                                                            "target": 1}}) \
        == {"id": "1", "error": "", "publish": None, "subscribe": "", "signal_entry": None}
    assert ask({"id": "2", "is_cancel": False, "publish": {
        "topic": f"{prefix}:topics:peers", "payload": {"ip": "10.77.3.2"}}}) \
        == {"id": "2", "error": "", "publish": {"seq": 1}, "subscribe": "", "signal_entry": None}
    streamed = ask({"id": "3", "is_cancel": False, "subscribe": {"topic": f"{prefix}:topics:peers"}})
    assert streamed["id"] == "3" and streamed["error"] == ""
    assert json.loads(streamed["subscribe"]) == {"ip": "10.77.3.2"}
    ws.send(json.dumps({"id": "3", "is_cancel": True}))  # really ends it, unlike Testground
    ask({"id": "4", "is_cancel": False, "publish": {"topic": f"{prefix}:topics:peers",
                                                    "payload": 2}})
    assert ask({"id": "5", "is_cancel": False, "signal_entry": {"state": "x"}})["id"] == "5", \
        "a cancelled subscription still streamed"
    bad = ask({"id": "6", "is_cancel": False})
    assert bad["id"] == "6" and "one of publish, subscribe, barrier, signal_entry" in bad["error"]
    garbage = ask({"no": "id"})
    assert "not a sync request" in garbage["error"]
    ws.close()


def test_no_service_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("COMPOSER_SYNC_URL", raising=False)
    monkeypatch.delenv("SYNC_SERVICE_HOST", raising=False)
    with pytest.raises(SyncError, match="COMPOSER_SYNC_URL"):
        SyncClient()
    with pytest.raises(SyncError, match="cannot reach the sync service"):
        SyncClient("ws://127.0.0.1:9")


def _sync_command(url: str, *args: str, prefix_env: dict | None = None):
    import os
    import subprocess
    import sys

    env = {**os.environ, "COMPOSER_SYNC_URL": url, "TEST_RUN": "shell", **(prefix_env or {})}
    return subprocess.run([sys.executable, "-m", "composer_sdk.sync_cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_shell_command_does_what_the_sdk_does(sync):
    assert _sync_command(sync.url, "signal-entry", "up").stdout == "1\n"
    assert _sync_command(sync.url, "signal-and-wait", "up", "2").stdout == "2\n"
    assert _sync_command(sync.url, "barrier", "up", "2").returncode == 0
    assert _sync_command(sync.url, "publish", "peers", '{"ip": "10.77.3.2"}').stdout == "1\n"
    assert _sync_command(sync.url, "publish", "peers", "7").stdout == "2\n"
    got = _sync_command(sync.url, "subscribe", "peers", "--count", "2")
    assert got.stdout.splitlines() == ['{"ip": "10.77.3.2"}', "7"]
    with SyncClient(sync.url, prefix="run:shell:plan:composer:case:default") as client:
        assert client.signal_entry("up") == 3, "the shell and the SDK scope names alike"
    late = _sync_command(sync.url, "--timeout", "0.3", "barrier", "up", "9")
    assert late.returncode == 1 and "barrier 'up' (waiting for 9) not done in 0.3s" in late.stderr
    after = _sync_command(sync.url, "barrier", "up", "9", "--timeout", "0.3")  # either place
    assert after.returncode == 1 and "not done in 0.3s" in after.stderr
    bad = _sync_command(sync.url, "publish", "peers", "{not json")
    assert bad.returncode == 2 and "not JSON" in bad.stderr
    nowhere = _sync_command("ws://127.0.0.1:9", "signal-entry", "x")
    assert nowhere.returncode == 1 and "cannot reach the sync service" in nowhere.stderr


def test_without_websockets_the_service_says_what_to_install(monkeypatch):
    """A hand-made environment without the dependency: a usage error naming the package,
    not composer's "internal error" (CI once ran composer from a Python that lacked it)."""
    from composer.errors import ConfigError

    monkeypatch.setitem(sys.modules, "websockets.asyncio.server", None)
    with pytest.raises(ConfigError, match="pip install 'websockets>=12'"):
        asyncio.run(SyncService().start())
