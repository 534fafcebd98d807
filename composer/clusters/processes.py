"""Processes on this host: started in their own process group, logs copied to capped
files, and killed with composer however it ends.

Imports only ``composer.clusters.base``, ``composer.errors`` and the standard library.
Shared by the backends whose processes are this host's (``local``, ``netns``, ``docker``,
``compose``). A small
reaper process watches a pipe from composer; when the pipe closes (composer ended, even
by SIGKILL) it kills every process group still listed and sweeps the address blocks
still listed (``composer.clusters.leftovers``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from composer.clusters.base import ProcessSpec
from composer.errors import InfraError

__all__ = ["HostProcess", "Reaper", "REAPER", "spawn", "destroy_all"]

_CHUNK = 64 * 1024
#: seconds between two looks at whether asyncio has reaped a process that has exited
_REAP_POLL = 0.005
_SETPRIV = shutil.which("setpriv")
_REAPER = """
import os, signal, subprocess, sys
groups, blocks = set(), set()
for line in sys.stdin:
    word, value = line.split()
    {"watch": groups.add, "forget": groups.discard, "sweep": blocks.add,
     "swept": blocks.discard}[word](int(value))
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
if blocks:
    subprocess.run([sys.executable, "-m", "composer.clusters.leftovers", *map(str, blocks)])
"""


class Reaper:
    """Kills the process groups composer started, and removes the namespaces, rules and
    cgroups of its address blocks, if composer dies without cleaning up. One per composer
    process: a forked worker starts its own on first use, so each worker's leftovers go
    when that worker dies. Jobs in threads share it (``composer.jobs``): a second reaper
    started by a race would drop the first one's pipe, and a reaper whose pipe closes
    sweeps, so starting and writing hold a lock."""

    def __init__(self) -> None:
        self._pipe = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        # a child forked while another thread held the lock would never get it
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the reaper now, so registering a process later is one quick write."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._pipe is None or self._pid != os.getpid():
            reaper = subprocess.Popen(
                [sys.executable, "-c", _REAPER], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            self._pipe, self._pid = reaper.stdin, os.getpid()

    def tell(self, word: str, value: int) -> None:
        """Say "watch"/"forget" a process group, or "sweep"/"swept" an address block."""
        with self._lock:
            self._start()
            try:
                self._pipe.write(f"{word} {value}\n".encode())
                self._pipe.flush()
            except (BrokenPipeError, ValueError):
                self._pipe = None


#: the reaper of this composer process
REAPER = Reaper()


class HostProcess:
    """A process group on this host whose stdout and stderr are copied to capped log files."""

    def __init__(self, proc: asyncio.subprocess.Process, spec: ProcessSpec,
                 whole_group: bool = False) -> None:
        self._proc = proc
        self._whole_group = whole_group
        self._pumps = [
            asyncio.ensure_future(_pump(proc.stdout, spec.stdout, spec.log_limit)),
            asyncio.ensure_future(_pump(proc.stderr, spec.stderr, spec.log_limit)),
        ]

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        code = self._proc.returncode
        if code is not None and code < 0 and self._whole_group and _group_alive(self.pid):
            return None  # the wrapper died, the command lives on
        return code

    async def wait(self) -> int:
        code = await self._exit_code()
        if self._whole_group and code < 0:
            await _group_gone(self._proc.pid)
        # A child that kept the pipes open must not hold us: give the logs a moment.
        await asyncio.wait(self._pumps, timeout=0.5)
        return code

    async def _exit_code(self) -> int:
        """The exit code as soon as the process exits. asyncio (3.11) wakes
        ``Process.wait()`` only once the pipes are closed too, so a background child
        still holding stdout would hold a command that has long exited; a pidfd says
        when the process itself exits, and ``returncode`` is set soon after."""
        if self._proc.returncode is not None:  # reaped: its pid may be another's now
            return self._proc.returncode
        waiter = asyncio.ensure_future(self._proc.wait())
        exited = _exit_of(self.pid)
        try:
            await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
            while self._proc.returncode is None:  # asyncio's child watcher reaps it now
                await asyncio.sleep(_REAP_POLL)
        finally:
            waiter.cancel()
            exited.cancel()
        return self._proc.returncode

    async def end_leftovers(self) -> bool:
        if self._proc.returncode is None or not _group_alive(self.pid):
            return False
        self.signal(signal.SIGKILL)
        await _group_gone(self.pid)
        await asyncio.wait(self._pumps, timeout=0.5)  # what they wrote last is logged
        return True

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    async def write_stdin(self, data: bytes) -> None:
        if self._proc.stdin is None:
            raise ValueError("the process was started without a stdin pipe (ProcessSpec.stdin)")
        self._proc.stdin.write(data)
        await self._proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()

    async def destroy(self) -> None:
        """Kill the whole process group and reap it."""
        self.signal(signal.SIGKILL)
        await self._proc.wait()
        REAPER.tell("forget", self._proc.pid)
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs. Zombies do not count: the children
    of a command in a container go to its init, which may never reap them."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                return True
    return False


def _exit_of(pid: int) -> asyncio.Future:
    """A future done once process ``pid`` has exited (at once if it is gone already)."""
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone already
        exited.set_result(None)
        return exited

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    def close(_: asyncio.Future) -> None:
        loop.remove_reader(fd)
        os.close(fd)

    loop.add_reader(fd, readable)
    exited.add_done_callback(close)
    return exited


async def _group_gone(pgid: int) -> None:
    """Return once no process of group ``pgid`` is left running."""
    while _group_alive(pgid):
        await asyncio.sleep(0.05)


async def _pump(stream: asyncio.StreamReader | None, path: Path, limit: int) -> None:
    """Copy ``stream`` to ``path``, keeping ``limit`` bytes and draining the rest."""
    if stream is None:
        return
    written = 0
    with open(path, "ab") as out:
        while chunk := await stream.read(_CHUNK):
            if written < limit:
                keep = chunk[: limit - written]
                out.write(keep)
                written += len(keep)
                if written >= limit:
                    out.write(f"\n[composer: output truncated after {limit} bytes]\n".encode())
                out.flush()


async def spawn(argv: Sequence[str], spec: ProcessSpec, what: str,
                whole_group: bool = False) -> HostProcess:
    """Start ``argv`` (``spec.argv`` behind a backend's wrapper) as a new process group
    that dies with composer; ``what`` names the node in errors.

    ``whole_group``: the wrapper forks the command and may die of a signal before it
    (``nsenter -p`` does); waiting then lasts until the whole group has gone, and the
    exit code is the wrapper's (the signal)."""
    if _SETPRIV:  # the first process dies with composer even before the reaper knows it
        argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
    spec.stdout.parent.mkdir(parents=True, exist_ok=True)
    spec.stderr.parent.mkdir(parents=True, exist_ok=True)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if spec.stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=spec.cwd,
            env=spec.environment(os.environ),
            start_new_session=True,
        )
    except OSError as exc:
        raise InfraError(f"{what}: cannot start {spec.argv[0]!r}: {exc}") from None
    REAPER.tell("watch", proc.pid)
    return HostProcess(proc, spec, whole_group)


async def destroy_all(processes: list[HostProcess]) -> list[BaseException]:
    """Kill and reap every process of ``processes`` (emptied); return the errors met."""
    results = await asyncio.gather(*(p.destroy() for p in processes), return_exceptions=True)
    processes.clear()
    return [r for r in results if isinstance(r, BaseException)]
