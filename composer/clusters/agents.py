"""The ``agents`` backend: each node is a machine running ``composer-agent``.

Imports ``composer_agent.client``, ``composer_agent.tls``, ``composer.clusters.base``, ``composer.errors``
and the standard library. The machines are listed in an agents file (like ducktape's
cluster file), TOML or JSON; paths in it are relative to the file:

    ca = "certs/ca.pem"          # the CA the agents' certificates come from
    cert = "certs/client.pem"    # composer's client certificate and key, same CA
    key = "certs/client.key"

    [[agents]]
    url = "https://10.0.0.2:7800"
    address = "10.0.0.2"         # how the other nodes reach it (default: the url's host)

``composer-agent certs`` makes such certificates. Each agent serves one node of a
cluster at a time; a node's files live in a directory of its own under the agent's
root, removed with the node. Heartbeats keep the agents alive while the cluster is up;
if composer dies, every agent kills what it started once its heartbeat timeout passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import socket
import threading
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from composer.clusters import control
from composer.clusters.agent_mirror import Mirror
from composer.clusters.base import ProbeByDial, ProcessSpec
from composer.clusters.control import SYNC_PORT
from composer.errors import ConfigError, InfraError
from composer.faults import PACKET_FAULTS, Network
from composer.links import shaper_config

__all__ = ["AgentsCluster", "AgentNode", "AgentsFile", "load_agents_file", "node_views"]

#: the urls of agents a cluster of this process holds now, and the lock guarding them
_LEASED: set[str] = set()
_LEASE_LOCK = threading.Lock()
#: faults an agent applies where its machine lets it: network faults (root, nftables,
#: tc), clock (libfaketime and a C compiler); each agent says which in its heartbeat
_ASKED_KINDS = frozenset({"partition", "loss", "bandwidth", *PACKET_FAULTS, "clock"})


@dataclasses.dataclass(frozen=True)
class AgentsFile:
    """The agents to use and the credentials to reach them."""

    ca: Path
    cert: Path
    key: Path
    urls: tuple[str, ...]
    addresses: tuple[str, ...]


def load_agents_file(path: Path) -> AgentsFile:
    """Read an agents file; ``ConfigError`` naming the file and key when it is wrong."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"agents file {path}: cannot read it ({exc.strerror})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"agents file {path}: not valid {path.suffix[1:] or 'TOML'}: {exc}") from None
    files = {}
    for key in ("ca", "cert", "key"):
        if not isinstance(data.get(key), str):
            raise ConfigError(f"agents file {path}: {key} = \"<file>\" is missing "
                              "(composer-agent certs makes the CA and certificates)")
        files[key] = (path.parent / data[key]).resolve()
        if not files[key].is_file():
            raise ConfigError(f"agents file {path}: {key} = {data[key]!r}: no such file")
    agents = data.get("agents")
    if not isinstance(agents, list) or not agents:
        raise ConfigError(f"agents file {path}: list the agents as [[agents]] tables with "
                          "url = \"https://HOST:PORT\"")
    urls, addresses = [], []
    for i, entry in enumerate(agents, start=1):
        url = entry.get("url") if isinstance(entry, dict) else None
        host = urlsplit(url).hostname if isinstance(url, str) else None
        if not isinstance(url, str) or not url.startswith("https://") or not host:
            raise ConfigError(f"agents file {path}: agent {i}: url = \"https://HOST:PORT\" "
                              f"expected, got {url!r}")
        urls.append(url)
        addresses.append(str(entry.get("address") or host))
    return AgentsFile(files["ca"], files["cert"], files["key"], tuple(urls), tuple(addresses))


