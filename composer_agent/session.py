"""The client's side of an exec session: one WebSocket to the agent, many processes.

Imports aiohttp, ``composer_agent.errors``, ``composer_agent.protocol`` and the standard library. A new
WebSocket costs a TCP connection and a TLS handshake with client certificates, most of
an exec round trip; an ``ExecSession`` pays that once per client and names each process
by an id (see ``composer_agent.protocol``). Its reader never waits on a process: output goes
straight to files or memory, so a process whose output nobody waits for cannot hold
up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import struct
from pathlib import Path
from typing import BinaryIO

import aiohttp

from composer_agent.errors import AgentError, AgentUnreachable
from composer_agent.protocol import CHUNK, HEADER, STDERR, STDIN, STDOUT, WINDOW

__all__ = ["Channel", "ExecSession"]


class _Sink:
    """One output stream: a file or memory, keeping the first ``limit`` bytes."""

    def __init__(self, path: Path | None, limit: int) -> None:
        self._file: BinaryIO | None = open(path, "wb") if path is not None else None
        self._memory = bytearray()
        self._room = limit

    def write(self, data: memoryview) -> None:
        part = data[:self._room]
        self._room -= len(part)
        if self._file is None:
            self._memory += part
        elif part:
            self._file.write(part)
            self._file.flush()  # readers of the log (Process.stdout) see output as it comes

    def close(self) -> None:
        self._room = 0  # what comes later is dropped
        if self._file is not None:
            self._file.close()

    def value(self) -> bytes:
        return bytes(self._memory)


class Channel:
    """The client's end of one attached process: its output, stdin credit and end.

    ``error`` says why no exit code came, once ``ended`` is set without one.
    """

    def __init__(self, stdout: Path | None, stderr: Path | None, limit: int) -> None:
        self.id = -1
        self.session: ExecSession | None = None
        self.returncode: int | None = None
        self.seconds: float | None = None
        self.error: str | None = None
        self.ended = asyncio.Event()
        out = _Sink(stdout, limit)  # a file that cannot be opened fails before the start
        try:
            self.sinks = {STDOUT: out, STDERR: _Sink(stderr, limit)}
        except BaseException:
            out.close()
            raise
        self._unacked = 0
        self._credit = asyncio.Event()

    async def send_stdin(self, data: bytes) -> None:
        """Send ``data`` within the credit of step 6; ConnectionError once ended."""
        assert self.session is not None
        view = memoryview(data)
        for at in range(0, len(view), CHUNK):
            chunk = view[at:at + CHUNK]
            while self._unacked + len(chunk) > WINDOW and not self.ended.is_set():
                self._credit.clear()
                await self._credit.wait()
            if self.ended.is_set():
                raise ConnectionResetError(self.error or "it has exited")
            self._unacked += len(chunk)
            await self.session.send(HEADER.pack(self.id, STDIN) + chunk)

    def acked(self, count: int) -> None:
        self._unacked -= count
        self._credit.set()

    def end(self, returncode: int | None, seconds: float | None, error: str | None) -> None:
        """Take the exit code, or why none will come; close the output."""
        self.returncode, self.seconds, self.error = returncode, seconds, error
        for sink in self.sinks.values():
            sink.close()
        self.ended.set()
        self._credit.set()


class ExecSession:
    """One exec WebSocket and the processes started over it, by id; ``open`` until it
    closes, which ends (and on the agent kills) every one of them."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, url: str, timeout: float) -> None:
        self.url = url
        self._ws = ws
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._answers: dict[int, asyncio.Future[dict]] = {}
        self._channels: dict[int, Channel] = {}
        self._tasks: set[asyncio.Future] = set()
        self._closing = False
        self._reader = asyncio.ensure_future(self._read())

    @property
    def open(self) -> bool:
        return not self._reader.done()

    async def start(self, request: dict, channel: Channel | None) -> int:
        """Start the process of ``request`` (attached: output to ``channel``); return
        its pid. AgentError if the agent refused, AgentUnreachable if it did not answer."""
        id_ = next(self._ids) % (1 << 32)
        answer = self._answers[id_] = asyncio.get_running_loop().create_future()
        if channel is not None:  # before the request: output may follow the answer at once
            channel.id, channel.session = id_, self
            self._channels[id_] = channel
        try:
            try:
                await self.send({"id": id_, "start": request})
                message = await asyncio.wait_for(answer, self._timeout)
            except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError) as exc:
                raise AgentUnreachable(f"{self.url}: {type(exc).__name__}: {exc}") from exc
            if "started" not in message:
                raise AgentError(f"{self.url}: {message.get('error', message)}")
        except BaseException:  # if it started after all, ``_control`` has it killed
            if channel is not None and self._channels.pop(id_, None) is not None:
                channel.end(None, None, "it did not start")
            raise
        finally:
            self._answers.pop(id_, None)
        return message["started"]

    async def send(self, message: dict | bytes) -> None:
        """Send a control message or a frame; ConnectionError once the session closed."""
        if isinstance(message, dict):
            await self._ws.send_str(json.dumps(message))
        else:
            await self._ws.send_bytes(message)

    def send_soon(self, message: dict) -> None:
        """Send ``message`` in the background; a failure means the session is gone,
        which the processes waiting on it report."""
        task = asyncio.ensure_future(self.send(message))
        self._tasks.add(task)
        task.add_done_callback(self._sent)

    async def close(self, timeout: float) -> None:
        """Close the WebSocket, waiting at most ``timeout`` seconds for the agent to
        agree; the agent kills the attached processes."""
        self._closing = True
        closing = asyncio.ensure_future(self._ws.close())
        await asyncio.wait([closing, self._reader], timeout=timeout)
        for task in (closing, self._reader):
            task.cancel()  # an agent that does not answer: drop the connection
        await asyncio.wait([closing, self._reader])
        if not closing.cancelled():
            closing.exception()

    def _sent(self, task: asyncio.Future) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()

    async def _read(self) -> None:
        """Take output, answers, acks and exit codes until the socket closes."""
        error = "lost the connection to the agent before the exit code came (the agent " \
                "kills the process then)"
        try:
            async for message in self._ws:
                if message.type is aiohttp.WSMsgType.BINARY:
                    id_, stream = HEADER.unpack_from(message.data)
                    channel = self._channels.get(id_)
                    if channel is not None and stream in channel.sinks:
                        channel.sinks[stream].write(memoryview(message.data)[HEADER.size:])
                elif message.type is aiohttp.WSMsgType.TEXT:
                    self._control(json.loads(message.data))
        except (aiohttp.ClientError, ConnectionError, ValueError, struct.error) as exc:
            error = f"{error}: {type(exc).__name__}: {exc}"
        finally:
            for answer in self._answers.values():
                if not answer.done():
                    answer.set_exception(AgentUnreachable(
                        f"{self.url}: the exec session closed without an answer"))
            for channel in self._channels.values():
                channel.end(None, None, error)
            self._channels.clear()
            if not self._closing:  # else ``close`` does it
                with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                    await self._ws.close()

    def _control(self, message: object) -> None:
        if not isinstance(message, dict):
            raise ValueError(f"the agent sent {message!r}")
        id_ = message.get("id")
        if "ack" in message:
            if (channel := self._channels.get(id_)) is not None:
                channel.acked(message["ack"])
        elif "exit" in message:
            if (channel := self._channels.pop(id_, None)) is not None:
                channel.end(message["exit"], message.get("seconds"), None)
        elif id_ in self._answers:
            if not self._answers[id_].done():
                self._answers[id_].set_result(message)
        elif "started" in message:  # its start timed out or was cancelled: kill it
            self.send_soon({"id": id_, "signal": int(signal.SIGKILL)})
