"""The nfnetlink_queue protocol over a raw netlink socket, standard library only.

Packets an ``iptables ... -j NFQUEUE --queue-num N`` rule sends to queue N wait in the
kernel until user space gives a verdict on each (by id): accept, possibly with a
changed packet, or drop. This speaks that protocol directly (no libnetfilter_queue)
so the agent needs nothing the machine may lack. Queues are per network namespace:
bind from inside the namespace whose packets you want. IPv4 only.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["Packet", "PacketQueue"]

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
MSG_PACKET = NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET
MSG_VERDICT = NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_VERDICT
MSG_CONFIG = NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_CONFIG

NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_PACKET = 2
NFQA_CFG_F_FAIL_OPEN = 1
NF_DROP, NF_ACCEPT = 0, 1

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, portid (host order)
_NFGENMSG = struct.Struct("!BBH")  # family, version, res_id (big endian)
_NLATTR = struct.Struct("=HH")
_VERDICT_HDR = struct.Struct("!II")  # verdict, packet id
_VERDICT_LEN = _NLMSGHDR.size + _NFGENMSG.size + _NLATTR.size + _VERDICT_HDR.size  # 32
RECV_SIZE = 0x10000 + 4096  # one whole packet (copy range 65535) and its attributes


class Packet(NamedTuple):
    id: int
    payload: bytes  # the IP packet, from the IP header on


def _attr(kind: int, data: bytes) -> bytes:
    pad = -len(data) % 4
    return _NLATTR.pack(_NLATTR.size + len(data), kind) + data + b"\0" * pad


class PacketQueue:
    """One bound NFQUEUE queue: read packets, give verdicts. Not thread-safe.

    Packets are copied whole; ``max_len`` packets may wait for a verdict at once,
    beyond that the kernel lets them through unqueued (fail open) rather than drop.
    """

    def __init__(self, queue_num: int, max_len: int = 10000, rcvbuf: int = 64 << 20) -> None:
        self.queue_num = queue_num
        self._seq = 0
        self._pending: list[Packet] = []  # packets read while waiting for an ack
        # a verdict message is this template with the verdict and id filled in
        self._verdict = bytearray(
            _NLMSGHDR.pack(_VERDICT_LEN, MSG_VERDICT, NLM_F_REQUEST, 0, 0)
            + _NFGENMSG.pack(socket.AF_UNSPEC, 0, queue_num)
            + _NLATTR.pack(_NLATTR.size + _VERDICT_HDR.size, NFQA_VERDICT_HDR)
            + bytes(_VERDICT_HDR.size))
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except OSError as e:
            raise OSError(e.errno, f"NFQUEUE is not available: netlink socket: {e.strerror}") from e
        try:
            for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
                try:
                    self._sock.setsockopt(socket.SOL_SOCKET, option, rcvbuf)
                    break
                except OSError:
                    continue
            try:
                self._sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
            except OSError:
                pass  # then ENOBUFS is reported by recv and skipped there
            self._sock.bind((0, 0))
            try:
                self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND,
                                                             socket.AF_INET)))
            except OSError as e:
                hint = "modprobe nfnetlink_queue"
                if e.errno == errno.EPERM:  # what the kernel says to both
                    hint = f"queue {queue_num} is bound by another process, or CAP_NET_ADMIN is missing"
                raise OSError(e.errno, f"NFQUEUE is not available: binding queue {queue_num}: "
                                       f"{e.strerror} ({hint})") from e
            self._config(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, NFQNL_COPY_PACKET)))
            self._config(_attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", max_len)))
            self._config(_attr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))
                         + _attr(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)))
        except BaseException:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def _message(self, kind: int, flags: int, body: bytes) -> bytes:
        self._seq += 1
        payload = _NFGENMSG.pack(socket.AF_UNSPEC, 0, self.queue_num) + body
        return _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), kind, flags, self._seq, 0) + payload

    def _config(self, attrs: bytes) -> None:
        """Send one config message and wait for its ack; OSError with the kernel's errno."""
        self._sock.send(self._message(MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, attrs))
        seq = self._seq
        while True:
            data = self._sock.recv(RECV_SIZE)
            for kind, msg_seq, body in _messages(data):
                if kind == NLMSG_ERROR and msg_seq == seq:
                    code = struct.unpack_from("=i", body)[0]
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return
                if kind == MSG_PACKET:
                    self._pending.append(_packet(body))

    def receive(self, limit: int = 512) -> list[Packet]:
        """Return the packets waiting now (at most ``limit``), without blocking."""
        out, self._pending = self._pending, []
        recv = self._sock.recv
        while len(out) < limit:
            try:
                data = recv(RECV_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # the kernel dropped messages: carry on
                    continue
                raise
            for kind, _, body in _messages(data):
                if kind == MSG_PACKET:
                    out.append(_packet(body))
        return out

    def _send_verdict(self, packet_id: int, verdict: int, payload: bytes | None) -> None:
        data = self._verdict
        _VERDICT_HDR.pack_into(data, _VERDICT_LEN - _VERDICT_HDR.size, verdict, packet_id)
        if payload is not None:
            data = data + _attr(NFQA_PAYLOAD, payload)
            struct.pack_into("=I", data, 0, len(data))
        try:
            self._sock.send(data)
        except OSError as e:
            if e.errno != errno.ENOBUFS:
                raise

    def accept(self, packet_id: int, payload: bytes | None = None) -> None:
        """Let the packet go on, replaced by ``payload`` if given (checksum then not offloaded)."""
        self._send_verdict(packet_id, NF_ACCEPT, payload)

    def drop(self, packet_id: int) -> None:
        self._send_verdict(packet_id, NF_DROP, None)

    def close(self) -> None:
        """Unbind (the kernel drops packets still waiting) and close the socket."""
        if self._sock.fileno() < 0:
            return
        try:
            self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND,
                                                         socket.AF_INET)))
        except OSError:
            pass
        finally:
            self._sock.close()


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Yield (type, seq, body) of each netlink message in one datagram."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _, seq, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        yield kind, seq, data[offset + _NLMSGHDR.size:offset + length]
        offset += (length + 3) & ~3


def _packet(body: bytes) -> Packet:
    """Parse a packet message body (nfgenmsg and attributes) into id and payload."""
    offset, end = _NFGENMSG.size, len(body)
    packet_id, payload = -1, b""
    while offset + 4 <= end:
        length, kind = _NLATTR.unpack_from(body, offset)
        if length < 4:
            break
        kind &= 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
        if kind == NFQA_PACKET_HDR:
            packet_id = struct.unpack_from("!I", body, offset + 4)[0]
        elif kind == NFQA_PAYLOAD:
            payload = body[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return Packet(packet_id, payload)