class AgentNode(ProbeByDial):
    """A node on a machine running the agent."""

    def __init__(self, cluster: AgentsCluster, name: str, client, address: str,
                 root: Path) -> None:
        self._cluster = cluster
        self._client = client
        self.name = name
        self.address = address
        self.root = root
        self.data_dir = root / "data"

    async def start(self, spec: ProcessSpec):
        from composer_agent.client import AgentError

        spec.stdout.parent.mkdir(parents=True, exist_ok=True)
        spec.stderr.parent.mkdir(parents=True, exist_ok=True)
        try:
            process = await self._client.start(
                spec.argv, env=spec.env, env_add=dict(spec.extra_env), cwd=str(spec.cwd),
                stdout=spec.stdout, stderr=spec.stderr, stdin=spec.stdin,
                log_limit=spec.log_limit, clock=str(spec.clock) if spec.clock else None)
        except (AgentError, OSError) as exc:
            raise InfraError(f"{self.name}: cannot start {spec.argv[0]!r}: {exc}") from None
        self._cluster._processes.append(process)
        return process

    async def dial(self, port: int, timeout: float):
        try:
            return await asyncio.wait_for(self._client.dial(port, self.address), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self.name}: port {port} did not answer in {timeout}s") from None
        except Exception as exc:  # the agent's refusal is this node's connection refused
            raise ConnectionRefusedError(f"{self.name}: port {port}: {exc}") from None

    async def send_file(self, path: Path, source: bytes | Path, mode: int = 0o644) -> None:
        await self._client.put_file(str(path), source, mode)

    async def read_file(self, path: Path) -> bytes:
        from composer_agent.client import AgentError

        try:
            return await self._client.read_file(str(path))
        except AgentError as exc:
            if getattr(exc, "status", None) == 404:
                raise FileNotFoundError(f"{self.name}: {path}") from None
            raise


