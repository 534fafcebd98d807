"""The sync service of one timeline: started once its nodes exist, ended with it.

Each timeline gets a service of its own where its cluster's nodes reach it
(``composer.clusters.control``), so no state can leak between timelines, and jobs running
side by side never share one. Every process of the timeline finds it through the
environment, in composer's names and in Testground's (DESIGN.md, Sync service):

- ``COMPOSER_SYNC_URL``, ``SYNC_SERVICE_HOST``, ``SYNC_SERVICE_PORT``;
- ``TEST_RUN`` (the timeline), ``TEST_PLAN`` (the project), ``TEST_CASE`` (the template),
  which scope every state and topic name as Testground's SDKs do;
- ``TEST_INSTANCE_COUNT``: the nodes that run a service (Testground's instances),
  ``TEST_GROUP_ID`` / ``TEST_GROUP_INSTANCE_COUNT``: the process's service and its
  replicas, ``TEST_SIDECAR``: whether ``configure_network`` can shape links here;
- ``TEST_SUBNET`` (the nodes' network, where a Go plan looks for its data address),
  ``TEST_START_TIME`` and ``TEST_OUTPUTS_PATH`` (``nodes/<node>/outputs`` of the
  timeline's directory), as Testground's runtime reads them.

As Testground's sidecar does, composer enters ``network-initialized`` once per instance
before any service starts, so a plan's ``WaitNetworkInitialized`` returns. When the
timeline ends, every wait still open is released with an error saying so.
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from composer.clusters.base import Cluster
from composer.clusters.control import SYNC_PORT
from composer.errors import InfraError
from composer.sync_service import SyncService
from composer.sync_state import SyncState

__all__ = ["TimelineSync", "NETWORK_INITIALIZED"]

#: the state Testground's sidecar enters once per instance when its network is ready
NETWORK_INITIALIZED = "network-initialized"


class TimelineSync:
    """One timeline's sync service and the environment that leads its processes to it.

    ``groups`` maps each instance node (a node running a service) to its service;
    ``label`` starts the run's name (``TEST_RUN``), which is unique.
    """

    def __init__(self, cluster: Cluster, plan: str, case: str, groups: Mapping[str, str],
                 label: str = "timeline", shaping: bool = False) -> None:
        self.cluster = cluster
        self.plan, self.case, self.groups = plan, case, dict(groups)
        self.run = f"{label}-{uuid.uuid4().hex[:8]}"
        self.shaping = shaping
        self.state = SyncState()
        self.service: SyncService | None = None

    @property
    def prefix(self) -> str:
        """What every state and topic name of this timeline starts with."""
        return f"run:{self.run}:plan:{self.plan}:case:{self.case}"

    async def start(self) -> None:
        """Listen where the cluster's nodes reach the service; ``InfraError`` if it
        cannot (nothing happens on a backend without a control plane)."""
        try:
            sock = await self.cluster.control_socket()
        except OSError as exc:
            raise InfraError(str(exc)) from None
        if sock is None:
            return
        self.service = await SyncService(state=self.state).start(sock)
        for _ in self.groups:
            self.state.signal_entry(f"{self.prefix}:states:{NETWORK_INITIALIZED}")

    def environment(self, nodes: Sequence[str], directory: Path | None = None
                    ) -> dict[str, dict[str, str]]:
        """The variables of each node's processes (none for a node without a control
        address); known before the service listens, so containers made before it can
        carry them. ``directory``: the timeline's, for the outputs."""
        common = {
            **({"TEST_SUBNET": self.cluster.subnet} if self.cluster.subnet else {}),
            "TEST_START_TIME": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "SYNC_SERVICE_PORT": str(SYNC_PORT),
            "TEST_RUN": self.run, "TEST_PLAN": self.plan, "TEST_CASE": self.case,
            "TEST_INSTANCE_COUNT": str(len(self.groups)),
            "TEST_SIDECAR": "true" if self.shaping else "false",
        }
        sizes = collections.Counter(self.groups.values())
        result = {}
        for node in nodes:
            host = self.cluster.control_host(node)
            if host is None:
                continue
            group = self.groups.get(node)
            result[node] = {**common, "COMPOSER_SYNC_URL": f"ws://{host}:{SYNC_PORT}",
                            "SYNC_SERVICE_HOST": host}
            if directory is not None:
                outputs = directory / "nodes" / node / "outputs"
                outputs.mkdir(parents=True, exist_ok=True)
                result[node]["TEST_OUTPUTS_PATH"] = str(outputs)
            if group is not None:
                result[node].update(TEST_GROUP_ID=group,
                                    TEST_GROUP_INSTANCE_COUNT=str(sizes[group]))
        return result

    async def close(self) -> None:
        """End every wait of the timeline with an error, then stop listening."""
        self.state.end_scope("", "the timeline ended: its sync service is closing")
        if self.service is not None:
            await self.service.stop()
            self.service = None
