"""The ``docker`` backend: each node is a container on a network of the run's own.

Imports ``composer_agent.network``, ``composer.clusters`` helpers, ``composer.errors``,
``composer.faults``, the docker SDK and the standard library. Per run: a claimed
address block X (``composer.clusters.leftovers``) and a bridge network ``composer-X``
(internal: no way out) on 10.78.X.0/24, labelled ``composer.block=X``. Per node: a
container ``composer-X-<node>`` from the node image (``composer-node:latest``, see
``docker/``; ``COMPOSER_NODE_IMAGE`` names another), hostname and network alias =
node name, address 10.78.X.(i+1), with the directories composer shares (the project,
the run's files, composer's own sources for the SDK) mounted at the same path.

Processes enter the container with ``nsenter`` (all its namespaces) after joining its
cgroup: what ``docker exec`` does, but they are composer's children, so logs, process
groups, signals, the reaper and death with composer work as on the host backends.
Network faults are nftables rules and qdiscs inside each container's network
namespace, entered from the host (``composer_agent.network``), so any image works without tools.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

from composer_agent.network import NetworkFaults, packet_kinds, packet_limitations
from composer.clusters import control, leftovers
from composer.clusters.agents import node_views
from composer.clusters.base import ProcessSpec, SharedFiles
from composer.clusters.hostnode import HostNode, dial_in
from composer.clusters.processes import REAPER, HostProcess, destroy_all
from composer.errors import ConfigError, InfraError
from composer.faults import Network

__all__ = ["DockerCluster", "DockerNode", "node_image", "engine", "fault_kinds", "need_image"]

#: The image nodes run; build it with ``bash docker/build-node``.
def node_image() -> str:
    """The image every node runs, read when a cluster is made (not at import), so a
    changed COMPOSER_NODE_IMAGE counts."""
    return os.environ.get("COMPOSER_NODE_IMAGE", "composer-node:latest")
#: Where composer itself lives (``composer_sdk/`` and ``composer_agent/`` next to ``composer/``).
_SOURCES = Path(__file__).resolve().parents[2]
_TOOLS = ("nsenter", "nft", "tc", "ip")
_JOIN = ('n=$0; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" 2>/dev/null; shift; '
         'n=$((n - 1)); done; exec "$@"')


class DockerNode(HostNode):
    """A node of the docker backend: one container."""

    #: network faults inside the container's namespace; None while it is not running
    network: NetworkFaults | None = None

    def __init__(self, cluster: DockerCluster, name: str, address: str, root: Path,
                 container: str) -> None:
        self._cluster = cluster
        self.name = name
        self.address = address
        self.root = root
        self.data_dir = root / "data"
        self.container = container
        self.pid = 0  # of the container's init, on the host, once running

    def left(self) -> None:
        """The container stopped: its namespaces are gone, and its pid may be reused."""
        self.pid = 0
        if self.network is not None:  # its packet shaper ends at cleanup
            self._cluster._left_behind.append(self.network)
        self.network = None

    def entered(self, pid: int) -> None:
        """The container runs (again) with init ``pid``: enter that one from now on."""
        self.pid = pid
        self._cgroups = _cgroups_of(pid)
        self.network = NetworkFaults(enter=["nsenter", "-t", str(pid), "-n"])

    async def start(self, spec: ProcessSpec) -> HostProcess:
        return await self._enter(spec.argv, spec, str(spec.cwd))

    async def _enter(self, argv: Sequence[str], spec: ProcessSpec, cwd: str) -> HostProcess:
        # join the container's cgroups (its limits apply), then its namespaces
        argv = ["/bin/sh", "-c", _JOIN, str(len(self._cgroups)), *map(str, self._cgroups),
                "nsenter", "-t", str(self.pid), "-m", "-u", "-i", "-n", "-p", "--",
                # nsenter --wd would open the directory before entering: the host's
                "/bin/sh", "-c", 'cd "$0" && exec "$@"', cwd, *argv]
        return await self._spawn(argv, spec, whole_group=True)  # nsenter -p forks

    async def dial(self, port: int, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await dial_in(f"/proc/{self.pid}/ns/net", self.name, self.address, port,
                             timeout)

    def _inside(self, path: Path) -> Path:
        return Path(f"/proc/{self.pid}/root") / Path(path).relative_to("/")

    async def send_file(self, path: Path, source: bytes | Path, mode: int = 0o644) -> None:
        await super().send_file(self._inside(path), source, mode)

    async def read_file(self, path: Path) -> bytes:
        return await super().read_file(self._inside(path))


class DockerCluster(SharedFiles):
    """Containers on one network of their own; files under ``workdir``."""

    def __init__(self, workdir: Path, shared: Sequence[Path] = ()) -> None:
        self.capabilities = self.supported()
        self.workdir = workdir
        self._client = engine()
        #: the network faults asked last (a restarted container gets them again)
        self.shape: Network | None = None
        self._mounts = sorted({str(p) for p in (workdir, *shared, _SOURCES)})
        self._processes: list[HostProcess] = []
        self._nodes: list[DockerNode] = []
        #: network faults of containers that stopped (their shapers still to end)
        self._left_behind: list[NetworkFaults] = []
        self._network_id: str | None = None
        self._claim, self.block = leftovers.claim_free_block()
        self._control = f"10.78.{self.block}.1"  # the network's gateway, on the host
        self.subnet = f"10.78.{self.block}.0/24"
        REAPER.start()
        REAPER.tell("sweep", self.block)

    @staticmethod
    def supported() -> frozenset[str]:
        """Process and network faults (packet faults with netem or the packet shaper);
        not clock yet."""
        need_image(engine(), node_image(), "build it with bash docker/build-node (or set "
                   "COMPOSER_NODE_IMAGE)")
        return fault_kinds()

    @staticmethod
    def limitations() -> dict[str, str]:
        why = {"clock": "clock faults in containers are not built yet"}
        why.update(packet_limitations())
        return why

    async def new_nodes(self, names: Sequence[str]) -> list[DockerNode]:
        start = len(self._nodes)
        if start + len(names) > 253:
            raise InfraError(f"the docker backend holds at most 253 nodes, {start + len(names)} asked")
        if self._network_id is None:
            self._network_id = await asyncio.to_thread(self._create_network)
        made = await asyncio.gather(*(asyncio.to_thread(self._create_node, name, i)
                                      for i, name in enumerate(names, start=start + 2)),
                                    return_exceptions=True)
        nodes = [n for n in made if isinstance(n, DockerNode)]
        self._nodes.extend(nodes)  # from here on, cleanup removes them
        failed = [e for e in made if isinstance(e, BaseException)]
        if failed:
            raise InfraError(f"docker backend: cannot start a container: {failed[0]}")
        return nodes

    def _labels(self) -> dict[str, str]:
        return {leftovers.DOCKER_LABEL: str(self.block)}

    def _create_network(self) -> str:
        import docker

        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
            subnet=f"10.78.{self.block}.0/24", gateway=f"10.78.{self.block}.1")])
        return self._client.networks.create(f"composer-{self.block}", driver="bridge",
                                            internal=True, ipam=ipam,
                                            labels=self._labels()).id

    def _place(self, name: str, index: int) -> tuple[str, Path]:
        """The address of the ``index``-th node, and its directory (made, with data/)."""
        root = self.workdir / "nodes" / name
        (root / "data").mkdir(parents=True, exist_ok=True)
        return f"10.78.{self.block}.{index}", root

    def _create_node(self, name: str, index: int) -> DockerNode:
        address, root = self._place(name, index)
        node = DockerNode(self, name, address, root, self._create_container(
            name, address, node_image(), ["sleep", "infinity"], hostname=name, init=True))
        self._client.api.start(node.container)
        node.entered(self._client.api.inspect_container(node.container)["State"]["Pid"])
        return node

    def _create_container(self, name: str, address: str, image: str, command, *,
                          hostname: str, init: bool, binds: Sequence[str] = (),
                          labels: dict[str, str] | None = None, **options) -> str:
        """Create (not start) the container of node ``name`` on the run's network, with
        composer's directories and ``binds`` mounted; return its id."""
        api = self._client.api
        endpoint = api.create_endpoint_config(ipv4_address=address, aliases=[name])
        host = {key: options.pop(key) for key in ("cap_add", "cap_drop", "privileged")
                if key in options}
        created = api.create_container(
            image, command, name=f"composer-{self.block}-{name}", hostname=hostname,
            labels={**(labels or {}), **self._labels()}, detach=True,
            host_config=api.create_host_config(
                init=init, binds=[f"{path}:{path}" for path in self._mounts] + list(binds),
                network_mode=f"composer-{self.block}", **host),
            networking_config=api.create_networking_config({f"composer-{self.block}": endpoint}),
            **options)
        return created["Id"]

    async def shape_network(self, network: Network) -> None:
        self.shape = network
        views = node_views(network, {n.name: n.address for n in self._nodes})
        running = [n for n in self._nodes if n.network is not None]
        results = await asyncio.gather(*(n.network.apply(views[n.name]) for n in running),
                                       return_exceptions=True)
        failed = [f"{n.name}: {r}" for n, r in zip(running, results)
                  if isinstance(r, BaseException)]
        if failed:
            raise InfraError(f"docker network faults failed: {'; '.join(failed)}")

    def control_host(self, node: str) -> str:
        return self._control

    async def control_socket(self) -> socket.socket:
        """A host socket on the run network's gateway: containers reach it through the
        host's input hook, not the forward hook Docker filters."""
        if self._network_id is None:
            raise InfraError("docker: the run's network does not exist yet")
        return control.listen_socket(self._control)

    async def cleanup(self) -> None:
        shapers = self._left_behind + [n.network for n in self._nodes if n.network]
        self._left_behind = []
        await asyncio.gather(*(s.close() for s in shapers), return_exceptions=True)
        errors = await destroy_all(self._processes)
        if self._claim is not None:
            api = self._client.api
            removals = [asyncio.to_thread(api.remove_container, n.container, force=True, v=True)
                        for n in self._nodes]
            results = await asyncio.gather(*removals, return_exceptions=True)
            errors.extend(r for r in results if isinstance(r, BaseException))
            # and any container that failed half way through new_nodes
            await asyncio.to_thread(leftovers.sweep_docker, self.block)
            self._nodes.clear()
            self._network_id = None
            REAPER.tell("swept", self.block)
            self._claim.close()
            self._claim = None
        if errors:
            raise InfraError(f"docker cleanup failed: {'; '.join(map(str, errors))}")