class AgentsCluster:
    """One node per listed agent; output of remote processes is copied under ``workdir``."""

    #: whether the backend makes its own agents file when given none (aws: by launching)
    makes_agents = False

    def __init__(self, workdir: Path, agents: Path | None = None,
                 shared: Sequence[Path] = ()) -> None:
        if agents is None and not self.makes_agents:
            raise ConfigError("the agents backend needs an agents file listing running "
                              "agents (pytest --composer-agents FILE, Cluster(agents=FILE))")
        self.workdir = workdir
        self.capabilities = self.supported()
        #: the nodes' subnet is the agents' machines' own: not known here
        self.subnet: str | None = None
        self._listeners: list[asyncio.Task] = []
        #: the project and the timeline's files on agents that do not share ours
        self._mirror = Mirror(workdir, shared)
        self._pulls: asyncio.Future | None = None
        self._file: AgentsFile | None = load_agents_file(agents) if agents else None
        self._run = uuid.uuid4().hex[:8]
        self._nodes: list[AgentNode] = []
        #: the urls of the agents this cluster holds (see ``_lease``)
        self._leased: list[str] = []
        self._processes: list = []
        self._heartbeats: asyncio.Task | None = None
        self._asked_kinds = _ASKED_KINDS
        self._shaped = False

    @staticmethod
    def supported() -> frozenset[str]:
        """Process faults; network and clock faults join ``capabilities`` once every
        agent of the cluster says it can apply them."""
        return frozenset({"kill", "stop", "pause"})

    @staticmethod
    def asked(agents: Path) -> frozenset[str]:
        """What every agent listed in ``agents`` says it can apply (each asked once), as
        an exploration must know before its first timeline; ``InfraError`` if one does
        not answer."""
        from composer_agent.client import AgentClient, AgentError
        from composer_agent.tls import Credentials

        listed = load_agents_file(agents)
        credentials = Credentials(listed.ca, listed.cert, listed.key)

        async def ask() -> list[dict]:
            clients = [AgentClient(url, credentials) for url in listed.urls]
            try:
                return await asyncio.gather(*(c.heartbeat() for c in clients))
            finally:
                await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

        try:
            beats = asyncio.run(ask())
        except (AgentError, OSError) as exc:
            raise InfraError(f"agents backend: an agent listed in {agents} does not answer: "
                             f"{exc}") from None
        asked = _ASKED_KINDS
        for beat in beats:
            asked &= frozenset(beat.get("faults", ()))
        return AgentsCluster.supported() | asked

    @staticmethod
    def limitations() -> dict[str, str]:
        why = dict.fromkeys(sorted(_ASKED_KINDS - {"clock"}),
                            "needs agents running as root with nftables and tc")
        why["clock"] = ("needs libfaketime and a C compiler on the agents' machines "
                        "(apt-get install faketime gcc)")
        return why

    async def new_nodes(self, names: Sequence[str]) -> list[AgentNode]:
        from composer_agent.tls import Credentials
        from composer_agent.client import AgentClient, AgentError

        credentials = Credentials(self._file.ca, self._file.cert, self._file.key)
        chosen = self._lease(len(names))
        clients = [AgentClient(self._file.urls[i], credentials) for i in chosen]
        try:
            beats = await asyncio.gather(*(c.heartbeat() for c in clients))
        except (AgentError, OSError) as exc:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
            raise InfraError(f"agents backend: an agent does not answer: {exc}") from None
        nodes = [AgentNode(self, name, client, self._file.addresses[i],
                           Path(beat["root"]) / f"composer-{self._run}" / name)
                 for i, name, client, beat in zip(chosen, names, clients, beats)]
        for beat in beats:
            self._asked_kinds &= frozenset(beat.get("faults", ()))
        self.capabilities = self.supported() | self._asked_kinds
        self._nodes.extend(nodes)  # from here on, cleanup removes them
        await asyncio.gather(*(_command(node, ["mkdir", "-p", str(node.data_dir)])
                               for node in nodes))
        try:
            await self._mirror.attach(nodes)
        except (AgentError, OSError) as exc:
            raise InfraError(f"agents backend: cannot give a node the project: {exc}") from None
        if self._pulls is None:
            self._pulls = asyncio.ensure_future(self._mirror.pull_while_running())
        if self._heartbeats is None:
            period = max(0.5, min(float(b.get("timeout", 30)) for b in beats) / 3)
            self._heartbeats = asyncio.ensure_future(self._beat(period))
        return nodes

    def _lease(self, count: int) -> list[int]:
        """Hold ``count`` agents no other cluster of this process holds (``--jobs`` runs
        clusters at once, each on agents of its own); return their indexes in the file."""
        urls = self._file.urls
        with _LEASE_LOCK:
            free = [i for i, url in enumerate(urls) if url not in _LEASED]
            if count > len(free):
                raise InfraError(
                    f"{count} more node(s) asked, but {len(free)} of the {len(urls)} agents "
                    "listed are free (each timeline holds one agent per node: with --jobs N, "
                    "list N times as many agents as the project has nodes)")
            chosen = free[:count]
            _LEASED.update(urls[i] for i in chosen)
        self._leased += [urls[i] for i in chosen]
        return chosen

    async def _beat(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            await asyncio.gather(*(n._client.heartbeat() for n in self._nodes),
                                 return_exceptions=True)

    async def shape_network(self, network: Network) -> None:
        from composer_agent.client import AgentError

        views = node_views(network, {n.name: n.address for n in self._nodes})
        views = [views[n.name] for n in self._nodes]
        self._shaped = True
        results = await asyncio.gather(*(n._client.shape_network(v)
                                         for n, v in zip(self._nodes, views)),
                                       return_exceptions=True)
        failed = [f"{n.name}: {r}" for n, r in zip(self._nodes, results) if isinstance(r, AgentError)]
        if failed:
            raise InfraError(f"agents backend: network faults failed: {'; '.join(failed)}")

    def environment(self, node: str) -> dict[str, str]:
        return self._mirror.environment(node)

    async def share(self, path: Path) -> None:
        try:
            await self._mirror.share(path)
        except Exception as exc:
            raise InfraError(f"agents backend: cannot copy {path} to the nodes: {exc}") from None

    def control_host(self, node: str) -> str | None:
        """The node's own address: its agent listens there for the sync service (on
        loopback, agents sharing a machine would collide)."""
        return next((n.address for n in self._nodes if n.name == node), None)

    async def control_socket(self) -> socket.socket:
        """A loopback socket here, for the service; every agent listens on its node's
        address, port 5050, and hands each connection over to be joined to it."""
        from composer_agent.client import AgentError

        sock = socket.socket()
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        here = sock.getsockname()

        async def join(reader: asyncio.StreamReader, writer) -> None:
            try:
                service = await asyncio.open_connection(*here)
            except OSError:
                return
            await control.splice((reader, writer), service)

        try:
            for node in self._nodes:
                self._listeners.append(await node._client.listen(SYNC_PORT, join,
                                                                 node.address))
        except AgentError as exc:
            sock.close()
            raise InfraError(f"agents: no sync service on the nodes: {exc}") from None
        return sock

    async def cleanup(self) -> None:
        errors: list[BaseException] = []
        for listener in self._listeners:  # the agents close their control ports
            listener.cancel()
        await asyncio.gather(*self._listeners, return_exceptions=True)
        self._listeners.clear()
        for process in self._processes:
            process.signal(signal.SIGKILL)
        results = await asyncio.gather(*(asyncio.wait_for(p.wait(), 10) for p in self._processes),
                                       return_exceptions=True)
        errors += [r for r in results if isinstance(r, asyncio.TimeoutError)]
        self._processes.clear()
        if self._pulls is not None:  # what the last processes wrote, then no more
            self._pulls.cancel()
            self._pulls = None
            try:
                await self._mirror.pull()
                await self._mirror.forget()
            except Exception as exc:
                errors.append(exc)
        if self._shaped:  # heal: the agents keep no rule of a finished cluster
            try:
                await self.shape_network(Network())
            except InfraError as exc:
                errors.append(exc)
        removed = await asyncio.gather(
            *(_command(node, ["rm", "-rf", str(node.root.parent)]) for node in self._nodes),
            return_exceptions=True)
        errors += [r for r in removed if isinstance(r, BaseException)]
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeats
            self._heartbeats = None
        await asyncio.gather(*(n._client.close() for n in self._nodes), return_exceptions=True)
        self._nodes.clear()
        with _LEASE_LOCK:
            _LEASED.difference_update(self._leased)
        self._leased.clear()
        if errors:
            raise InfraError(f"agents cleanup failed: {'; '.join(map(repr, errors))}")


def node_views(network: Network, address: Mapping[str, str], drops: bool = True) -> dict:
    """Split ``network`` into what each node's agent enforces on its machine (node name
    -> ``composer_agent.network.NodeNetwork``): what a node sends is dropped or lost where it
    arrives, by each receiver (``drops=False``: partitions and loss are enforced elsewhere),
    shaped and delayed where it leaves."""
    from composer_agent.network import NodeNetwork

    return {node: NodeNetwork(
        peers=tuple(a for name, a in address.items() if name != node),
        drop_from=tuple(sorted(address[s] for s, d in network.blocked if d == node)
                        ) if drops else (),
        loss_from=tuple(sorted((address[s], p) for s, p in network.loss.items() if s != node)
                        ) if drops else (),
        bandwidth=_bandwidth(network, node),
        packets=shaper_config(network.links.get(node), network.packets(node)))
        for node in address}


def _bandwidth(network: Network, node: str) -> float | None:
    """The tighter of the fault's limit and the node's own link's (None: unlimited)."""
    link = network.links.get(node)
    limits = [v for v in (network.bandwidth.get(node), link and link.default.bandwidth) if v]
    return min(limits) if limits else None


async def _command(node: AgentNode, argv: list[str]) -> None:
    process = await node._client.start(argv, env=None, cwd="/")
    if await process.wait() != 0:
        raise InfraError(f"{node.name}: {' '.join(argv)} failed on the agent: "
                         f"{process.stderr_bytes.decode(errors='replace').strip()}")
