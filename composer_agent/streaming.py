"""The agent's side of an exec session: many streamed processes on one WebSocket.

Imports aiohttp, ``composer_agent.clock``, ``composer_agent.processes``, ``composer_agent.protocol`` and the
standard library. See ``composer_agent.protocol`` for the exchange. One session per client saves
a TLS handshake per process. Output is forwarded with backpressure: a pump reads the
next chunk of a pipe only once the previous one is written to the socket, so a slow
client slows the process down instead of filling the agent's memory. The loop reading
the socket never waits on one process: stdin goes to the pipe's buffer, bounded by the
client's credit (``WINDOW``), and a task per process acknowledges it once it drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import MutableSet
from pathlib import Path

from aiohttp import WSMsgType, web

from composer_agent import clock
from composer_agent.processes import ProcessTable, Started
from composer_agent.protocol import CHUNK, HEADER, STDERR, STDIN, STDOUT, WINDOW, check_request

__all__ = ["handle", "busy"]

#: After the process exits, a pipe that stays open but silent this long (a grandchild
#: holds it) is no longer read.
_GRACE = 1.0
#: The open sessions by WebSocket, for ``busy``.
_OPEN: dict[web.WebSocketResponse, _Session] = {}


async def handle(request: web.Request, table: ProcessTable,
                 sockets: MutableSet[web.WebSocketResponse]) -> web.WebSocketResponse:
    """Serve one exec session until the client closes it; then kill what still runs."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    session = _OPEN[ws] = _Session(ws, table)
    sockets.add(ws)
    try:
        await session.serve()
    finally:
        sockets.discard(ws)
        del _OPEN[ws]
        session.end()
        await ws.close()
    return ws


def busy(sockets: MutableSet[web.WebSocketResponse]) -> bool:
    """Return whether a session among ``sockets`` has a process whose exit code it has
    not sent yet (at shutdown: wait for those, then close the sessions)."""
    return any(ws in _OPEN and _OPEN[ws].execs for ws in sockets)


class _Session:
    """One client's WebSocket and the attached processes it started, by id."""

    def __init__(self, ws: web.WebSocketResponse, table: ProcessTable) -> None:
        self.ws = ws
        self.table = table
        self.execs: dict[int, _Exec] = {}
        self._lock = asyncio.Lock()  # one sender at a time, first come first served

    async def send(self, message: dict | bytes) -> None:
        """Send a control message or a frame; raise ConnectionError once closed."""
        async with self._lock:
            if isinstance(message, dict):
                await self.ws.send_str(json.dumps(message))
            else:
                await self.ws.send_bytes(message)

    async def serve(self) -> None:
        """Apply the client's messages in order until it closes the socket."""
        try:
            async for message in self.ws:
                if message.type is WSMsgType.BINARY:
                    self._stdin(message.data)
                elif message.type is WSMsgType.TEXT:
                    await self._control(message.data)
        except (_Violation, ConnectionError) as exc:
            with contextlib.suppress(ConnectionError):
                await self.send({"error": f"session ended: {exc}"})

    def end(self) -> None:
        """Kill every attached process still running: it dies with its connection."""
        for process in list(self.execs.values()):
            process.stop()

    def _stdin(self, frame: bytes) -> None:
        if len(frame) < HEADER.size or frame[HEADER.size - 1] != STDIN:
            raise _Violation(f"a binary frame must start with an id and {STDIN} (stdin)")
        process = self.execs.get(HEADER.unpack_from(frame)[0])
        if process is not None:  # else it has exited: the data has nowhere to go
            process.feed(frame[HEADER.size:])

    async def _control(self, text: str) -> None:
        try:
            message = json.loads(text)
            id_ = message["id"]
            if not isinstance(id_, int) or not 0 <= id_ < 1 << 32:
                raise ValueError(f"id={id_!r}")
        except (ValueError, KeyError, TypeError) as exc:
            await self.send({"error": f"ignored {text[:200]!r}: {exc!r}"})
            return
        process = self.execs.get(id_)
        if "start" in message:
            await self._start(id_, message["start"])
        elif process is None:  # it has exited, or never started: nothing to do
            return
        elif message.get("close_stdin"):
            process.close_stdin()
        elif isinstance(message.get("signal"), int):
            process.signal(message["signal"])
        else:
            _complain(process.started, f"ignored control message {text[:200]!r}")

    async def _start(self, id_: int, request: object) -> None:
        """Start the process of step 1; answer ``started`` or ``error`` (step 2)."""
        try:
            if id_ in self.execs:
                raise ValueError(f"bad exec request: id {id_} is in use")
            started = await _spawn(self.table, request)
        except ValueError as exc:
            await self.send({"id": id_, "error": str(exc)})
            return
        if not started.detached:
            self.execs[id_] = _Exec(self, id_, started)  # its pumps start after this send
        await self.send({"id": id_, "started": started.pid})


