"""How an agent ends: heartbeat loss and SIGTERM both kill everything it started."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from composer_agent.client import AgentClient
from tests.agent.support import aio, alive

TIMEOUT = 2
MARGIN = 5  # generous: the claim is "within the timeout plus a margin", not a measure


@pytest.mark.slow
@aio
async def test_heartbeat_loss_kills_the_processes_and_ends_the_agent(agents,
                                                                     client_credentials):
    agent = agents(heartbeat_timeout=TIMEOUT)
    async with AgentClient(agent.url, client_credentials) as client:
        assert (await client.heartbeat())["timeout"] == TIMEOUT
        detached = await client.start(["sleep", "300"], detach=True)
        attached = await client.start(["sh", "-c", "sleep 300 & wait"])
        for _ in range(16):  # beating, the agent outlives its timeout twice over
            await client.heartbeat()
            await asyncio.sleep(0.25)
        assert agent.process.poll() is None
        # Silence: the attached connection stays open, only the heartbeats stop.
        status = await asyncio.to_thread(agent.process.wait, TIMEOUT + MARGIN)
        assert status == 0
        assert await attached.wait() == -signal.SIGKILL
    assert not alive(detached.pid) and not alive(attached.pid)
    assert agent.namespace.pids() == []  # the group's grandchild `sleep` too
    assert "heartbeat lost; killed 2 running process(es)" in agent.stderr.read_text()


@aio
async def test_sigterm_kills_the_processes_and_removes_the_default_root(agents,
                                                                        client_credentials):
    agent = agents()  # no --root: a temporary directory
    async with AgentClient(agent.url, client_credentials) as client:
        root = (await client.heartbeat())["root"]
        detached = await client.start(["sleep", "300"], detach=True)
        attached = await client.start(["sleep", "300"])
        assert os.path.isdir(f"{root}/logs")
        assert await asyncio.to_thread(agent.stop) == 0
        assert await attached.wait() == -signal.SIGKILL
    assert not alive(detached.pid) and not alive(attached.pid)
    assert not os.path.exists(root)
    assert "stopped; killed 2 running process(es)" in agent.stderr.read_text()
