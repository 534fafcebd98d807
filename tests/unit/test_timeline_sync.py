"""One timeline's sync service: the environment that leads processes to it (composer's
names and Testground's), network-initialized entered once per instance, as Testground's
sidecar does, and every open wait ended with an error when the timeline ends."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from composer.sync_state import SyncError
from composer.timeline_sync import NETWORK_INITIALIZED, TimelineSync

pytest.importorskip("websockets")


class Loopback:
    """A cluster whose control address is loopback (any free port)."""

    subnet = "127.0.0.0/24"

    def control_host(self, node: str) -> str:
        return "127.0.0.1"

    async def control_socket(self) -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        return sock


GROUPS = {"kv-1": "kv", "kv-2": "kv", "kv-3": "kv", "lb-1": "lb"}


def test_every_process_learns_the_service_and_its_place_in_testgrounds_names(tmp_path):
    sync = TimelineSync(Loopback(), "kvstore", "main", GROUPS, label="00007", shaping=True)
    env = sync.environment([*GROUPS, "client-1"], tmp_path)
    assert env["kv-2"]["COMPOSER_SYNC_URL"] == "ws://127.0.0.1:5050"
    assert (env["kv-2"]["SYNC_SERVICE_HOST"], env["kv-2"]["SYNC_SERVICE_PORT"]) == (
        "127.0.0.1", "5050")
    assert env["kv-2"]["TEST_RUN"].startswith("00007-")
    assert (env["kv-2"]["TEST_PLAN"], env["kv-2"]["TEST_CASE"]) == ("kvstore", "main")
    assert env["kv-2"]["TEST_INSTANCE_COUNT"] == "4" and env["kv-2"]["TEST_SIDECAR"] == "true"
    assert (env["kv-2"]["TEST_GROUP_ID"], env["kv-2"]["TEST_GROUP_INSTANCE_COUNT"]) == ("kv", "3")
    assert (env["lb-1"]["TEST_GROUP_ID"], env["lb-1"]["TEST_GROUP_INSTANCE_COUNT"]) == ("lb", "1")
    assert "TEST_GROUP_ID" not in env["client-1"]  # a driver node is no instance
    # what sdk-go's runtime.ParseRunParams reads beside them (runtime/runparams.go)
    assert env["kv-2"]["TEST_SUBNET"] == "127.0.0.0/24"
    assert time.strptime(env["kv-2"]["TEST_START_TIME"], "%Y-%m-%dT%H:%M:%SZ")
    assert Path(env["kv-2"]["TEST_OUTPUTS_PATH"]) == tmp_path / "nodes" / "kv-2" / "outputs"
    assert (tmp_path / "nodes" / "kv-2" / "outputs").is_dir()
    other = TimelineSync(Loopback(), "kvstore", "main", GROUPS, label="00007")
    assert other.run != sync.run, "two timelines never share a scope"


def test_network_initialized_is_entered_once_per_instance_and_waits_end_with_the_timeline():
    async def main() -> None:
        sync = TimelineSync(Loopback(), "kvstore", "main", GROUPS)
        await sync.start()
        try:
            state = f"{sync.prefix}:states:{NETWORK_INITIALIZED}"
            await asyncio.wait_for(sync.state.barrier(state, len(GROUPS)), 1)
            assert sync.state.signal_entry(state) == len(GROUPS) + 1
            waiting = asyncio.ensure_future(sync.state.barrier(f"{sync.prefix}:states:x", 2))
            await asyncio.sleep(0)
        finally:
            await sync.close()
        with pytest.raises(SyncError, match="the timeline ended"):
            await waiting
        assert sync.state.keys() == 0

    asyncio.run(main())


def test_a_backend_without_a_control_address_gives_no_service_and_no_variables():
    class NoControl:
        subnet = None

        def control_host(self, node: str) -> None:
            return None

        async def control_socket(self) -> None:
            return None

    sync = TimelineSync(NoControl(), "p", "c", GROUPS)
    asyncio.run(sync.start())
    assert sync.service is None and sync.environment(list(GROUPS)) == {}
