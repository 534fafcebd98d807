"""The ``local`` backend: nodes are processes on this host, each on its own 127.0.X.Y.

Imports only ``composer.clusters.base``, ``composer.errors`` and the standard library.
Nodes are not sandboxed and share one filesystem: fast, and needs nothing. Each cluster
holds an exclusive claim on one 127.0.X.0/24 block for its lifetime, so concurrent runs
never share an address. Every process runs in its own process group and dies with
composer: a small reaper process watches a pipe from composer and kills every process
group still listed when the pipe closes, however composer ended (even SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import shutil
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from composer.clusters.base import ProcessSpec
from composer.errors import InfraError

__all__ = ["LocalCluster", "LocalNode", "LocalProcess"]

_CHUNK = 64 * 1024
_SETPRIV = shutil.which("setpriv")
_REAPER = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    pgid = int(line)
    if pgid > 0:
        groups.add(pgid)
    else:
        groups.discard(-pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class _Reaper:
    """Kills the process groups composer started if composer dies without cleaning up."""

    _pipe = None

    @classmethod
    def start(cls) -> None:
        """Start the reaper now, so registering a process later is one quick write."""
        if cls._pipe is None:
            reaper = subprocess.Popen(
                [sys.executable, "-c", _REAPER], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            cls._pipe = reaper.stdin

    @classmethod
    def watch(cls, pgid: int) -> None:
        cls._send(pgid)

    @classmethod
    def forget(cls, pgid: int) -> None:
        cls._send(-pgid)

    @classmethod
    def _send(cls, value: int) -> None:
        cls.start()
        try:
            cls._pipe.write(f"{value}\n".encode())
            cls._pipe.flush()
        except (BrokenPipeError, ValueError):
            cls._pipe = None


class LocalProcess:
    """A process group on this host whose stdout and stderr are copied to capped log files."""

    def __init__(self, proc: asyncio.subprocess.Process, spec: ProcessSpec) -> None:
        self._proc = proc
        self._pumps = [
            asyncio.ensure_future(_pump(proc.stdout, spec.stdout, spec.log_limit)),
            asyncio.ensure_future(_pump(proc.stderr, spec.stderr, spec.log_limit)),
        ]

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def wait(self) -> int:
        code = await self._proc.wait()
        # A child that kept the pipes open must not hold us: give the logs a moment.
        await asyncio.wait(self._pumps, timeout=0.5)
        return code

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    async def destroy(self) -> None:
        """Kill the whole process group and reap it."""
        self.signal(signal.SIGKILL)
        await self._proc.wait()
        _Reaper.forget(self._proc.pid)
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)


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


class LocalNode:
    """A node of the local backend: an address on loopback and a data directory."""

    def __init__(self, cluster: LocalCluster, name: str, address: str, data_dir: Path) -> None:
        self._cluster = cluster
        self.name = name
        self.address = address
        self.data_dir = data_dir

    async def start(self, spec: ProcessSpec) -> LocalProcess:
        argv = list(spec.argv)
        if _SETPRIV:  # the first process dies with composer even before the reaper knows it
            argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        spec.stdout.parent.mkdir(parents=True, exist_ok=True)
        spec.stderr.parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=spec.cwd,
                env=dict(spec.env),
                start_new_session=True,
            )
        except OSError as exc:
            raise InfraError(f"{self.name}: cannot start {spec.argv[0]!r}: {exc}") from None
        _Reaper.watch(proc.pid)
        process = LocalProcess(proc, spec)
        self._cluster._processes.append(process)
        return process


class LocalCluster:
    """Nodes on one locked 127.0.X.0/24 block; files under ``workdir``."""

    capabilities = frozenset({"kill", "stop", "pause"})

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._processes: list[LocalProcess] = []
        self._nodes: list[LocalNode] = []
        self._lock_file, self.block = _lock_block()
        _Reaper.start()

    async def new_nodes(self, names: Sequence[str]) -> list[LocalNode]:
        start = len(self._nodes)
        if start + len(names) > 254:
            raise InfraError(f"the local backend holds at most 254 nodes, {start + len(names)} asked")
        nodes = []
        for i, name in enumerate(names, start=start + 1):
            data_dir = self.workdir / "nodes" / name / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
            nodes.append(LocalNode(self, name, f"127.0.{self.block}.{i}", data_dir))
        self._nodes.extend(nodes)
        return nodes

    async def cleanup(self) -> None:
        errors = []
        results = await asyncio.gather(
            *(p.destroy() for p in self._processes), return_exceptions=True
        )
        errors.extend(r for r in results if isinstance(r, BaseException))
        self._processes.clear()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        if errors:
            raise InfraError(f"local cleanup failed: {'; '.join(map(repr, errors))}")


_cursor = random.randrange(254)


def _lock_block() -> tuple[socket.socket, int]:
    """Claim a free 127.0.X.0/24 block (X in 1..254); return (claim, X).

    The claim is an abstract Unix socket bound to the block's name: the kernel frees it
    when the process dies, so a crashed run leaves no lock file behind. Blocks are taken
    in turn from a random start, so consecutive clusters of one exploration do not reuse
    an address whose old connections still linger in TIME_WAIT.
    """
    global _cursor
    blocks = [(_cursor + i) % 254 + 1 for i in range(254)]
    for block in blocks:
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0composer-local-127.0.{block}")
        except OSError:
            claim.close()
            continue
        _cursor = block % 254
        return claim, block
    raise InfraError("every 127.0.X.0/24 block is in use by other composer runs")