def fault_kinds() -> frozenset[str]:
    """Process and network faults (packet faults with netem or the packet shaper); not
    clock yet."""
    kinds = {"kill", "stop", "pause", "partition", "loss", "bandwidth"}
    return frozenset(kinds) | packet_kinds()


@functools.cache
def engine():
    """Return a docker client; ``ConfigError`` saying what to do if there is no engine."""
    missing = [tool for tool in _TOOLS if not shutil.which(tool)]
    if os.geteuid() != 0 or missing:
        raise ConfigError("--cluster docker needs root (processes enter containers with "
                          "nsenter) and " + ", ".join(_TOOLS)
                          + (f" (missing: {', '.join(missing)})" if missing else ""))
    try:
        import docker
    except ImportError:
        raise ConfigError("--cluster docker needs the docker SDK: pip install docker") from None
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise ConfigError(f"--cluster docker: no Docker engine answers ({exc}); start one "
                          "(bash docker/setup-engine)") from None
    return client


def need_image(client, image: str, how: str) -> None:
    """``ConfigError`` if the engine does not have ``image``; ``how`` says how to get it."""
    try:
        client.images.get(image)
    except Exception:
        raise ConfigError(f"docker: image {image} not found; {how}") from None


def _cgroups_of(pid: int) -> list[Path]:
    """Return the cgroup directories (cgroup2, or each v1 hierarchy) of process ``pid``."""
    mounts: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        if len(fields) != 2 or not fields[1].startswith("cgroup"):
            continue
        point, (kind, _, options) = Path(fields[0].split()[4]), fields[1].split()[:3]
        if kind == "cgroup2":
            mounts.setdefault("", point)
        for option in options.split(","):
            mounts.setdefault(option, point)
    found = []
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        point = mounts.get(controllers.split(",")[0])
        if point is not None and (point / path.lstrip("/")).is_dir():
            found.append(point / path.lstrip("/"))
    return found
