"""The agent's side of a listen WebSocket: a port on the node whose connections composer
takes, the reverse of a dial.

Imports aiohttp, ``composer_agent.dial`` (the relay) and the standard library. The run's
sync service lives on composer's machine, which the nodes may have no route to; the
agent listens for it on the node (``127.0.0.1:5050``, Testground's address), and composer
takes each connection through the agent's one open port:

- ``GET /v1/listen?port=P[&host=H]`` (WebSocket): the agent binds ``H:P`` and answers
  ``{"listening": "H:P"}`` (or ``{"error"}``), then ``{"accepted": ID}`` per connection.
  Closing this WebSocket closes the port and every connection not yet taken.
- ``GET /v1/accepted?id=ID`` (WebSocket): answers ``{"dialed": ...}`` and relays that
  connection's bytes as a dial does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import MutableSet

from aiohttp import web

from composer_agent.dial import address_of, relay

__all__ = ["Accepted", "handle_listen", "handle_accepted"]

#: Seconds an accepted connection waits for composer to take it.
_TAKE_TIMEOUT = 30.0
_ids = itertools.count(1)

#: id -> an accepted connection not yet taken, and the event its end sets
Accepted = dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Event]]


async def handle_listen(request: web.Request, pending: Accepted,
                        sockets: MutableSet[web.WebSocketResponse]) -> web.WebSocketResponse:
    """Listen on a node port for as long as the WebSocket stays open."""
    host, port = address_of(request)
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    sockets.add(ws)
    mine: set[str] = set()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Offer the connection to composer; live until it is over (taken or not)."""
        key, done = str(next(_ids)), asyncio.Event()
        pending[key] = (reader, writer, done)
        mine.add(key)
        try:
            await ws.send_json({"accepted": key})
            await asyncio.wait_for(done.wait(), _TAKE_TIMEOUT)
        except (ConnectionError, asyncio.TimeoutError):
            if pending.pop(key, None) is not None:  # never taken
                writer.close()
                return
            await done.wait()  # taken just now: the relay ends it

    try:
        try:
            server = await asyncio.start_server(accepted, host, port, reuse_address=True)
        except OSError as exc:
            with contextlib.suppress(ConnectionError):
                await ws.send_json({"error": f"cannot listen on {host}:{port}: {exc.strerror}"})
            return ws
        try:
            await ws.send_json({"listening": f"{host}:{port}"})
            async for _ in ws:  # composer sends nothing; this ends when it closes
                pass
        finally:
            server.close()
            for key in mine:
                untaken = pending.pop(key, None)
                if untaken is not None:
                    untaken[1].close()
                    untaken[2].set()
    finally:
        sockets.discard(ws)
        await ws.close()
    return ws


async def handle_accepted(request: web.Request, pending: Accepted,
                          sockets: MutableSet[web.WebSocketResponse]) -> web.WebSocketResponse:
    """Relay one accepted connection to composer."""
    taken = pending.pop(request.query.get("id", ""), None)
    if taken is None:
        raise web.HTTPNotFound(reason=f"id={request.query.get('id')!r}: no such connection "
                                      "(taken already, or waited too long)")
    reader, writer, done = taken
    try:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        try:
            await ws.send_json({"dialed": "accepted"})
            await relay(ws, reader, writer)
        finally:
            sockets.discard(ws)
            await ws.close()
    finally:
        writer.close()
        done.set()
    return ws
