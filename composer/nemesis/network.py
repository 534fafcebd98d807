"""Network faults (partitions, loss, bandwidth and packet faults): overlapping freely,
enforced together by the cluster as one network view, on top of the links nodes asked
for themselves (``configure_network``)."""

from __future__ import annotations

import asyncio
from typing import Any

from composer.clusters.base import Cluster
from composer.faults import network_of
from composer.nemesis.family import Family, Note, to_the_end
from composer.timeline import Fault

__all__ = ["NetworkFaults"]


class NetworkFaults(Family):
    def __init__(self, cluster: Cluster, nodes: list[str], t0: float, note: Note) -> None:
        super().__init__(t0, note)
        self.cluster, self.nodes = cluster, nodes
        #: network faults in effect, in the order they began
        self.in_effect: list[Fault] = []
        #: node -> the link it configured for itself (``composer.links.Link``)
        self.links: dict[str, Any] = {}
        self.lock = asyncio.Lock()

    async def hold(self, fault: Fault, due: float) -> None:
        try:  # cancelled even while being applied, it is still removed
            self.in_effect.append(fault)
            await self.reshape()
            self.note("fault", kind=fault.kind, targets=list(fault.targets), shape=fault.shape,
                      amount=fault.amount, planned_t=self.planned(due))
            await self.until(due + fault.duration)
        finally:
            self.in_effect.remove(fault)
            if not self.closing:  # cleanup removes the rules with the nodes
                await to_the_end(self.heal(fault, due))

    async def heal(self, fault: Fault, due: float) -> None:
        await self.reshape()
        self.note("heal", kind=fault.kind, targets=list(fault.targets),
                  planned_t=self.planned(due + fault.duration))

    async def configure_link(self, node: str, link: Any) -> None:
        """Give ``node`` the link it asked for; faults keep adding to it."""
        self.links[node] = link
        if not self.closing:  # the cluster is going: nothing to reshape
            await self.reshape()

    async def reshape(self) -> None:
        """Enforce the network faults in effect now. One change at a time, each computed
        once the previous is in force: two heals at once must not let the older state,
        applied last, bring back a healed fault."""
        async with self.lock:
            await self.cluster.shape_network(network_of(self.in_effect, self.nodes, self.links))
