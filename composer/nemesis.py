"""Applies a timeline's faults to a running cluster and undoes them: Jepsen's nemesis.

The runner hands each fault of the driver phase to ``Nemesis.start``; the nemesis waits
for its time (or for the state it waits for, ``Fault.after``), applies it (process faults
through the services, network faults through the cluster, clock offsets through
libfaketime files), holds it for its duration and heals it, noting each step in the run
log. ``heal_all`` undoes whatever is still in effect, on every exit path. Imports
faults, hits, services, timeline and the cluster interface; never the runner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from agent import clock
from composer.clusters.base import Cluster
from composer.faults import PROCESS_FAULTS, network_of
from composer.hits import HitWatcher
from composer.services import Environment, ServiceNode
from composer.timeline import Fault

__all__ = ["Nemesis"]

Note = Callable[..., None]


class Nemesis:
    """The faults in effect on one timeline's cluster, and the tasks that apply them."""

    def __init__(self, cluster: Cluster, services: dict[str, ServiceNode], env: Environment,
                 hits: HitWatcher, t0: float, note: Note) -> None:
        self.cluster, self.services, self.env = cluster, services, env
        self.hits, self.t0, self.note = hits, t0, note
        #: node -> the process fault holding it
        self.faulted: dict[str, str] = {}
        #: network faults in effect, in the order they began
        self.network: list[Fault] = []
        self.network_lock = asyncio.Lock()
        #: node -> offsets (s) of the clock faults in effect on it
        self.clock_offsets: dict[str, list[float]] = {}
        #: set once the cluster is being torn down: nothing is restarted or reshaped then
        self.closing = False
        self.tasks: list[asyncio.Future] = []

    def start(self, faults: list[Fault], start: float, length: float) -> None:
        """Apply each fault at its time in a driver phase that began at ``start``
        (monotonic) and lasts ``length`` s."""
        self.tasks += [asyncio.ensure_future(self.fault(f, start, length)) for f in faults]

    async def fault(self, fault: Fault, start: float, length: float) -> None:
        if fault.after is not None:
            trigger, end = fault.after, start + length - self.t0
            try:
                hit = await self.hits.first(trigger.id, trigger.passed, trigger.node,
                                            start - self.t0, end)
            except asyncio.CancelledError:  # the driver phase ended first
                hit = None
            if hit is None:
                self.note("skip", fault=fault.kind,
                          reason=f"the state it waits for never showed ({trigger.describe()})")
                return
            self.note("trigger", fault=fault.kind, state=trigger.describe(), delay=fault.at)
            start = self.t0 + hit.at
        await asyncio.sleep(max(0.0, start + fault.at - time.monotonic()))
        if self.env.faults_paused():
            self.note("skip", fault=fault.kind, reason="faults paused by ANTITHESIS_STOP_FAULTS")
            return
        if fault.kind in PROCESS_FAULTS:
            await self.process_fault(fault)
        elif fault.kind == "clock":
            await self.clock_fault(fault)
        else:
            await self.network_fault(fault)

    async def process_fault(self, fault: Fault) -> None:
        hit = []
        for target in fault.targets:
            service = self.services.get(target)
            if service is None or target in self.faulted or service.state != "running":
                continue
            # Recorded before applying: a heal may come while a stop still waits.
            self.faulted[target] = fault.kind
            hit.append(target)
        await asyncio.gather(*(self.services[t].apply(fault.kind) for t in hit))
        self.note("fault", kind=fault.kind, targets=hit, planned=list(fault.targets))
        if not hit:
            return
        try:
            await asyncio.sleep(fault.duration)
        finally:
            await self.heal(hit)

    async def network_fault(self, fault: Fault) -> None:
        """Network faults overlap freely: the cluster enforces all those in effect."""
        try:  # cancelled even while being applied, it is still removed
            self.network.append(fault)
            await self.reshape_network()
            self.note("fault", kind=fault.kind, targets=list(fault.targets), shape=fault.shape,
                      amount=fault.amount)
            await asyncio.sleep(fault.duration)
        finally:
            self.network.remove(fault)
            if not self.closing:  # cleanup removes the rules with the nodes
                await self.reshape_network()
                self.note("heal", kind=fault.kind, targets=list(fault.targets))

    async def reshape_network(self) -> None:
        """Enforce the network faults in effect now. One change at a time, each computed
        once the previous is in force: two heals at once must not let the older state,
        applied last, bring back a healed fault."""
        async with self.network_lock:
            await self.cluster.shape_network(network_of(self.network, list(self.services)))

    async def clock_fault(self, fault: Fault) -> None:
        """Offsets of overlapping clock faults on one node add up."""
        hit = [self.services[t] for t in fault.targets if t in self.services]
        for service in hit:
            self.clock_offsets.setdefault(service.name, []).append(fault.amount or 0)
            self.set_clock(service)
        self.note("fault", kind="clock", targets=[s.name for s in hit], amount=fault.amount)
        try:
            await asyncio.sleep(fault.duration)
        finally:
            for service in hit:
                self.clock_offsets[service.name].remove(fault.amount or 0)
                self.set_clock(service)
            self.note("heal", kind="clock", targets=[s.name for s in hit])

    def set_clock(self, service: ServiceNode) -> None:
        assert service.clock_file is not None
        clock.set_offset(service.clock_file, sum(self.clock_offsets.get(service.name, ())))

    async def heal(self, targets: list[str]) -> None:
        healed = [t for t in targets if self.faulted.pop(t, None) is not None]
        if self.closing:
            return  # cleanup kills every process anyway: restarting them would be waste
        for target in healed:
            await self.services[target].heal()
        if healed:
            self.note("heal", targets=healed)

    async def heal_all(self) -> None:
        """Cancel every fault still waiting or holding and undo what is in effect."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.heal(list(self.faulted))
