"""The cluster backend interface: a small Cluster, a two-method Node, a Process.

Imports only ``composer.faults``, ``composer_agent.clock`` and the standard library. Backends know nothing of
Hypothesis, schedules or properties; the runner talks to every backend through these
protocols alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from composer.faults import Network
from composer_agent import clock

__all__ = ["ProcessSpec", "Process", "Node", "ContainerNode", "Cluster", "LOG_LIMIT",
           "ProbeByDial", "SharedFiles"]

#: Bytes of stdout (and of stderr) kept per process; the rest is dropped, not buffered.
LOG_LIMIT = 10 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    """What to start on a node; log paths are on the machine running composer."""

    argv: tuple[str, ...]
    #: the whole environment; None: the node's own (composer's, on host backends)
    env: Mapping[str, str] | None
    cwd: Path
    stdout: Path
    stderr: Path
    log_limit: int = LOG_LIMIT
    #: give the process a stdin pipe (``Process.write_stdin``) instead of /dev/null
    stdin: bool = False
    #: variables set on top of ``env``
    extra_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: the file on the node whose offset moves the process's wall clock (clock faults)
    clock: Path | None = None

    def environment(self, own: Mapping[str, str]) -> dict[str, str]:
        """The environment to start with on this machine, given the node's ``own`` (an
        agent makes the clock's variables on its own machine instead)."""
        clocked = clock.environment(self.clock) if self.clock is not None else {}
        return {**(own if self.env is None else self.env), **self.extra_env, **clocked}


class Process(Protocol):
    """A process started on a node, in its own process group."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None:
        """Exit code once exited (negative: killed by that signal), else None."""

    async def wait(self) -> int:
        """Wait for the process to exit and return its exit code."""

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process and all it started; no-op once it has exited."""

    async def end_leftovers(self) -> bool:
        """Once the process has exited, kill what it left running (a background child
        still holding its stdout); return whether anything was left."""

    async def write_stdin(self, data: bytes) -> None:
        """Write to the process's stdin (started with ``ProcessSpec.stdin``)."""

    async def close_stdin(self) -> None:
        """Close the process's stdin, so it reads end-of-file."""


class Node(Protocol):
    """One machine of the cluster, with its own address and data directory."""

    name: str
    address: str
    #: the node's own directory, removed with the node; path as its processes see it
    root: Path
    #: survives kill/restart of the node's processes (inside ``root``)
    data_dir: Path

    async def start(self, spec: ProcessSpec) -> Process:
        """Start a process; raise ``InfraError`` if the backend cannot."""

    async def probe(self, port: int, timeout: float) -> bool:
        """Return whether something on this node accepts TCP connections on ``port``."""

    async def dial(self, port: int, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to ``port`` on this node as its own processes would; raise ``OSError``."""

    async def send_file(self, path: Path, source: bytes | Path, mode: int = 0o644) -> None:
        """Write ``source`` (bytes, or a local file streamed) to ``path`` on the node."""

    async def read_file(self, path: Path) -> bytes:
        """Return the contents of ``path`` on the node; raise ``FileNotFoundError``."""


class ContainerNode(Node, Protocol):
    """A node whose container's own main process is the service (compose mode)."""

    async def start_main(self, spec: ProcessSpec) -> Process:
        """Start (or start again) the container; ``spec`` gives only the log paths."""


class Cluster(Protocol):
    """A set of nodes of one backend. Not safe to use from several tasks at once.

    Backends are made with ``(workdir, shared=(), **options)``: ``shared`` names host
    directories every node must see at the same path (the project); container backends
    mount them, host backends see them anyway.
    """

    #: fault kinds this backend can apply (see ``composer.faults``)
    capabilities: frozenset[str]
    #: the network the nodes' addresses are on (None: not one composer knows)
    subnet: str | None

    async def new_nodes(self, names: Sequence[str]) -> list[Node]:
        """Create one node per name, in order."""

    async def shape_network(self, network: Network) -> None:
        """Make traffic between this cluster's nodes behave as ``network`` says, replacing
        what an earlier call asked; only called with kinds in ``capabilities``."""

    def environment(self, node: str) -> dict[str, str]:
        """Variables ``node``'s processes need beyond composer's own: where its copy of
        composer's SDK is, on a machine that does not share this one's files."""

    async def share(self, path: Path) -> None:
        """Make this machine's file (or directory) ``path`` exist at the same path on
        every node (a no-op where the nodes see this machine's files)."""

    def control_host(self, node: str) -> str | None:
        """The address ``node`` reaches the run's sync service at (port 5050), which no
        fault cuts (``composer.clusters.control``); None: this backend has none."""

    async def control_socket(self) -> socket.socket | None:
        """Return a TCP socket (once nodes exist) for the sync service to listen on,
        which the nodes reach at ``control_host(node)`` port 5050 (None: no control
        plane here)."""

    async def cleanup(self) -> None:
        """Kill every process and remove every node; safe to call twice; collects all errors."""


class SharedFiles:
    """``environment`` and ``share`` for backends whose nodes see this machine's files
    at the same paths (host nodes; containers mount them)."""

    def environment(self, node: str) -> dict[str, str]:
        return {}

    async def share(self, path: Path) -> None:
        pass


class ProbeByDial:
    """``Node.probe`` for nodes that can ``dial``: a port is open if a dial succeeds."""

    async def probe(self, port: int, timeout: float) -> bool:
        try:
            _, writer = await self.dial(port, timeout)  # type: ignore[attr-defined]
        except OSError:
            return False
        writer.close()
        return True
