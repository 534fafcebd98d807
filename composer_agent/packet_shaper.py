"""User-space netem: delay, jitter, loss, corruption, reordering and duplication of the
packets a network namespace sends, for kernels built without the netem qdisc.

    python -m composer_agent.packet_shaper --queue N [--only CIDR]... [--exempt ADDR]...
                                           [--mark 0x7a3]

Run it *inside* the namespace to shape (``ip netns exec NS ...`` or ``nsenter -t PID -n
...``); it dies with its parent (PR_SET_PDEATHSIG; the parent *thread*, so spawn it from
a thread that lives as long as it should). It binds NFQUEUE queue N and adds its
iptables chains (``shaper_rules``): IPv4 packets not leaving through ``lo`` and not
carrying mark MARK, except to each ``--exempt`` address (and only towards the ``--only``
subnets if given), are queued with ``--queue-bypass``: if the helper dies, packets pass
unshaped instead of being dropped. The chains are removed on stdin EOF, SIGTERM, SIGINT
or an error (stale ones, left by SIGKILL, are replaced at the next start). IPv6 is not
shaped.

Protocol, one JSON object per line. stdin: a whole configuration, replacing the last::

    {"default": SHAPE, "rules": [{"subnet": "10.77.3.0/24", ...SHAPE}]}
    SHAPE = {"latency": ms, "jitter": ms, "loss": %, "corrupt": %, "reorder": %, "duplicate": %,
             "filter": "accept" | "drop" | "reject"}

(every field optional, 0 by default; ``{}`` shapes nothing). A packet takes the shape of
the first rule whose subnet holds its destination, else the default. stdout answers each
line with ``{"applied": N}`` (N: lines read so far, this one included; the first answer
also means the iptables rules are in place), or ``{"error": "rules[0].loss: ...",
"line": N}`` (the previous configuration stays). ``{"stats": true}`` answers
``{"stats": {"received", "released", "dropped", "duplicated", "corrupted", "held"}}``.
At stdin EOF held packets are released at once, the rules removed, and the exit code is 0.
A fatal error at start is written as ``{"error": ...}`` and exits 1.

Semantics, per packet, as netem's where it has them:

- filter: drop loses every packet here (as loss 100); reject refuses them on the spot
  (iptables REJECT: the sender gets an ICMP error or a reset; ``shaper_rules``).
- loss: dropped with that probability. Unlike a drop in OUTPUT, the sender sees no error.
- duplicate: released, and a copy sent through a raw socket with mark MARK (so it is not
  queued again), unchanged, at the same time.
- corrupt: one random bit flipped after the IP header, or in it if there is nothing
  after; the kernel then recomputes no checksum, so the receiver's check drops it.
- latency/jitter: released ``latency + uniform(-jitter, jitter)`` ms (at least 0) after it
  arrived; jitter therefore reorders packets, as netem's does.
- reorder: with latency > 0 the chosen packets skip the delay and overtake those held;
  without latency they are held back 10 ms so later packets overtake them.

At most 10000 packets are held; beyond that the kernel lets packets through unshaped.
A configuration change does not move packets already held.
"""

from __future__ import annotations

import argparse
import ctypes
import heapq
import ipaddress
import json
import math
import os
import random
import selectors
import signal
import socket
import sys
import time
from typing import Any, NamedTuple

from composer_agent.nfqueue import Packet, PacketQueue
from composer_agent.shaper_rules import Rules

__all__ = ["Shape", "Config", "parse_config", "Shaper", "main"]

PERCENT_FIELDS = ("loss", "corrupt", "reorder", "duplicate")
FILTERS = ("accept", "drop", "reject")
FIELDS = ("latency", "jitter") + PERCENT_FIELDS
REORDER_HOLD = 0.010  # seconds a reordered packet waits when there is no latency
PR_SET_PDEATHSIG = 1


class Shape(NamedTuple):
    """One shape, in seconds and probabilities (0..1)."""

    latency: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    corrupt: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0


class Config(NamedTuple):
    default: Shape | None  # None: nothing to do, accept at once
    rules: tuple[tuple[ipaddress.IPv4Network, Shape | None], ...]
    #: (subnet, rejected) per rule, and whether the default rejects (iptables REJECT)
    rejects: tuple[tuple[str, bool], ...] = ()
    default_rejects: bool = False


