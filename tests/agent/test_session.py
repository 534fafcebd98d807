"""Many processes on one exec session: isolation, concurrency, a session that drops."""

from __future__ import annotations

import asyncio
import signal
import socket

import pytest

from composer_agent.client import AgentClient, AgentError
from composer_agent.protocol import HEADER, STDIN, WINDOW
from tests.agent.support import aio, alive, eventually

BOUND = 10  # seconds: generous, the machine is shared; a stall would be forever


async def _round_trip(client: AgentClient) -> None:
    true = await client.start(["true"])
    assert await asyncio.wait_for(true.wait(), BOUND) == 0


@aio
async def test_a_process_not_reading_its_stdin_does_not_stall_the_others(agent,
                                                                         client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        blocked = await client.start(["sleep", "30"], stdin=True)
        writing = asyncio.ensure_future(blocked.write_stdin(bytes(1 << 20)))
        await asyncio.sleep(0.5)  # the credit runs out; the writer waits for acks
        assert not writing.done()
        for _ in range(3):
            await _round_trip(client)
        assert blocked.returncode is None and alive(blocked.pid) and not writing.done()
        blocked.signal(signal.SIGKILL)  # signals do not queue behind unread stdin
        assert await asyncio.wait_for(blocked.wait(), BOUND) == -signal.SIGKILL
        with pytest.raises(AgentError, match="exited"):
            await asyncio.wait_for(writing, BOUND)


@aio
async def test_a_flood_of_output_does_not_stall_the_others(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        flood = await client.start(["cat", "/dev/zero"], log_limit=1000)
        await eventually(lambda: len(flood.stdout_bytes) == 1000, what="the flood flows")
        for _ in range(3):
            await _round_trip(client)
        assert flood.returncode is None
        flood.signal(signal.SIGKILL)
        assert await asyncio.wait_for(flood.wait(), BOUND) == -signal.SIGKILL


@aio
async def test_processes_of_one_client_run_concurrently(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        # Each waits for the next to have started: they can only end all together.
        shells = [await client.start(["sh", "-c", f"read x; echo {n} $x"], stdin=True)
                  for n in range(5)]
        for shell in reversed(shells):
            await shell.write_stdin(b"go\n")
        codes = await asyncio.wait_for(asyncio.gather(*(s.wait() for s in shells)), BOUND)
        assert codes == [0] * 5
        assert [s.stdout_bytes for s in shells] == [b"%d go\n" % n for n in range(5)]
        started = await asyncio.gather(*(client.start(["echo", str(n)]) for n in range(20)))
        await asyncio.gather(*(p.wait() for p in started))
        assert [p.stdout_bytes for p in started] == [b"%d\n" % n for n in range(20)]


@aio
async def test_a_dropped_session_kills_its_processes_and_a_new_one_opens(agent,
                                                                        client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        sleepers = [await client.start(["sleep", "300"]) for _ in range(2)]
        client._exec._ws.get_extra_info("socket").shutdown(socket.SHUT_RDWR)  # it breaks
        for sleeper in sleepers:
            with pytest.raises(AgentError, match="lost the connection"):
                await sleeper.wait()
        await eventually(lambda: not any(alive(s.pid) for s in sleepers),
                         what="the session's processes killed")
        echo = await client.start(["echo", "again"])
        assert await echo.wait() == 0 and echo.stdout_bytes == b"again\n"
        sleepers[0].signal(signal.SIGTERM)  # its session is gone: a no-op, no error


@aio
async def test_a_start_given_up_on_is_killed_once_it_starts(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        await _round_trip(client)  # the session is open
        starting = asyncio.ensure_future(client.start(["sleep", "301"]))
        await asyncio.sleep(0)  # the request is sent; the answer is still to come
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting

        async def killed() -> bool:
            return any(p["argv"] == ["sleep", "301"] and p["returncode"] == -signal.SIGKILL
                       for p in await client.processes())
        await eventually(killed, what="the process nobody waits for killed")


@aio
async def test_a_client_beyond_its_stdin_credit_loses_the_session(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        cat = await client.start(["cat"], stdin=True)
        channel = cat._channel  # bypass the credit, as a broken client would
        await channel.session.send(HEADER.pack(channel.id, STDIN) + bytes(WINDOW + 1))
        with pytest.raises(AgentError, match="lost the connection"):
            await asyncio.wait_for(cat.wait(), BOUND)
        await _round_trip(client)  # on a new session
