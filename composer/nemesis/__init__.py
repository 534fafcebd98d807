"""Applies a timeline's faults to a running cluster and undoes them: Jepsen's nemesis.

The driver phase hands every fault to ``Nemesis.start``; the nemesis waits for its time
(or for the state it waits for, ``Fault.after``) and gives it to its family, which
applies it, holds it to its planned end and undoes it, logging planned (``planned_t``)
and actual (``t``) times: process faults (``process``), network faults (``network``),
clock offsets (``clock``). Every fault runs in its own task, so a slow one (a stop
waiting for its process) delays no other. ``heal_all`` undoes whatever is still in
effect, on every exit path. Imports faults, hits, services, timeline and the cluster
interface; never the runner.
"""

from __future__ import annotations

import asyncio
import time

from composer.clusters.base import Cluster
from composer.faults import PROCESS_FAULTS
from composer.hits import HitWatcher
from composer.nemesis.clock import ClockFaults
from composer.nemesis.family import Note
from composer.nemesis.network import NetworkFaults
from composer.nemesis.process import ProcessFaults
from composer.services import Environment, ServiceNode
from composer.timeline import Fault

__all__ = ["Nemesis"]


class Nemesis:
    """The faults of one timeline's run: when each comes, and which family holds it."""

    def __init__(self, cluster: Cluster, services: dict[str, ServiceNode], env: Environment,
                 hits: HitWatcher, t0: float, note: Note) -> None:
        self.env, self.hits, self.t0, self.note = env, hits, t0, note
        self.process = ProcessFaults(services, t0, note)
        self.network = NetworkFaults(cluster, list(services), t0, note)
        self.clock = ClockFaults(services, t0, note)
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
        due = start + fault.at
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if self.env.faults_paused():
            self.note("skip", fault=fault.kind, reason="faults paused by ANTITHESIS_STOP_FAULTS")
            return
        family = (self.process if fault.kind in PROCESS_FAULTS
                  else self.clock if fault.kind == "clock" else self.network)
        await family.hold(fault, due)

    def closing(self) -> None:
        """The cluster is being torn down: restart and reshape nothing any more."""
        for family in (self.process, self.network, self.clock):
            family.closing = True

    async def heal_all(self) -> None:
        """Cancel every fault still waiting or holding and undo what is in effect."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.process.undo_all()
