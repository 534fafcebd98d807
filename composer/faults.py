"""Fault kinds as data, and the capability set a backend declares.

Imports only the standard library. Backends apply faults; schedules draw them from a
``Capabilities`` value and never see a cluster.
"""

from __future__ import annotations

import dataclasses

__all__ = ["PROCESS_FAULTS", "NETWORK_FAULTS", "ALL_FAULTS", "Capabilities"]

#: Faults applied to a node's service processes by signals: kill (SIGKILL, restart at
#: heal), stop (SIGTERM, restart at heal), pause (SIGSTOP, SIGCONT at heal).
PROCESS_FAULTS = frozenset({"kill", "stop", "pause"})
#: Faults applied to a node's network.
NETWORK_FAULTS = frozenset({"partition", "loss", "latency", "bandwidth"})
ALL_FAULTS = PROCESS_FAULTS | NETWORK_FAULTS | {"clock"}


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a schedule may draw for one cluster: fault kinds, their targets, driver nodes."""

    #: fault kinds the backend supports and the project allows
    faults: frozenset[str]
    #: nodes that run a service, so a fault on them means something
    fault_targets: tuple[str, ...]
    #: nodes that drivers run on
    driver_nodes: tuple[str, ...]
    #: most parallel_driver copies at once
    max_parallel: int

    def restricted(self, allowed: tuple[str, ...] | None) -> Capabilities:
        """Return these capabilities with faults limited to ``allowed`` (None: no limit)."""
        if allowed is None:
            return self
        return dataclasses.replace(self, faults=self.faults & frozenset(allowed))
