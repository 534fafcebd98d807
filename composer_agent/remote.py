"""The client's view of a process started on an agent.

Imports ``composer_agent.errors``, ``composer_agent.protocol``, ``composer_agent.session`` and the standard
library. An attached process lives on its client's exec session (``composer_agent.session``),
which writes its output as it arrives, to local files or to memory, at most
``log_limit`` bytes per stream; the rest is read and dropped so the process never
blocks on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

from composer_agent.errors import AgentError
from composer_agent.protocol import STDERR, STDOUT
from composer_agent.session import Channel

__all__ = ["RemoteProcess"]

#: Seconds between two looks at a detached process in ``wait``.
_POLL = 0.2


class RemoteProcess:
    """A process on an agent: its output, stdin, signals and exit code.

    ``returncode`` is None while it runs and negative when a signal killed it, as with
    ``subprocess.Popen``; ``seconds`` is its run time as the agent measured it. A
    detached process has no channel: ``wait`` and ``signal`` go through the agent's
    process list, and its output is in ``<agent root>/logs/<pid>.stdout|.stderr``.
    """

    def __init__(self, channel: Channel | None, pid: int, *, stdin: bool,
                 poll: Callable[[], Awaitable[list[dict]]],
                 signal_by_pid: Callable[[int, int], Awaitable[bool]]) -> None:
        self.pid = pid
        self._channel = channel
        self._returncode: int | None = None  # of a detached process
        self._stdin = stdin
        self._stdin_lock = asyncio.Lock()  # whole writes, in order, then the close
        self._poll = poll
        self._signal_by_pid = signal_by_pid
        self._tasks: set[asyncio.Task] = set()

    @property
    def detached(self) -> bool:
        return self._channel is None

    @property
    def returncode(self) -> int | None:
        return self._returncode if self._channel is None else self._channel.returncode

    @property
    def seconds(self) -> float | None:
        return None if self._channel is None else self._channel.seconds

    @property
    def stdout_bytes(self) -> bytes:
        """What came on stdout so far, when it goes to memory (no file given)."""
        return b"" if self._channel is None else self._channel.sinks[STDOUT].value()

    @property
    def stderr_bytes(self) -> bytes:
        return b"" if self._channel is None else self._channel.sinks[STDERR].value()

    async def write_stdin(self, data: bytes) -> None:
        """Send ``data`` to the process's stdin; returns once the socket took it.

        Waits while the agent holds ``protocol.WINDOW`` bytes the process has not read
        yet; raises AgentError once the process has exited or the connection is lost.
        """
        channel = self._writable("write to stdin")
        async with self._stdin_lock:
            try:
                await channel.send_stdin(data)
            except ConnectionError as exc:
                raise AgentError(f"process {self.pid}: cannot write to stdin: "
                                 f"{exc or 'the connection is closed'}") from exc

    async def close_stdin(self) -> None:
        """Close the process's stdin (it reads end of file after the data sent before)."""
        channel = self._writable("close stdin")
        async with self._stdin_lock:
            if not channel.ended.is_set() and channel.session is not None:
                with contextlib.suppress(ConnectionError):
                    await channel.session.send({"id": channel.id, "close_stdin": True})

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process group; fire and forget, a no-op once it exited.

        Call it from the event loop's thread. The agent signals at once, after the
        stdin data sent before has reached it (not necessarily the process).
        """
        if self.returncode is not None:
            return
        if self._channel is None:
            task = asyncio.ensure_future(self._signal_by_pid(self.pid, int(sig)))
            self._tasks.add(task)
            task.add_done_callback(self._forget)
        elif not self._channel.ended.is_set() and self._channel.session is not None:
            self._channel.session.send_soon({"id": self._channel.id, "signal": int(sig)})

    async def end_leftovers(self) -> bool:
        """Once the process has exited, SIGKILL its group on the agent; whatever got it
        was left running. (The agent signals a reaped leader's group only while no
        process has its pid, and none can while the group lives on.)"""
        if self.returncode is None:
            return False
        return await self._signal_by_pid(self.pid, int(signal.SIGKILL))

    async def wait(self) -> int:
        """Return the exit code; raise AgentError if the connection is lost first."""
        if self._channel is None:
            return await self._wait_detached()
        await self._channel.ended.wait()
        if self._channel.returncode is None:
            raise AgentError(f"process {self.pid}: {self._channel.error}")
        return self._channel.returncode

    async def _wait_detached(self) -> int:
        while self._returncode is None:
            listed = {p["pid"]: p for p in await self._poll()}
            if self.pid not in listed:
                raise AgentError(f"process {self.pid} is no longer listed by the agent")
            if not listed[self.pid]["running"]:
                self._returncode = listed[self.pid]["returncode"]
                break
            await asyncio.sleep(_POLL)
        return self._returncode

    def _writable(self, what: str) -> Channel:
        if self._channel is None or not self._stdin:
            raise AgentError(f"process {self.pid}: cannot {what}: start it with stdin=True "
                             "and detach=False")
        return self._channel

    def _forget(self, task: asyncio.Task) -> None:
        """Drop a finished signal; a failure means the process or connection is gone,
        which ``wait`` reports."""
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()
