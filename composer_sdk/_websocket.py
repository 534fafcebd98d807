"""A minimal blocking WebSocket client (RFC 6455), standard library only.

The SDK runs inside drivers and services under whatever Python they use, where
composer's own packages are not installed, so ``sync`` cannot lean on ``websockets``.
Text messages only, client frames masked, pings answered, fragments joined.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
from urllib.parse import urlsplit

__all__ = ["WebSocket"]

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA


class WebSocket:
    """One connection to ``ws://host:port/path``."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname:
            raise ValueError(f"{url!r} is not a ws://host:port URL")
        self.url = url
        self._sock = socket.create_connection((parts.hostname, parts.port or 80), timeout)
        self._buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self._sock.sendall((f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                            ).encode())
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if " 101 " not in head.split("\r\n", 1)[0] or accept not in head:
            raise ConnectionError(f"{url}: not a WebSocket server ({head.splitlines()[0]!r})")

    def settimeout(self, seconds: float | None) -> None:
        self._sock.settimeout(seconds)

    def send(self, text: str) -> None:
        self._send_frame(_TEXT, text.encode())

    def recv(self) -> str:
        """The next text message (``socket.timeout`` past the timeout; ``ConnectionError``
        when the server closes)."""
        parts: list[bytes] = []
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == _CLOSE:
                raise ConnectionError(f"{self.url}: the sync service closed the connection")
            if opcode == _PING:
                self._send_frame(_PONG, payload)
                continue
            if opcode == _PONG:
                continue
            parts.append(payload)
            if first & 0x80:
                return b"".join(parts).decode()

    def close(self) -> None:
        try:
            self._send_frame(_CLOSE, struct.pack("!H", 1000))
        except OSError:
            pass
        self._sock.close()

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        """One final frame, masked as a client's must be."""
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(head + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self._sock.recv(max(65536, n - len(self._buffer)))
            if not chunk:
                raise ConnectionError(f"{self.url}: the sync service went away")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _read_until(self, end: bytes) -> bytes:
        while end not in self._buffer:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"{self.url}: closed during the handshake")
            self._buffer += chunk
        head, self._buffer = self._buffer.split(end, 1)
        return head
