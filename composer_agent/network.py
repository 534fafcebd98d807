"""Network faults on the agent's own machine: nftables drops and loss, tc shaping.

Imports only the standard library. The composer sends each agent its node's share of
the cluster's network (``NodeNetwork``); the agent enforces it with one nftables table
of its own (replaced in one ``nft -f`` transaction, so traffic never sees half a
partition) and a qdisc on the device that leads to the peers. Rules drop what arrives
from peers, named by address, so traffic with anyone else (the composer's own
connection to the agent) is never dropped or lost. Both are removed when the agent stops, however it stops.

``replace_chain``, ``qdisc_commands`` and ``have_netem`` are shared with the host
backends (``composer.clusters.nft``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import json
import shutil
import subprocess
from collections.abc import Sequence

from composer_agent.shaper_process import ShaperProcess

__all__ = ["NodeNetwork", "NetworkFaults", "replace_chain", "qdisc_commands", "have_netem",
           "PACKET_KINDS", "packet_faults_missing", "packet_kinds", "packet_limitations",
           "netem_arguments"]

TABLE = "composer_agent"


@dataclasses.dataclass(frozen=True)
class NodeNetwork:
    """One node's view of the network faults in force (empty: none).

    Packets are dropped where they arrive, never where they leave: a sender whose
    packets are dropped on the way out gets EPERM, which a real network never says.
    """

    #: addresses of the other nodes of the cluster (shaping applies towards them)
    peers: tuple[str, ...] = ()
    #: peers whose packets never reach this node
    drop_from: tuple[str, ...] = ()
    #: peer -> percent of its packets to this node that are lost
    loss_from: tuple[tuple[str, float], ...] = ()
    bandwidth: float | None = None  # kbit/s out of the peers' device
    #: what is done to packets sent to the peers: ``composer_agent.packet_shaper``'s
    #: configuration (a default shape and per-subnet rules); None: nothing
    packets: dict | None = None

    @classmethod
    def from_json(cls, data: object) -> NodeNetwork:
        """Parse and check a request body; ``ValueError`` saying what is wrong."""
        if not isinstance(data, dict) or set(data) - {f.name for f in dataclasses.fields(cls)}:
            raise ValueError("expected an object with peers, drop_from, loss_from, "
                             "bandwidth and packets")
        lists = {k: tuple(str(ipaddress.ip_address(a)) for a in data.get(k) or ())
                 for k in ("peers", "drop_from")}
        loss = tuple((str(ipaddress.ip_address(a)), float(p)) for a, p in data.get("loss_from") or ())
        bandwidth = None if data.get("bandwidth") is None else float(data["bandwidth"])
        if (bandwidth or 0) < 0 or any(p < 0 for _, p in loss):
            raise ValueError("loss and bandwidth must not be negative")
        packets = data.get("packets")
        if packets is not None and not isinstance(packets, dict):
            raise ValueError("packets: expected the packet shaper's configuration object")
        return cls(**lists, loss_from=loss, bandwidth=bandwidth, packets=packets)


def replace_chain(family: str, table: str, chain: str, hook: str, rules: Sequence[str]) -> str:
    """Return an nft script that creates the chain if needed and replaces its rules."""
    lines = [
        f"table {family} {table} {{\n  chain {chain} {{\n    {hook}; policy accept;\n  }}\n}}",
        f"flush chain {family} {table} {chain}",
    ]
    lines += [f"add rule {family} {table} {chain} {rule}" for rule in rules]
    return "\n".join(lines) + "\n"


def qdisc_commands(device: str, bandwidth: float | None, netem: dict | None = None
                   ) -> list[list[str]]:
    """Return the tc commands that give ``device`` this egress limit and, through netem,
    this packet shape (the shaper's default shape; None: none).

    The first removes what was there before; it fails harmlessly when nothing was.
    """
    commands = [["qdisc", "del", "dev", device, "root"]]
    tbf = ["tbf", "rate", f"{round(bandwidth or 0)}kbit", "burst", "32kbit", "latency", "400ms"]
    if netem:
        commands.append(["qdisc", "add", "dev", device, "root", "handle", "1:", "netem",
                         *netem_arguments(netem)])
        if bandwidth is not None:
            commands.append(["qdisc", "add", "dev", device, "parent", "1:1", "handle", "10:",
                             *tbf])
    elif bandwidth is not None:
        commands.append(["qdisc", "add", "dev", device, "root", *tbf])
    return commands


def netem_arguments(shape: dict) -> list[str]:
    """netem's words for a shaper shape. netem reorders only what it delays: reorder
    without latency delays the rest 10 ms, as the shaper holds its chosen ones back."""
    words = []
    if shape.get("latency") or shape.get("reorder"):
        words += ["delay", f"{shape.get('latency') or 10:g}ms", f"{shape.get('jitter', 0):g}ms"]
    for name in ("loss", "duplicate", "corrupt", "reorder"):
        if shape.get(name):
            words += [name, f"{shape[name]:g}%"]
    return words


def netem_can(packets: dict | None) -> bool:
    """Whether netem alone gives ``packets``: no per-subnet rules or filters, a kernel
    with netem."""
    return bool(packets) and not packets.get("rules") and "filter" not in packets.get(
        "default", {}) and have_netem()


#: fault kinds done to single packets: netem, or the packet shaper
PACKET_KINDS = ("latency", "reorder", "duplicate", "corrupt")


@functools.cache
def packet_faults_missing() -> str | None:
    """Why packet faults cannot be applied here (None: they can, with netem or with
    the packet shaper's NFQUEUE rule, tried in a throwaway namespace)."""
    if have_netem():
        return None
    unshare, iptables = shutil.which("unshare"), shutil.which("iptables")
    if not (unshare and iptables):
        return "no netem qdisc, and no iptables for the packet shaper (apt-get install iptables)"
    tried = subprocess.run([unshare, "-n", iptables, "-w", "-t", "mangle", "-A", "OUTPUT", "-j",
                            "NFQUEUE", "--queue-num", "1", "--queue-bypass"], capture_output=True)
    if tried.returncode == 0:
        return None
    return ("no netem qdisc and no NFQUEUE target ("
            + " ".join(tried.stderr.decode(errors="replace").split()) + ")")


def packet_kinds() -> frozenset[str]:
    """The packet fault kinds this machine can apply (all or none)."""
    return frozenset(PACKET_KINDS) if packet_faults_missing() is None else frozenset()


def packet_limitations() -> dict[str, str]:
    """Why each packet fault kind cannot be applied here (empty: they all can)."""
    missing = packet_faults_missing()
    return dict.fromkeys(PACKET_KINDS, missing) if missing else {}


_netem: bool | None = None


def have_netem() -> bool:
    """Return whether this kernel has the netem qdisc (tried in a throwaway namespace)."""
    global _netem
    if _netem is None:
        unshare, tc = shutil.which("unshare"), shutil.which("tc")
        _netem = bool(unshare and tc) and subprocess.run(
            [unshare, "-n", tc, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
            capture_output=True).returncode == 0
    return _netem


def _set(addresses: Sequence[str]) -> str:
    return "{ " + ", ".join(addresses) + " }"


class NetworkFaults:
    """The faults a machine enforces now; ``apply`` replaces them, ``clear`` ends them.

    ``enter`` prefixes every command, to act in another network namespace (the docker
    backend: ``nsenter -t PID -n``); by default, this one.
    """

    def __init__(self, enter: Sequence[str] = ()) -> None:
        self._enter = list(enter)
        self._shaped: str | None = None  # the device carrying a qdisc of ours
        self._qdisc: tuple = (None, None)  # (bandwidth, netem) it carries
        self._inbound: list[str] = []  # the input chain's rules in force (none: no table)
        self._shaper: ShaperProcess | None = None
        self._lock = asyncio.Lock()

    async def _run(self, argv: list[str], stdin: str | None = None, check: bool = True) -> str:
        return await _run([*self._enter, *argv], stdin, check)

    async def apply(self, view: NodeNetwork) -> None:
        """Enforce ``view``, changing only what differs from the last; ``RuntimeError``
        with the tool's message if the kernel refuses."""
        async with self._lock:
            inbound = [f"ip saddr {_set(view.drop_from)} drop"] if view.drop_from else []
            for address, percent in view.loss_from:
                share = "" if percent >= 100 else f"numgen random mod 100 < {round(percent)} "
                inbound.append(f"ip saddr {address} {share}drop")
            if inbound != self._inbound:
                script = replace_chain("ip", TABLE, "input",
                                       "type filter hook input priority -10", inbound)
                await self._run(["nft", "-f", "-"], script)
                self._inbound = inbound
            netem = view.packets["default"] if netem_can(view.packets) else None
            await self._shape_device(view, netem)
            if view.packets and netem is None:
                if self._shaper is None:
                    self._shaper = ShaperProcess(self._enter, view.peers)
                await self._shaper.configure(view.packets)
            elif self._shaper is not None:
                await self._shaper.stop()
                self._shaper = None

    async def _shape_device(self, view: NodeNetwork, netem: dict | None) -> None:
        """The qdisc of the device leading to the peers: tbf for bandwidth, netem."""
        wanted = (view.bandwidth, json.dumps(netem, sort_keys=True) if netem else None)
        if wanted == self._qdisc:
            return
        device = await self._device(view.peers[0]) if view.peers else None
        if self._shaped and (device != self._shaped or wanted == (None, None)):
            await self._run(["tc", *qdisc_commands(self._shaped, None)[0]], check=False)
            self._shaped = None
        if device and wanted != (None, None):
            remove, *add = qdisc_commands(device, view.bandwidth, netem)
            await self._run(["tc", *remove], check=False)
            for command in add:
                await self._run(["tc", *command])
            self._shaped = device
        self._qdisc = wanted

    async def close(self) -> None:
        """Stop the shaper only: the namespace is gone or going, with its rules."""
        if self._shaper is not None:
            await self._shaper.stop()
            self._shaper = None

    async def clear(self) -> None:
        """Stop the shaper, remove the table and the qdisc, if there are any."""
        async with self._lock:
            if self._shaper is not None:
                await self._shaper.stop()
                self._shaper = None
            self._inbound, self._qdisc = [], (None, None)
            await self._run(["nft", "delete", "table", "ip", TABLE], check=False)
            if self._shaped:
                await self._run(["tc", "qdisc", "del", "dev", self._shaped, "root"], check=False)
                self._shaped = None

    async def _device(self, peer: str) -> str | None:
        """Return the device that leads to ``peer`` (None: loopback or unknown)."""
        words = (await self._run(["ip", "-o", "route", "get", peer], check=False)).split()
        device = words[words.index("dev") + 1] if "dev" in words else None
        return None if device == "lo" else device


async def _run(argv: list[str], stdin: str | None = None, check: bool = True) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        if check:
            raise RuntimeError(f"{argv[0]}: {exc.strerror} (apt-get install nftables iproute2)") from None
        return ""
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {' '.join(err.decode().split())}")
    return out.decode()