async def _spawn(table: ProcessTable, request: object) -> Started:
    """Start the process of exec request ``request``; ValueError saying why not."""
    try:
        spec = check_request(request)
    except ValueError as exc:
        raise ValueError(f"bad exec request: {exc}") from None
    env, env_add = spec["env"], dict(spec["env_add"] or {})
    if spec["clock"] is not None:
        if clock.missing() is not None:
            raise ValueError(f"clock faults on this node: {clock.missing()}")
        env_add.update(clock.environment(Path(spec["clock"])))
    if env_add:
        env = {**(os.environ if env is None else env), **env_add}
    try:
        return await table.start(spec["argv"], env=env, cwd=spec["cwd"],
                                 stdin=spec["stdin"], detach=spec["detach"])
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"cannot start {spec['argv'][0]!r}: {reason}") from None


class _Violation(Exception):
    """The client broke the protocol: the session ends."""


class _Exec:
    """One attached process of a session: its pumps, its stdin credit, its exit."""

    def __init__(self, session: _Session, id_: int, started: Started) -> None:
        self.session = session
        self.id = id_
        self.started = started
        self._received = self._acked = 0  # stdin bytes, for the credit of step 6
        self._fed = asyncio.Event()
        self._pumps = [_Pump(started.stdout, HEADER.pack(id_, STDOUT), session),
                       _Pump(started.stderr, HEADER.pack(id_, STDERR), session)]
        self._acks = asyncio.ensure_future(self._acknowledge())
        self._task = asyncio.ensure_future(self._run())

    def feed(self, data: bytes) -> None:
        """Hand stdin data to the pipe, or drop it if stdin is closed."""
        self._received += len(data)
        if self._received - self._acked > WINDOW:
            raise _Violation(f"process {self.id}: stdin beyond the credit of {WINDOW} bytes")
        stdin = self.started.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(data)
        self._fed.set()

    def close_stdin(self) -> None:
        if self.started.stdin is not None:
            self.started.stdin.close()  # after what is buffered
        self._fed.set()

    def signal(self, number: int) -> None:
        try:
            self.session.table.signal(self.started, signal.Signals(number))
        except ValueError:
            _complain(self.started, f"ignored unknown signal {number!r}")

    def stop(self) -> None:
        """Kill the process if it runs; drop its tasks and pipes."""
        self.session.execs.pop(self.id, None)
        if self.started.returncode is None:
            self.session.table.signal(self.started, signal.SIGKILL)
        for task in (self._acks, self._task, *(pump.task for pump in self._pumps)):
            if task is not asyncio.current_task():
                task.cancel()
        self.started.close_pipes()

    async def _run(self) -> None:
        try:
            await self.started.wait()
            await _drain(self._pumps)
            await self.session.send({"id": self.id, "exit": self.started.returncode,
                                     "seconds": self.started.seconds})
        except ConnectionError:  # the session is gone, and ``end`` stops us
            pass
        finally:
            self.stop()

    async def _acknowledge(self) -> None:
        """Acknowledge stdin once it left the agent's buffer (step 6)."""
        while True:
            await self._fed.wait()
            self._fed.clear()
            stdin = self.started.stdin
            buffered = 0
            if stdin is not None and not stdin.is_closing():
                with contextlib.suppress(ConnectionError):
                    await stdin.drain()  # a process not reading its stdin holds us here
                if not stdin.is_closing():
                    buffered = stdin.transport.get_write_buffer_size()
            done = self._received - buffered
            if done > self._acked:
                credit, self._acked = done - self._acked, done
                with contextlib.suppress(ConnectionError):
                    await self.session.send({"id": self.id, "ack": credit})


class _Pump:
    """Forward one output pipe to the socket, a chunk at a time."""

    def __init__(self, reader: asyncio.StreamReader | None, prefix: bytes,
                 session: _Session) -> None:
        self.busy = False
        self.idle_since = time.monotonic()
        self.task = asyncio.ensure_future(self._run(reader, prefix, session))

    async def _run(self, reader: asyncio.StreamReader | None, prefix: bytes,
                   session: _Session) -> None:
        if reader is None:
            return
        while data := await reader.read(CHUNK):
            self.busy = True
            try:
                await session.send(prefix + data)
            except ConnectionError:
                return
            self.busy = False
            self.idle_since = time.monotonic()


async def _drain(pumps: list[_Pump]) -> None:
    """Wait until every pipe is at end of file, or silent for ``_GRACE`` after the exit."""
    while pending := [pump for pump in pumps if not pump.task.done()]:
        await asyncio.wait([pump.task for pump in pending], timeout=_GRACE)
        for pump in pending:
            if not pump.busy and time.monotonic() - pump.idle_since >= _GRACE:
                pump.task.cancel()  # waiting for a read: nothing is lost
                with contextlib.suppress(asyncio.CancelledError):
                    await pump.task


def _parse(text: str) -> dict:
    """Return the exec request in ``text`` with defaults filled in; raise ValueError."""
    return check_request(json.loads(text))


def _complain(started: Started, what: str) -> None:
    print(f"composer-agent: exec {started.pid}: {what}", file=sys.stderr, flush=True)
