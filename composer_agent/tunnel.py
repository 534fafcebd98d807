"""The client's side of a dial WebSocket, dressed as an asyncio stream pair.

Imports aiohttp and the standard library. ``open_tunnel`` turns an established dial
WebSocket into an ``asyncio.StreamReader`` and a ``DialWriter`` shaped like
``asyncio.StreamWriter``, so code written for ``asyncio.open_connection`` works through
the agent. Both directions keep backpressure: the reader stops taking frames while its
buffer is full, and ``drain`` waits until written data is on the socket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib

import aiohttp

__all__ = ["DialWriter", "open_tunnel"]

_LIMIT = 1 << 16


class _Valve:
    """The "transport" a StreamReader pauses when its buffer is full."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()

    def pause_reading(self) -> None:
        self.open.clear()

    def resume_reading(self) -> None:
        self.open.set()


class DialWriter:
    """The writing half of a tunnel: ``write``, ``drain``, ``close``, ``wait_closed``.

    Closing closes the WebSocket, and the agent then closes the TCP connection: there is
    no half-close (``can_write_eof`` is False). Once the far end has closed, writes are
    dropped and ``drain`` raises ConnectionResetError, as with a closed transport.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, pump: asyncio.Future) -> None:
        self._ws = ws
        self._pump = pump
        self._queue: collections.deque[bytes] = collections.deque()
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._closing = False
        self._broken: BaseException | None = None
        self._sender = asyncio.ensure_future(self._send())
        pump.add_done_callback(self._far_end_closed)

    def _far_end_closed(self, _: asyncio.Future) -> None:
        if not self._closing:
            self._broken = ConnectionResetError("the far end closed the tunnel")
            self._queue.clear()
            self.close()

    def write(self, data: bytes) -> None:
        if self._broken is not None:
            return
        if self._closing:
            raise RuntimeError("write() on a closed DialWriter")
        if data:
            self._queue.append(bytes(data))
            self._flushed.clear()
            self._wake.set()

    async def drain(self) -> None:
        """Wait until everything written is on the socket; ConnectionResetError if the
        tunnel broke."""
        flushed = asyncio.ensure_future(self._flushed.wait())
        try:
            await asyncio.wait([flushed, self._sender], return_when=asyncio.FIRST_COMPLETED)
        finally:
            flushed.cancel()
        if self._broken is not None or (self._sender.done() and self._queue):
            raise ConnectionResetError(f"the tunnel through the agent is closed: "
                                       f"{self._broken or 'unsent data'}")

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        return self._closing or self._sender.done()

    def close(self) -> None:
        """Send what was written, then close the tunnel."""
        self._closing = True
        self._wake.set()

    async def wait_closed(self) -> None:
        """Wait until the tunnel is closed both ways."""
        await asyncio.wait([self._sender, self._pump])

    async def _send(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    await self._ws.send_bytes(self._queue[0])
                    self._queue.popleft()
                self._flushed.set()
                if self._closing:
                    return
        except (aiohttp.ClientError, ConnectionError) as exc:
            self._broken = exc
        finally:
            self._flushed.set()
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await self._ws.close()


async def _pump(ws: aiohttp.ClientWebSocketResponse, reader: asyncio.StreamReader,
                valve: _Valve) -> None:
    """Feed the reader from the socket; end of file when the tunnel closes."""
    try:
        async for message in ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                reader.feed_data(message.data)
                await valve.open.wait()
    except (aiohttp.ClientError, ConnectionError) as exc:
        reader.set_exception(ConnectionResetError(f"the tunnel broke: {exc}"))
        return
    reader.feed_eof()


def open_tunnel(ws: aiohttp.ClientWebSocketResponse) -> tuple[asyncio.StreamReader, DialWriter]:
    """Return the stream pair over ``ws``, a dial WebSocket past its ``dialed`` answer."""
    reader = asyncio.StreamReader(limit=_LIMIT)
    valve = _Valve()
    reader.set_transport(valve)  # type: ignore[arg-type]
    pump = asyncio.ensure_future(_pump(ws, reader, valve))
    return reader, DialWriter(ws, pump)
