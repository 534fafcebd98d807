"""The TCP proxy: a port on the agent's node, reached through the agent's one port."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap

import pytest

from composer_agent.client import AgentClient, AgentError
from tests.agent.support import aio, eventually

# Listens on the node's loopback only: reachable through the agent, not from outside.
_ECHO = textwrap.dedent("""
    import socket
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    while True:
        connection, _ = server.accept()
        while data := connection.recv(65536):
            connection.sendall(data)
        connection.close()
""")


@aio
async def test_dial_carries_a_tcp_echo(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        echo = await client.start([sys.executable, "-c", _ECHO])
        await eventually(lambda: echo.stdout_bytes.endswith(b"\n"), what="echo port")
        port = int(echo.stdout_bytes)
        for _ in range(2):  # one connection after another
            reader, writer = await client.dial(port)
            chunks = [os.urandom(size) for size in (1, 1000, 65536, 300_000, 7)]
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
                assert await asyncio.wait_for(reader.readexactly(len(chunk)), 30) == chunk
            big = os.urandom(4 << 20)  # both ways at once: backpressure must not deadlock
            sent = asyncio.ensure_future(_send(writer, big))
            assert await asyncio.wait_for(reader.readexactly(len(big)), 60) == big
            await sent
            writer.close()
            await writer.wait_closed()
            assert await reader.read() == b""  # the tunnel ended
        echo.signal(signal.SIGTERM)
        assert await echo.wait() == -signal.SIGTERM


async def _send(writer, data: bytes) -> None:
    for at in range(0, len(data), 100_000):
        writer.write(data[at:at + 100_000])
        await writer.drain()


@aio
async def test_the_server_closing_ends_the_tunnel(agent, client_credentials):
    one_shot = "import socket; s = socket.create_server(('127.0.0.1', 0)); " \
               "print(s.getsockname()[1], flush=True); c, _ = s.accept(); c.sendall(b'bye')"
    async with AgentClient(agent.url, client_credentials) as client:
        server = await client.start([sys.executable, "-c", one_shot])
        await eventually(lambda: server.stdout_bytes.endswith(b"\n"), what="port")
        reader, writer = await client.dial(int(server.stdout_bytes))
        assert await asyncio.wait_for(reader.read(), 30) == b"bye"  # then end of file
        assert await server.wait() == 0
        await asyncio.wait_for(writer.wait_closed(), 30)  # closed without close()
        assert writer.is_closing()
        writer.write(b"lost")  # dropped, as on a closed transport
        with pytest.raises(ConnectionResetError, match="far end"):
            await writer.drain()


@aio
async def test_dialling_a_closed_port_raises(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        with pytest.raises(AgentError, match="cannot connect to 127.0.0.1:1"):
            await client.dial(1)
        with pytest.raises(AgentError, match="400"):
            await client.dial(0)
        assert (await client.heartbeat())["ok"]
