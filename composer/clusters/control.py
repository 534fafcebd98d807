"""Where a cluster's control plane listens: an address of the run's own block that every
node reaches and no fault cuts, on Testground's sync-service port.

Each backend names its control address (``control_host``): ``127.0.X.254`` on ``local``,
``10.77.X.254`` on the hub's bridge of ``netns``, the network's gateway ``10.78.X.1`` on
``docker``. Faults never touch it: partitions and loss name node addresses, and the
packet shaper exempts it. Because the address is the run's own, the port can be the one
Testground clients assume (5050) without two runs colliding.
"""

from __future__ import annotations

import socket

from composer.clusters.hostnode import socket_in

__all__ = ["SYNC_PORT", "listen_socket"]

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
