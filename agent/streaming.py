"""The agent's side of an exec WebSocket: one streamed process (see ``agent.protocol``).

Imports aiohttp, ``agent.clock``, ``agent.processes``, ``agent.protocol`` and the
standard library.
Output is forwarded with backpressure: a pump reads the next chunk of a pipe only once
the previous one is written to the socket, so a slow client slows the process down
instead of filling the agent's memory.
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

from agent import clock
from agent.processes import ProcessTable, Started
from agent.protocol import CHUNK, EXEC_KEYS, STDERR, STDOUT

__all__ = ["handle"]

#: Seconds the first message (the exec request) may take to arrive.
_REQUEST_TIMEOUT = 30.0
#: After the process exits, a pipe that stays open but silent this long (a grandchild
#: holds it) is no longer read.
_GRACE = 1.0


async def handle(request: web.Request, table: ProcessTable,
                 sockets: MutableSet[web.WebSocketResponse]) -> web.WebSocketResponse:
    """Serve one exec WebSocket from request to exit code."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sockets.add(ws)
    try:
        await _session(ws, table)
    finally:
        sockets.discard(ws)
        await ws.close()
    return ws


async def _session(ws: web.WebSocketResponse, table: ProcessTable) -> None:
    try:
        message = await ws.receive(timeout=_REQUEST_TIMEOUT)
        if message.type is not WSMsgType.TEXT:
            raise ValueError("the first message must be the exec request, as JSON text")
        spec = _parse(message.data)
    except (ValueError, asyncio.TimeoutError) as exc:
        await _send_error(ws, f"bad exec request: {exc or 'none within the timeout'}")
        return
    env, env_add = spec["env"], dict(spec["env_add"] or {})
    if spec["clock"] is not None:
        if clock.missing() is not None:
            await _send_error(ws, f"clock faults on this node: {clock.missing()}")
            return
        env_add.update(clock.environment(Path(spec["clock"])))
    if env_add:
        env = {**(os.environ if env is None else env), **env_add}
    try:
        started = await table.start(spec["argv"], env=env, cwd=spec["cwd"],
                                    stdin=spec["stdin"], detach=spec["detach"])
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        await _send_error(ws, f"cannot start {spec['argv'][0]!r}: {reason}")
        return
    if started.detached:
        with contextlib.suppress(ConnectionError):  # it runs on regardless
            await ws.send_json({"started": started.pid})
    else:
        await _attached(ws, table, started)


async def _attached(ws: web.WebSocketResponse, table: ProcessTable, started: Started) -> None:
    """Stream until the process exits; if the session ends first (the client went away,
    or the agent shuts down), the process dies with it."""
    lock = asyncio.Lock()  # one sender at a time: aiohttp shares one drain waiter
    pumps: list[_Pump] = []
    inbound = exited = None
    try:
        await ws.send_json({"started": started.pid})
        pumps = [_Pump(started.stdout, STDOUT, ws, lock),
                 _Pump(started.stderr, STDERR, ws, lock)]
        inbound = asyncio.ensure_future(_inbound(ws, table, started))
        exited = asyncio.ensure_future(started.wait())
        await asyncio.wait([inbound, exited], return_when=asyncio.FIRST_COMPLETED)
        if not exited.done():
            return
        await _drain(pumps)
        inbound.cancel()
        async with lock:
            await ws.send_json({"exit": started.returncode, "seconds": started.seconds})
    except ConnectionError:  # the client is gone
        pass
    finally:
        if started.returncode is None:
            table.signal(started, signal.SIGKILL)
        for task in (inbound, exited, *(pump.task for pump in pumps)):
            if task is not None:
                task.cancel()
        started.close_pipes()


class _Pump:
    """Forward one output pipe to the socket, a chunk at a time."""

    def __init__(self, reader: asyncio.StreamReader | None, stream: int,
                 ws: web.WebSocketResponse, lock: asyncio.Lock) -> None:
        self.busy = False
        self.idle_since = time.monotonic()
        self.task = asyncio.ensure_future(self._run(reader, bytes([stream]), ws, lock))

    async def _run(self, reader: asyncio.StreamReader | None, prefix: bytes,
                   ws: web.WebSocketResponse, lock: asyncio.Lock) -> None:
        if reader is None:
            return
        while data := await reader.read(CHUNK):
            self.busy = True
            try:
                async with lock:
                    await ws.send_bytes(prefix + data)
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


async def _inbound(ws: web.WebSocketResponse, table: ProcessTable, started: Started) -> None:
    """Apply the client's messages in order until it closes the socket."""
    async for message in ws:
        if message.type is WSMsgType.BINARY:
            if started.stdin is not None and not started.stdin.is_closing():
                try:
                    started.stdin.write(message.data)
                    await started.stdin.drain()  # a process not reading stdin holds us here
                except ConnectionError:  # it exited or closed its stdin: drop the data
                    pass
        elif message.type is WSMsgType.TEXT:
            try:
                control = json.loads(message.data)
            except ValueError:
                control = None
            if not isinstance(control, dict):
                _complain(started, f"ignored control message {message.data[:200]!r}")
            elif control.get("close_stdin") and started.stdin is not None:
                started.stdin.close()
            elif isinstance(control.get("signal"), int):
                try:
                    table.signal(started, signal.Signals(control["signal"]))
                except ValueError:
                    _complain(started, f"ignored unknown signal {control['signal']!r}")
            else:
                _complain(started, f"ignored control message {message.data[:200]!r}")


def _parse(text: str) -> dict:
    """Return the exec request in ``text`` with defaults filled in; raise ValueError."""
    spec = json.loads(text)
    if not isinstance(spec, dict):
        raise ValueError("the request must be a JSON object")
    unknown = set(spec) - set(EXEC_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(EXEC_KEYS)}")
    spec = {**EXEC_KEYS, **spec}
    argv = spec["argv"]
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise ValueError(f"argv={argv!r}: give a non-empty list of strings")
    for key in ("env", "env_add"):
        if spec[key] is not None and not (isinstance(spec[key], dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in spec[key].items())):
            raise ValueError(f"{key} must map strings to strings, or be null")
    for key in ("cwd", "clock"):
        if spec[key] is not None and not isinstance(spec[key], str):
            raise ValueError(f"{key}={spec[key]!r}: give a path, or null")
    for key in ("stdin", "detach"):
        if not isinstance(spec[key], bool):
            raise ValueError(f"{key}={spec[key]!r}: give true or false")
    if spec["stdin"] and spec["detach"]:
        raise ValueError("a detached process cannot read stdin from the client")
    return spec


async def _send_error(ws: web.WebSocketResponse, error: str) -> None:
    with contextlib.suppress(ConnectionError):
        await ws.send_json({"error": error})


def _complain(started: Started, what: str) -> None:
    print(f"composer-agent: exec {started.pid}: {what}", file=sys.stderr, flush=True)
