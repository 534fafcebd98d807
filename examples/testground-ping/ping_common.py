"""What the runners and the client share: the echo port, the latency asked for, and one
round trip over TCP (Testground's ping plan measures it over a connection too)."""

from __future__ import annotations

import os
import socket
import time

PORT = 7400
#: the latency each runner asks for on its own link, in milliseconds
LATENCY_MS = float(os.environ.get("PING_LATENCY_MS", "1000"))
#: PING_SHAPE=0: the runners skip configure_network (the assertion must then fail)
SHAPE = os.environ.get("PING_SHAPE", "1") != "0"


def round_trip(host: str, timeout: float = 10.0) -> float:
    """Seconds for one byte to go to ``host``'s echo server and back, on a connection
    that is already open (its handshake is not counted)."""
    with socket.create_connection((host, PORT), timeout=timeout) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.monotonic()
        conn.sendall(b"p")
        if conn.recv(1) != b"p":
            raise OSError(f"{host}: the echo server answered something else")
        return time.monotonic() - started
