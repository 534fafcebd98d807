"""Where a cluster's control plane listens: an address of the run's own block that every
node reaches and no fault cuts, on Testground's sync-service port.

Each backend names its control address (``control_host``): ``127.0.X.254`` on ``local``,
``10.77.X.254`` on the hub's bridge of ``netns``, the network's gateway ``10.78.X.1`` on
``docker``, and on ``agents`` each node's own address, where its agent listens and hands
every connection to composer (``splice`` joins it to the service). Faults never touch
it: partitions and loss name node addresses, and the packet shaper shapes only what
goes to peers. Because the address is the run's own, the port can be the one
Testground clients assume (5050) without two runs colliding.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from composer.clusters.hostnode import socket_in

__all__ = ["SYNC_PORT", "listen_socket", "splice"]

#: Testground's sync-service port: its clients assume it when SYNC_SERVICE_PORT is unset.
SYNC_PORT = 5050


def listen_socket(host: str, namespace: str | None = None) -> socket.socket:
    """Return a TCP socket bound to ``host:SYNC_PORT`` (inside the network namespace at
    path ``namespace``, if given), ready for ``listen``."""
    if namespace:
        sock = socket_in(namespace)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, SYNC_PORT))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{SYNC_PORT} for the sync "
                                 f"service: {exc.strerror}") from None
    return sock


async def splice(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 b: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    """Carry bytes between two connections until either ends, then close both (a node's
    connection that an agent handed over, and composer's own to the sync service)."""
    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    tasks = [asyncio.ensure_future(pump(a[0], b[1])), asyncio.ensure_future(pump(b[0], a[1]))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for writer in (a[1], b[1]):
            writer.close()
