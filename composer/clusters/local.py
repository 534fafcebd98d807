"""The ``local`` backend: nodes are processes on this host, each on its own 127.0.X.Y.

Imports ``composer.clusters`` helpers, ``composer.errors``, ``composer.faults`` and the
standard library. Nodes are not sandboxed and share one filesystem: fast, and needs
nothing. Each cluster holds the claim on one address block X for its lifetime
(``composer.clusters.leftovers``), so concurrent runs never share an address.

As root, with nftables and cgroup2, partitions and packet loss work between nodes too.
A process that connects to 127.0.X.Y leaves from 127.0.0.1 unless it binds, so each
node's processes run in a cgroup of their own, and the run's nftables table rewrites
the source of their loopback connections to the node's address (marked by cgroup on
output, source NAT on postrouting). Fault rules then name each packet's sender and
receiver by its connection's conntrack tuples (``composer.clusters.nft.drop_rules``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from composer_agent import clock
from composer.clusters import control, leftovers, nft
from composer.clusters.base import ProcessSpec, SharedFiles
from composer.clusters.hostnode import HostNode
from composer.clusters.processes import REAPER, HostProcess, destroy_all
from composer.errors import InfraError
from composer.faults import Network

__all__ = ["LocalCluster", "LocalNode"]

_MARK = 0x636D0000  # "cm": composer's packet marks, one per node
#: nft names a cgroup by its path below this directory, wherever cgroup2 is mounted
_NFT_CGROUPS = Path("/sys/fs/cgroup")


class LocalNode(HostNode):
    """A node of the local backend: an address on loopback and a directory."""

    def __init__(self, cluster: LocalCluster, name: str, address: str, root: Path,
                 cgroup: Path | None = None) -> None:
        self._cluster = cluster
        self.name = name
        self.address = address
        self.root = root
        self.data_dir = root / "data"
        self._cgroup = cgroup

    async def start(self, spec: ProcessSpec) -> HostProcess:
        argv: list[str] = list(spec.argv)
        if self._cgroup is not None:  # join the node's cgroup before the command runs
            argv = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"',
                    str(self._cgroup), *argv]
        return await self._spawn(argv, spec)

    async def dial(self, port: int, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(asyncio.open_connection(self.address, port), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self.name}: port {port} did not answer in {timeout}s") from None


class LocalCluster(SharedFiles):
    """Nodes on one claimed 127.0.X.0/24 block; files under ``workdir``."""

    def __init__(self, workdir: Path, shared: Sequence[Path] = ()) -> None:
        self.workdir = workdir
        self.capabilities = self.supported()
        self._processes: list[HostProcess] = []
        self._nodes: list[LocalNode] = []
        self._claim, self.block = leftovers.claim_free_block()
        self._control = f"127.0.{self.block}.254"
        self.subnet = f"127.0.{self.block}.0/24"
        REAPER.start()
        self._network = "partition" in self.capabilities
        if self._network:
            REAPER.tell("sweep", self.block)
            root = leftovers.cgroup_root()
            assert root is not None
            self._cgroups = root / "composer" / str(self.block)
            self._cgroups.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def supported() -> frozenset[str]:
        """Process faults always; clock with libfaketime; partition and loss as root."""
        kinds = {"kill", "stop", "pause"}
        if clock.missing() is None:
            kinds.add("clock")
        if _network_faults_work():
            kinds |= {"partition", "loss"}
        return frozenset(kinds)

    @staticmethod
    def limitations() -> dict[str, str]:
        """Return why each fault kind this backend lacks here is missing."""
        why = {"latency": "the local backend shares one loopback device; use --cluster netns",
               "bandwidth": "the local backend shares one loopback device; use --cluster netns"}
        if clock.missing() is not None:
            why["clock"] = clock.missing()
        if not _network_faults_work():
            why["partition"] = why["loss"] = (
                "needs root, nft (apt-get install nftables) and cgroup2; or use --cluster netns")
        return why

    async def new_nodes(self, names: Sequence[str]) -> list[LocalNode]:
        start = len(self._nodes)
        if start + len(names) > 253:  # .254 is the control address
            raise InfraError(f"the local backend holds at most 253 nodes, {start + len(names)} asked")
        nodes = []
        for i, name in enumerate(names, start=start + 1):
            root = self.workdir / "nodes" / name
            (root / "data").mkdir(parents=True, exist_ok=True)
            cgroup = None
            if self._network:
                cgroup = self._cgroups / name
                cgroup.mkdir(exist_ok=True)
            nodes.append(LocalNode(self, name, f"127.0.{self.block}.{i}", root, cgroup))
        self._nodes.extend(nodes)
        if self._network:
            await self.shape_network(Network())
        return nodes

    async def shape_network(self, network: Network) -> None:
        table, block = leftovers.nft_table(self.block), f"127.0.{self.block}.0/24"
        root = self._cgroups.parent.parent
        marks, snats = [], []
        for i, node in enumerate(self._nodes, start=1):
            assert node._cgroup is not None
            path = node._cgroup.relative_to(_NFT_CGROUPS)
            level = len(node._cgroup.relative_to(root).parts)
            mark = f"0x{_MARK | self.block << 8 | i:08x}"
            marks.append(f'ip daddr {block} socket cgroupv2 level {level} "{path}" '
                         f"meta mark set {mark}")
            snats.append(f"meta mark {mark} ip saddr 127.0.0.1 ip daddr {block} "
                         f"snat to {node.address}")
        address = {n.name: n.address for n in self._nodes}
        script = "".join([
            nft.replace_chain("ip", table, "node_marks", "type filter hook output priority mangle",
                              marks),
            nft.replace_chain("ip", table, "node_sources", "type nat hook postrouting priority srcnat",
                              snats),
            nft.replace_chain("ip", table, "faults", "type filter hook prerouting priority -150",
                              nft.drop_rules(network, address, tracked=True)),
        ])
        await nft.run(["nft", "-f", "-"], script, what="local network faults")

    def control_host(self, node: str) -> str:
        return self._control

    async def control_socket(self) -> socket.socket:
        return control.listen_socket(self._control)

    async def cleanup(self) -> None:
        errors = await destroy_all(self._processes)
        if self._claim is not None:
            if self._network:
                subprocess.run(["nft", "delete", "table", "ip", leftovers.nft_table(self.block)],
                               capture_output=True)
                leftovers.sweep(self.block, tables=False)
                REAPER.tell("swept", self.block)
            self._claim.close()
            self._claim = None
        if errors:
            raise InfraError(f"local cleanup failed: {'; '.join(map(repr, errors))}")


@functools.cache
def _network_faults_work() -> bool:
    """Return whether nftables can mark loopback traffic by cgroup here (tried, not guessed)."""
    root = leftovers.cgroup_root()
    if os.geteuid() != 0 or not shutil.which("nft") or root is None:
        return False
    try:
        path = root.relative_to(_NFT_CGROUPS)
    except ValueError:
        return False  # cgroup2 mounted elsewhere: nft cannot name its groups
    script = nft.replace_chain(
        "ip", "composer_probe", "node_marks", "type filter hook output priority mangle",
        [f'socket cgroupv2 level 1 "{path / "composer"}" meta mark set 1']
    ) + nft.replace_chain("ip", "composer_probe", "node_sources",
                          "type nat hook postrouting priority srcnat",
                          ["meta mark 1 ip saddr 127.0.0.1 snat to 127.0.0.2"])
    (root / "composer").mkdir(exist_ok=True)
    return subprocess.run(["nft", "--check", "-f", "-"], input=script.encode(),
                          capture_output=True).returncode == 0
