"""What nodes living on this host share: their files are this host's files, and a
socket made inside a node's network namespace dials as its processes would.

Imports ``composer.clusters.base``, ``composer.clusters.processes`` and the standard
library. Used by the ``local``
and ``netns`` backends, whose nodes see the host's filesystem.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from composer.clusters.base import ProbeByDial, ProcessSpec
from composer.clusters.processes import HostProcess, spawn

__all__ = ["HostNode", "socket_in", "dial_in"]


class HostNode(ProbeByDial):
    """Base of host nodes: subclasses set ``name``, ``root``, ``data_dir`` and ``dial``."""

    name: str
    root: Path
    _cluster: Any  # its backend's cluster, which kills ``_processes`` at cleanup

    async def _spawn(self, argv: list[str], spec: ProcessSpec,
                     whole_group: bool = False) -> HostProcess:
        """Start ``argv`` (``spec.argv`` behind this backend's wrapper) and register it."""
        process = await spawn(argv, spec, self.name, whole_group)
        self._cluster._processes.append(process)
        return process

    async def dial(self, port: int, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise NotImplementedError

    async def send_file(self, path: Path, source: bytes | Path, mode: int = 0o644) -> None:
        await asyncio.to_thread(_write, Path(path), source, mode)

    async def read_file(self, path: Path) -> bytes:
        return await asyncio.to_thread(Path(path).read_bytes)


def _write(path: Path, source: bytes | Path, mode: int) -> None:
    """Write atomically: a reader on the node never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(source, (bytes, bytearray, memoryview)):
                out.write(source)
            else:
                with open(source, "rb") as data:
                    shutil.copyfileobj(data, out, 1024 * 1024)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(namespace: str) -> socket.socket:
    """Return a TCP socket of ``namespace``: made on a thread of its own that enters the
    namespace and then ends, so no other code ever runs in the wrong namespace."""
    made: list = []

    def enter() -> None:
        try:
            fd = os.open(namespace, os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {namespace}")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            made.append(sock)
        except OSError as exc:
            made.append(exc)

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    if isinstance(made[0], OSError):
        raise made[0]
    return made[0]


async def dial_in(namespace: str, name: str, address: str, port: int,
                  timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to ``address:port`` from inside the network namespace at path ``namespace``
    (node ``name``'s), as the node's own processes would."""
    loop = asyncio.get_running_loop()
    sock = await asyncio.to_thread(socket_in, namespace)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout)
        return await asyncio.open_connection(sock=sock)
    except asyncio.TimeoutError:
        sock.close()
        raise TimeoutError(f"{name}: port {port} did not answer in {timeout}s") from None
    except BaseException:
        sock.close()
        raise
