"""The cluster backend interface: a small Cluster, a two-method Node, a Process.

Imports only ``composer.faults`` and the standard library. Backends know nothing of
Hypothesis, schedules or properties; the runner talks to every backend through these
protocols alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from composer.faults import Network

__all__ = ["ProcessSpec", "Process", "Node", "Cluster", "LOG_LIMIT"]

#: Bytes of stdout (and of stderr) kept per process; the rest is dropped, not buffered.
LOG_LIMIT = 10 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    """What to start on a node; log paths are on the machine running composer."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    stdout: Path
    stderr: Path
    log_limit: int = LOG_LIMIT


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


class Node(Protocol):
    """One machine of the cluster, with its own address and data directory."""

    name: str
    address: str
    #: survives kill/restart of the node's processes; path as the node's processes see it
    data_dir: Path

    async def start(self, spec: ProcessSpec) -> Process:
        """Start a process; raise ``InfraError`` if the backend cannot."""

    async def probe(self, port: int, timeout: float) -> bool:
        """Return whether something on this node accepts TCP connections on ``port``."""


class Cluster(Protocol):
    """A set of nodes of one backend. Not safe to use from several tasks at once."""

    #: fault kinds this backend can apply (see ``composer.faults``)
    capabilities: frozenset[str]

    async def new_nodes(self, names: Sequence[str]) -> list[Node]:
        """Create one node per name, in order."""

    async def shape_network(self, network: Network) -> None:
        """Make traffic between this cluster's nodes behave as ``network`` says, replacing
        what an earlier call asked; only called with kinds in ``capabilities``."""

    async def cleanup(self) -> None:
        """Kill every process and remove every node; safe to call twice; collects all errors."""
