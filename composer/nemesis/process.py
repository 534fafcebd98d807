"""Process faults: kill, stop (SIGTERM, then SIGKILL after a grace) and pause (SIGSTOP).

A fault is logged when its signal is sent; a stop's grace wait runs beside the schedule
(in ``ServiceNode``), so the heal still comes at the planned end. Healing restarts a
killed or stopped service and continues a paused one.
"""

from __future__ import annotations

import asyncio

from composer.nemesis.family import Family, Note, to_the_end
from composer.services import ServiceNode
from composer.timeline import Fault

__all__ = ["ProcessFaults"]


class ProcessFaults(Family):
    def __init__(self, services: dict[str, ServiceNode], t0: float, note: Note) -> None:
        super().__init__(t0, note)
        self.services = services
        #: node -> the process fault holding it
        self.faulted: dict[str, str] = {}

    async def hold(self, fault: Fault, due: float) -> None:
        hit, skipped = [], {}
        for target in fault.targets:
            service = self.services.get(target)
            if service is None:
                continue  # a node without a service process
            service.check_exited()
            if target in self.faulted:
                skipped[target] = f"{self.faulted[target]} holds it"
            elif service.state != "running":
                skipped[target] = f"{service.state}, not running"
            else:
                # Recorded before applying: a heal may come while a stop still waits.
                self.faulted[target] = fault.kind
                hit.append(target)
        await asyncio.gather(*(self.services[t].apply(fault.kind) for t in hit))
        if skipped:
            self.note("skip", fault=fault.kind, targets=list(skipped), reason="; ".join(
                f"{target}: {why}" for target, why in skipped.items()))
        if not hit:
            return
        self.note("fault", kind=fault.kind, targets=hit, planned=list(fault.targets),
                  planned_t=self.planned(due))
        try:
            await self.until(due + fault.duration)
        finally:
            await to_the_end(self.undo(hit, due + fault.duration))

    async def undo(self, targets: list[str], due: float | None = None) -> None:
        healed = [t for t in targets if self.faulted.pop(t, None) is not None]
        if self.closing:
            return  # cleanup kills every process anyway: restarting them would be waste
        for target in healed:
            await self.services[target].heal()
        if healed:
            self.note("heal", targets=healed,
                      planned_t=None if due is None else self.planned(due))

    async def undo_all(self) -> None:
        await self.undo(list(self.faulted))
