"""The ``netns`` backend: each node is a Linux network namespace with its own address.

Imports ``composer.clusters`` helpers, ``composer.clock``, ``composer.errors``,
``composer.faults`` and the standard library. Per run: a claimed address block X
(``composer.clusters.leftovers``), a hub namespace ``composer-X-hub`` holding a bridge,
and the subnet 10.77.X.0/24. Per node: a namespace ``composer-X-<node>`` (loopback up,
``eth0`` = 10.77.X.i on the bridge), a hostname namespace (hostname = node name), a
hosts file naming every node, and a data directory. The bridge lives in the hub
namespace, not on the host, so Docker's FORWARD policy and br_netfilter never see the
traffic, and the host's routes stay untouched.

Processes start through ``nsenter`` (hostname) and ``ip netns exec`` (network, hosts
file), which exec in turn: the process composer signals is the command itself.
Partitions and loss are nftables rules on the hub's bridge; bandwidth (tbf) is a qdisc
on each node's ``eth0``, and packet faults (latency, reorder, duplicate, corrupt) are
netem there where the kernel has it, else the node's packet shaper
(``composer_agent.network``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

from composer_agent import clock
from composer_agent.network import NetworkFaults, packet_kinds, packet_limitations
from composer.clusters import control, leftovers, nft
from composer.clusters.agents import node_views
from composer.clusters.base import ProcessSpec, SharedFiles
from composer.clusters.hostnode import HostNode, dial_in
from composer.clusters.processes import REAPER, HostProcess, destroy_all
from composer.errors import ConfigError, InfraError
from composer.faults import Network

__all__ = ["NetnsCluster", "NetnsNode"]

_TOOLS = ("ip", "nft", "tc", "nsenter", "unshare")


class NetnsNode(HostNode):
    """A node of the netns backend: a namespace on the run's bridge."""

    def __init__(self, cluster: NetnsCluster, name: str, index: int, root: Path) -> None:
        self._cluster = cluster
        self.name = name
        self.index = index
        self.address = f"10.77.{cluster.block}.{index}"
        self.root = root
        self.data_dir = root / "data"
        self.namespace = leftovers.netns_name(cluster.block, name)
        self.uts = leftovers.uts_dir(cluster.block) / name
        #: what it sends: bandwidth (tbf) and packet faults (netem or the packet shaper)
        self.network = NetworkFaults(enter=["ip", "netns", "exec", self.namespace])

    async def start(self, spec: ProcessSpec) -> HostProcess:
        argv = ["nsenter", f"--uts={self.uts}", "ip", "netns", "exec", self.namespace,
                *spec.argv]
        return await self._spawn(argv, spec)

    async def dial(self, port: int, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await dial_in(f"/run/netns/{self.namespace}", self.name, self.address, port,
                             timeout)


class NetnsCluster(SharedFiles):
    """Namespaces on one bridge of their own; files under ``workdir``."""

    def __init__(self, workdir: Path, shared: Sequence[Path] = ()) -> None:
        self.capabilities = self.supported()
        self.workdir = workdir
        self._processes: list[HostProcess] = []
        self._nodes: list[NetnsNode] = []
        self._claim, self.block = leftovers.claim_free_block()
        self.hub = leftovers.netns_name(self.block, "hub")
        self._control = f"10.77.{self.block}.254"
        self.subnet = f"10.77.{self.block}.0/24"
        REAPER.start()
        REAPER.tell("sweep", self.block)

    @staticmethod
    def supported() -> frozenset[str]:
        """Every fault but packet faults without netem or NFQUEUE and clock without
        libfaketime."""
        missing = [tool for tool in _TOOLS if not shutil.which(tool)]
        if os.geteuid() != 0 or missing:
            raise ConfigError(
                "--cluster netns needs root and " + ", ".join(_TOOLS)
                + (f" (missing: {', '.join(missing)}; apt-get install iproute2 nftables "
                   "util-linux)" if missing else f" (running as uid {os.geteuid()})")
                + "; run as root or use --cluster local")
        kinds = {"kill", "stop", "pause", "partition", "loss", "bandwidth"}
        kinds |= packet_kinds()
        if clock.missing() is None:
            kinds.add("clock")
        return frozenset(kinds)

    @staticmethod
    def limitations() -> dict[str, str]:
        why = {}
        why.update(packet_limitations())
        if clock.missing() is not None:
            why["clock"] = clock.missing()
        return why

    async def new_nodes(self, names: Sequence[str]) -> list[NetnsNode]:
        start = len(self._nodes)
        if start + len(names) > 253:  # .254 is the control address, on the bridge
            raise InfraError(f"the netns backend holds at most 253 nodes, {start + len(names)} asked")
        nodes = [NetnsNode(self, name, i, self.workdir / "nodes" / name)
                 for i, name in enumerate(names, start=start + 1)]
        created = ([] if self._nodes else [self.hub]) + [n.namespace for n in nodes]
        await _ip(["-batch", "-"], "".join(f"netns add {ns}\n" for ns in created))
        self._nodes.extend(nodes)  # from here on, cleanup removes them
        hub = [] if start else ["link add br0 type bridge",
                                f"addr add {self._control}/24 dev br0", "link set br0 up"]
        for node in nodes:
            hub += [f"link add v{node.index} type veth peer name eth0 netns {node.namespace}",
                    f"link set v{node.index} master br0 up"]
        await _ip(["-n", self.hub, "-batch", "-"], "".join(f"{line}\n" for line in hub))
        leftovers.uts_dir(self.block).mkdir(parents=True, exist_ok=True)
        await asyncio.gather(*(self._configure(node) for node in nodes))
        self._write_hosts()
        return nodes

    async def _configure(self, node: NetnsNode) -> None:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        await _ip(["-n", node.namespace, "-batch", "-"],
                  f"link set lo up\naddr add {node.address}/24 dev eth0\nlink set eth0 up\n")
        node.uts.touch()
        await nft.run(["unshare", f"--uts={node.uts}", "hostname", node.name],
                      what=f"{node.name}: hostname")

    def _write_hosts(self) -> None:
        lines = ["127.0.0.1\tlocalhost"] + [f"{n.address}\t{n.name}" for n in self._nodes]
        for node in self._nodes:
            directory = leftovers.hosts_dir(self.block, node.name)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "hosts").write_text("\n".join(lines) + "\n")

    async def shape_network(self, network: Network) -> None:
        address = {n.name: n.address for n in self._nodes}
        rules = nft.replace_chain("bridge", "composer", "faults",
                                  "type filter hook forward priority 0",
                                  nft.drop_rules(network, address))
        changes = [nft.run(["ip", "netns", "exec", self.hub, "nft", "-f", "-"], rules,
                           what="netns partition/loss")]
        views = node_views(network, address, drops=False)
        changes += [node.network.apply(views[node.name]) for node in self._nodes]
        results = await asyncio.gather(*changes, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise InfraError(f"netns network faults failed: {'; '.join(map(str, failed))}")

    def control_host(self, node: str) -> str:
        return self._control

    async def control_socket(self) -> socket.socket:
        """A socket of the hub namespace, on the bridge's own address: nodes reach it
        without crossing the bridge's forward hook, where partitions and loss are."""
        return await asyncio.to_thread(control.listen_socket, self._control,
                                       f"/run/netns/{self.hub}")

    async def cleanup(self) -> None:
        await asyncio.gather(*(n.network.close() for n in self._nodes), return_exceptions=True)
        errors = await destroy_all(self._processes)
        if self._claim is not None:
            namespaces = ([self.hub] if self._nodes else []) + [n.namespace for n in self._nodes]
            try:
                if namespaces:
                    await _ip(["-batch", "-"], "".join(f"netns delete {ns}\n" for ns in namespaces))
            except InfraError as exc:
                errors.append(exc)
            leftovers.sweep(self.block, tables=False)  # hostnames, hosts files, stragglers
            REAPER.tell("swept", self.block)
            self._claim.close()
            self._claim = None
            self._nodes.clear()
        if errors:
            raise InfraError(f"netns cleanup failed: {'; '.join(map(str, errors))}")


async def _ip(args: list[str], script: str) -> None:
    await nft.run(["ip", *args], script, what="netns")
