"""The processes an agent started: spawning, reaping, signalling, killing them all.

Imports the standard library only. Every process starts in a new session, so it leads
its own process group and a signal reaches whatever it forked too. The agent reaps its
children itself (a pidfd per child, or a thread where pidfds are missing) instead of
through ``asyncio.subprocess``: there, ``wait()`` also waits for the output pipes to
close, which never happens while a grandchild holds them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["Started", "ProcessTable"]


@dataclasses.dataclass(eq=False)
class Started:
    """One process the agent started; pipes are None when detached or not asked for."""

    pid: int
    argv: list[str]
    detached: bool
    stdin: asyncio.StreamWriter | None = None
    stdout: asyncio.StreamReader | None = None
    stderr: asyncio.StreamReader | None = None
    returncode: int | None = None
    seconds: float | None = None
    _began: float = dataclasses.field(default_factory=time.monotonic)
    _exited: asyncio.Future[int] = dataclasses.field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    _transports: list[asyncio.BaseTransport] = dataclasses.field(default_factory=list)
    _popen: subprocess.Popen | None = None

    async def wait(self) -> int:
        """Return the exit code once the process has exited (its pipes may still be open)."""
        return await asyncio.shield(self._exited)

    def describe(self) -> dict:
        return {"pid": self.pid, "argv": self.argv, "running": self.returncode is None,
                "returncode": self.returncode, "detached": self.detached}

    def close_pipes(self) -> None:
        """Close the agent's ends of the pipes (a grandchild writing then gets SIGPIPE)."""
        for transport in self._transports:
            transport.close()

    def _reaped(self, status: int) -> None:
        self.returncode = os.waitstatus_to_exitcode(status)
        self.seconds = time.monotonic() - self._began
        if not self._exited.done():
            self._exited.set_result(self.returncode)


class ProcessTable:
    """Every process this agent started, by pid; detached output goes to ``root/logs``."""

    def __init__(self, root: Path) -> None:
        self.logs = Path(root) / "logs"
        self._started: dict[int, Started] = {}
        self._serial = itertools.count()

    async def start(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                    cwd: str | None = None, stdin: bool = False,
                    detach: bool = False) -> Started:
        """Start ``argv`` in a new session; raise OSError if it cannot be started."""
        if detach:
            return self._start_detached(list(argv), env, cwd)
        popen = subprocess.Popen(
            list(argv), env=env, cwd=cwd, start_new_session=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started = Started(popen.pid, list(argv), detached=False)
        self._watch(started, popen)
        loop = asyncio.get_running_loop()
        try:
            for name in ("stdout", "stderr"):
                reader = asyncio.StreamReader(limit=1 << 20)
                transport, _ = await loop.connect_read_pipe(
                    lambda r=reader: asyncio.StreamReaderProtocol(r), getattr(popen, name))
                started._transports.append(transport)
                setattr(started, name, reader)
            if popen.stdin is not None:
                protocol = asyncio.StreamReaderProtocol(asyncio.StreamReader())
                transport, _ = await loop.connect_write_pipe(lambda: protocol, popen.stdin)
                started._transports.append(transport)
                started.stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        except BaseException:
            self._kill(started)
            started.close_pipes()
            raise
        return started

    def _start_detached(self, argv: list[str], env: Mapping[str, str] | None,
                        cwd: str | None) -> Started:
        """Start with output in ``logs/<pid>.stdout|.stderr`` (named once the pid is known)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        serial = next(self._serial)
        paths = [self.logs / f".starting-{serial}.{name}" for name in ("stdout", "stderr")]
        with open(paths[0], "wb") as out, open(paths[1], "wb") as err:
            try:
                popen = subprocess.Popen(argv, env=env, cwd=cwd, start_new_session=True,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            except BaseException:
                for path in paths:
                    path.unlink(missing_ok=True)
                raise
        for path, name in zip(paths, ("stdout", "stderr")):
            path.rename(self.logs / f"{popen.pid}.{name}")
        started = Started(popen.pid, argv, detached=True)
        self._watch(started, popen)
        return started

    def _watch(self, started: Started, popen: subprocess.Popen) -> None:
        """Reap the child when it exits, in place of ``popen`` (which must not wait)."""
        self._started[started.pid] = started
        started._popen = popen  # a dropped Popen would reap the child on its own
        loop = asyncio.get_running_loop()

        def reaped(status: int) -> None:
            popen.returncode = os.waitstatus_to_exitcode(status)
            started._reaped(status)

        try:
            pidfd = os.pidfd_open(started.pid)
        except (AttributeError, OSError):  # no pidfds: a thread blocks in waitpid
            future = loop.run_in_executor(None, os.waitpid, started.pid, 0)
            future.add_done_callback(lambda f: reaped(f.result()[1]))
            return

        def readable() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            reaped(os.waitpid(started.pid, 0)[1])

        loop.add_reader(pidfd, readable)

    def get(self, pid: int) -> Started | None:
        return self._started.get(pid)

    def describe(self) -> list[dict]:
        return [started.describe() for started in self._started.values()]

    def signal(self, started: Started, sig: int) -> bool:
        """Send ``sig`` to the process group of ``started``; return whether it was sent.

        Once the leader is reaped its pid may be reused: the group is signalled then only
        while no process has that pid, that is while the number can still only be ours.
        """
        if started.returncode is not None and Path(f"/proc/{started.pid}").exists():
            return False
        try:
            os.killpg(started.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def _kill(self, started: Started) -> None:
        self.signal(started, signal.SIGKILL)

    def kill_all(self) -> int:
        """SIGKILL the group of every process started; return how many were running."""
        running = 0
        for started in self._started.values():
            running += started.returncode is None
            self._kill(started)
        return running

    async def wait_all(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every started process to be reaped."""
        waiting = [s.wait() for s in self._started.values() if s.returncode is None]
        if waiting:
            await asyncio.wait([asyncio.ensure_future(w) for w in waiting], timeout=timeout)