def _filter(data: dict, where: str) -> str:
    action = data.get("filter", "accept")
    if action not in FILTERS:
        raise ValueError(f"{where}.filter: expected one of {', '.join(FILTERS)}, got {action!r}")
    return action


def _shape(data: Any, where: str) -> Shape | None:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    values = {}
    if _filter(data, where) == "drop":
        values["loss"] = 1.0  # dropped here, silently, as a dead link would
    for key, value in data.items():
        if key == "filter" or (key == "subnet" and where.startswith("rules[")):
            continue
        if key not in FIELDS:
            raise ValueError(f"{where}.{key}: unknown field (expected one of {', '.join(FIELDS)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise ValueError(f"{where}.{key}: expected a number >= 0, got {value!r}")
        if key in PERCENT_FIELDS:
            if value > 100:
                raise ValueError(f"{where}.{key}: a percentage must be at most 100, got {value!r}")
            values[key] = value / 100
        else:
            values[key] = value / 1000
    shape = Shape(**values)
    return None if not any(shape) else shape


def parse_config(data: Any) -> Config:
    """Check one configuration line; ``ValueError`` naming the bad field."""
    if not isinstance(data, dict):
        raise ValueError("expected an object with default and rules")
    unknown = set(data) - {"default", "rules"}
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown field (expected default, rules)")
    default = _shape(data.get("default") or {}, "default")
    rules = data.get("rules") or []
    if not isinstance(rules, list):
        raise ValueError("rules: expected a list")
    parsed, rejects = [], []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or "subnet" not in rule:
            raise ValueError(f"rules[{i}].subnet: missing")
        try:
            subnet = ipaddress.IPv4Network(str(rule["subnet"]), strict=False)
        except ValueError as e:
            raise ValueError(f"rules[{i}].subnet: {e}") from None
        parsed.append((subnet, _shape(rule, f"rules[{i}]")))
        rejects.append((str(subnet), _filter(rule, f"rules[{i}]") == "reject"))
    return Config(default, tuple(parsed), tuple(rejects),
                  _filter(data.get("default") or {}, "default") == "reject")


class Shaper:
    """Gives each queued packet its verdict, now or when due (a heap of held packets)."""

    def __init__(self, queue: PacketQueue, mark: int, rng: random.Random | None = None) -> None:
        self.queue = queue
        self.rng = rng or random.Random()
        self.config = Config(None, ())
        self._cache: dict[bytes, Shape | None] = {}  # destination address -> shape
        self._held: list[tuple[float, int, int, bytes | None, bytes | None]] = []
        self._seq = 0
        self.stats = dict.fromkeys(("received", "released", "dropped", "duplicated",
                                    "corrupted"), 0)
        self._raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        self._raw.setblocking(False)

    def configure(self, config: Config) -> None:
        self.config = config
        self._cache.clear()

    def _lookup(self, dst: bytes) -> Shape | None:
        address = ipaddress.IPv4Address(dst)
        for subnet, shape in self.config.rules:
            if address in subnet:
                break
        else:
            shape = self.config.default
        if len(self._cache) > 65536:
            self._cache.clear()
        self._cache[dst] = shape
        return shape

    def handle(self, packets: list[Packet], now: float) -> None:
        """Decide the fate of freshly queued packets."""
        stats, cache, accept, rand = self.stats, self._cache, self.queue.accept, self.rng.random
        stats["received"] += len(packets)
        for packet_id, payload in packets:
            dst = payload[16:20]
            try:
                shape = cache[dst]
            except KeyError:
                shape = self._lookup(dst)
            if shape is None:
                accept(packet_id)
                stats["released"] += 1
                continue
            latency, jitter, loss, corrupt, reorder, duplicate = shape
            if loss and rand() < loss:
                self.queue.drop(packet_id)
                stats["dropped"] += 1
                continue
            copy = payload if duplicate and rand() < duplicate else None
            changed = self._corrupt(payload) if corrupt and rand() < corrupt else None
            delay = latency
            if jitter:
                delay = max(0.0, delay + (2 * rand() - 1) * jitter)
            if reorder and rand() < reorder:
                delay = 0.0 if latency > 0 else REORDER_HOLD
            if delay > 0:
                self._seq += 1
                heapq.heappush(self._held, (now + delay, self._seq, packet_id, changed, copy))
            else:
                self._release(packet_id, changed, copy)

    def _corrupt(self, payload: bytes) -> bytes:
        data = bytearray(payload)
        start = (data[0] & 0x0F) * 4
        if start >= len(data):
            start = 0
        data[self.rng.randrange(start, len(data))] ^= 1 << self.rng.randrange(8)
        self.stats["corrupted"] += 1
        return bytes(data)

    def _release(self, packet_id: int, changed: bytes | None, copy: bytes | None) -> None:
        self.queue.accept(packet_id, changed)
        self.stats["released"] += 1
        if copy is not None:
            try:
                self._raw.sendto(copy, (socket.inet_ntoa(copy[16:20]), 0))
                self.stats["duplicated"] += 1
            except OSError:
                pass  # a full socket buffer loses the copy, as a busy link would

    def release_due(self, now: float) -> float | None:
        """Release the packets due by ``now``; return seconds until the next one (None: none held)."""
        held = self._held
        while held and held[0][0] <= now:
            _, _, packet_id, changed, copy = heapq.heappop(held)
            self._release(packet_id, changed, copy)
        return held[0][0] - now if held else None

    def release_all(self) -> None:
        while self._held:
            _, _, packet_id, changed, copy = heapq.heappop(self._held)
            self._release(packet_id, changed, copy)

    def snapshot(self) -> dict[str, int]:
        return {**self.stats, "held": len(self._held)}

    def close(self) -> None:
        self._raw.close()


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl: the caller must stop the helper itself


def _write(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _answer(shaper: Shaper, rules: Rules, line: bytes, count: int) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError as e:
        return {"error": f"not JSON: {e}", "line": count}
    if isinstance(data, dict) and data.get("stats") is True and len(data) == 1:
        return {"stats": shaper.snapshot()}
    try:
        config = parse_config(data)
    except ValueError as e:
        return {"error": str(e), "line": count}
    rules.set_rejects(config.rejects, config.default_rejects)
    shaper.configure(config)
    return {"applied": count}


def serve(shaper: Shaper, rules: Rules, stdin: int = 0) -> None:
    """Shape until stdin ends, answering each configuration line on stdout."""
    queue, pending, count = shaper.queue, b"", 0
    with selectors.DefaultSelector() as selector:
        selector.register(queue, selectors.EVENT_READ, "queue")
        selector.register(stdin, selectors.EVENT_READ, "stdin")
        timeout = None
        while True:
            for key, _ in selector.select(timeout):
                if key.data == "queue":
                    shaper.handle(queue.receive(), time.monotonic())
                    continue
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        count += 1
                        _write(_answer(shaper, rules, line, count))
            timeout = shaper.release_due(time.monotonic())
            if timeout is not None:
                timeout = max(timeout, 0.0)


def _cidr(text: str) -> str:
    return str(ipaddress.IPv4Network(text, strict=False))


def _stop(signum: int, frame: object) -> None:
    sys.exit(0)  # unwinds through main's finally, which removes the rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m composer_agent.packet_shaper",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", type=int, required=True, help="NFQUEUE number (0..65535)")
    parser.add_argument("--only", type=_cidr, action="append", default=[],
                        help="shape only packets to this subnet (repeatable)")
    parser.add_argument("--exempt", type=_cidr, action="append", default=[],
                        help="never shape packets to this address or subnet (repeatable)")
    parser.add_argument("--mark", type=lambda s: int(s, 0), default=0x7A3,
                        help="packet mark that is never queued (the duplicates carry it)")
    args = parser.parse_args(argv)
    _die_with_parent()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        queue = PacketQueue(args.queue)
    except OSError as e:
        _write({"error": e.strerror or str(e)})
        print(f"packet_shaper: {e.strerror or e}", file=sys.stderr)
        return 1
    rules = Rules(args.queue, args.mark, args.only, args.exempt)
    shaper = None
    try:
        shaper = Shaper(queue, args.mark)
        rules.install()
        serve(shaper, rules)
        return 0
    except (OSError, RuntimeError) as e:
        try:
            _write({"error": str(e)})
        except OSError:
            pass  # stdout is gone too
        print(f"packet_shaper: {e}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        rules.remove()
        try:
            if shaper is not None:
                shaper.release_all()
                shaper.close()
            for _ in range(100):  # queued before the rules went: unbinding would drop them
                packets = queue.receive()
                if not packets:
                    break
                for packet in packets:
                    queue.accept(packet.id)
        finally:
            queue.close()


if __name__ == "__main__":
    sys.exit(main())
