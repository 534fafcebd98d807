"""The agent's side of a dial WebSocket: a TCP connection to a node-local port.

Imports aiohttp, ``composer_agent.protocol`` and the standard library. The composer reaches a
service on the node through the agent's one open port, so nothing else on the node has
to be reachable from outside (see ``composer_agent.protocol`` for the exchange).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableSet

from aiohttp import WSMsgType, web

from composer_agent.protocol import CHUNK

__all__ = ["handle", "relay", "address_of"]

#: Seconds a TCP connect may take before the dial fails.
_CONNECT_TIMEOUT = 10.0


async def handle(request: web.Request, sockets: MutableSet[web.WebSocketResponse]
                 ) -> web.WebSocketResponse:
    """Relay between one WebSocket and one TCP connection until either side ends."""
    host, port = address_of(request)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sockets.add(ws)
    try:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), _CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or "timed out"
            with contextlib.suppress(ConnectionError):
                await ws.send_json({"error": f"cannot connect to {host}:{port}: {reason}"})
            return ws
        try:
            await ws.send_json({"dialed": f"{host}:{port}"})
            await relay(ws, reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    finally:
        sockets.discard(ws)
        await ws.close()
    return ws


def address_of(request: web.Request) -> tuple[str, int]:
    """The ``?host=`` (default 127.0.0.1) and ``?port=`` a request names; 400 if bad."""
    try:
        port = int(request.query["port"])
        if not 0 < port < 65536:
            raise ValueError
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(reason=f"port={request.query.get('port')!r}: give 1..65535")
    return request.query.get("host", "127.0.0.1"), port


async def relay(ws: web.WebSocketResponse, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    """Carry bytes both ways until either side ends."""
    outbound = asyncio.ensure_future(_tcp_to_ws(reader, ws))
    inbound = asyncio.ensure_future(_ws_to_tcp(ws, writer))
    try:
        await asyncio.wait([outbound, inbound], return_when=asyncio.FIRST_COMPLETED)
    finally:
        outbound.cancel()
        inbound.cancel()


async def _tcp_to_ws(reader: asyncio.StreamReader, ws: web.WebSocketResponse) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(CHUNK):
            await ws.send_bytes(data)


async def _ws_to_tcp(ws: web.WebSocketResponse, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                writer.write(message.data)
                await writer.drain()
