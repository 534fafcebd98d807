"""The client's view of a process started on an agent (the exec protocol's client side).

Imports aiohttp, ``agent.errors``, ``agent.protocol`` and the standard library. Output
is written as it arrives, to local files or to memory, at most ``log_limit`` bytes per
stream; the rest is read and dropped so the process never blocks on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

import aiohttp

from agent.errors import AgentError
from agent.protocol import STDERR, STDOUT

__all__ = ["RemoteProcess"]

#: Seconds between two looks at a detached process in ``wait``.
_POLL = 0.2


class _Sink:
    """One output stream: a file or memory, keeping the first ``limit`` bytes."""

    def __init__(self, path: Path | None, limit: int) -> None:
        self._file: BinaryIO | None = open(path, "wb") if path is not None else None
        self._memory = bytearray()
        self._room = limit

    def write(self, data: bytes) -> None:
        part = data[:self._room]
        self._room -= len(part)
        if self._file is not None:
            self._file.write(part)
            self._file.flush()  # readers of the log (Process.stdout) see output as it comes
        else:
            self._memory += part

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def value(self) -> bytes:
        return bytes(self._memory)


class RemoteProcess:
    """A process on an agent: its output, stdin, signals and exit code.

    ``returncode`` is None while it runs and negative when a signal killed it, as with
    ``subprocess.Popen``; ``seconds`` is its run time as the agent measured it. A
    detached process has no connection: ``wait`` and ``signal`` go through the agent's
    process list, and its output is in ``<agent root>/logs/<pid>.stdout|.stderr``.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse | None, pid: int, *,
                 stdout: Path | None, stderr: Path | None, log_limit: int, stdin: bool,
                 poll: Callable[[], Awaitable[list[dict]]],
                 signal_detached: Callable[[int, int], Awaitable[None]]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.seconds: float | None = None
        self._ws = ws
        self._stdin = stdin
        self._poll = poll
        self._signal_detached = signal_detached
        self._tasks: set[asyncio.Task] = set()
        self._sinks = {STDOUT: _Sink(stdout, log_limit), STDERR: _Sink(stderr, log_limit)}
        self._reader = asyncio.ensure_future(self._read()) if ws is not None else None

    @property
    def detached(self) -> bool:
        return self._ws is None

    @property
    def stdout_bytes(self) -> bytes:
        """What came on stdout so far, when it goes to memory (no file given)."""
        return self._sinks[STDOUT].value()

    @property
    def stderr_bytes(self) -> bytes:
        return self._sinks[STDERR].value()

    async def write_stdin(self, data: bytes) -> None:
        """Send ``data`` to the process's stdin; returns once the socket took it."""
        ws = self._writable("write to stdin")
        try:
            await ws.send_bytes(data)
        except ConnectionError as exc:
            raise AgentError(f"process {self.pid}: the connection is closed") from exc

    async def close_stdin(self) -> None:
        """Close the process's stdin (it reads end of file)."""
        ws = self._writable("close stdin")
        with contextlib.suppress(ConnectionError):
            await ws.send_str(json.dumps({"close_stdin": True}))

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process group; fire and forget, a no-op once it exited.

        Call it from the event loop's thread. A signal follows the stdin data sent before
        it, so it waits while the process does not read a backlog of stdin.
        """
        if self.returncode is not None:
            return
        if self._ws is None:
            task = asyncio.ensure_future(self._signal_detached(self.pid, int(sig)))
        elif self._ws.closed:
            return
        else:
            task = asyncio.ensure_future(self._ws.send_str(json.dumps({"signal": int(sig)})))
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    async def wait(self) -> int:
        """Return the exit code; raise AgentError if the connection is lost first."""
        if self._reader is None:
            return await self._wait_detached()
        await asyncio.shield(self._reader)
        if self.returncode is None:
            raise AgentError(f"process {self.pid}: lost the connection to the agent "
                             "before the exit code came (the agent kills the process then)")
        return self.returncode

    async def _wait_detached(self) -> int:
        while self.returncode is None:
            listed = {p["pid"]: p for p in await self._poll()}
            if self.pid not in listed:
                raise AgentError(f"process {self.pid} is no longer listed by the agent")
            if not listed[self.pid]["running"]:
                self.returncode = listed[self.pid]["returncode"]
                break
            await asyncio.sleep(_POLL)
        return self.returncode

    def _writable(self, what: str) -> aiohttp.ClientWebSocketResponse:
        if self._ws is None or not self._stdin:
            raise AgentError(f"process {self.pid}: cannot {what}: start it with stdin=True "
                             "and detach=False")
        return self._ws

    def _forget(self, task: asyncio.Task) -> None:
        """Drop a finished signal; a failure means the process or connection is gone,
        which ``wait`` reports."""
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()

    async def _read(self) -> None:
        """Take output and the exit code from the socket until it closes."""
        assert self._ws is not None
        try:
            async for message in self._ws:
                if message.type is aiohttp.WSMsgType.BINARY and message.data:
                    sink = self._sinks.get(message.data[0])
                    if sink is not None:
                        sink.write(message.data[1:])
                elif message.type is aiohttp.WSMsgType.TEXT:
                    end = json.loads(message.data)
                    if isinstance(end, dict) and "exit" in end:
                        self.returncode = end["exit"]
                        self.seconds = end.get("seconds")
                        break
        except (aiohttp.ClientError, ConnectionError, ValueError):
            pass  # wait() reports a missing exit code
        finally:
            for sink in self._sinks.values():
                sink.close()
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await self._ws.close()
