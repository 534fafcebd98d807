"""Clock faults: offsets through libfaketime files; overlapping offsets on one node add up.

Each node's offset file is written through its node (``send_file``, atomic), so it lands
on the machine the node's processes run on: here for host backends, there for agents.
"""

from __future__ import annotations

import asyncio

from composer.nemesis.family import Family, Note
from composer.services import ServiceNode
from composer.timeline import Fault

__all__ = ["ClockFaults"]


class ClockFaults(Family):
    def __init__(self, services: dict[str, ServiceNode], t0: float, note: Note) -> None:
        super().__init__(t0, note)
        self.services = services
        #: node -> offsets (s) of the clock faults in effect on it
        self.offsets: dict[str, list[float]] = {}
        #: node -> the lock its offset file is written under (see ``set_clock``)
        self.writing: dict[str, asyncio.Lock] = {}

    async def hold(self, fault: Fault, due: float) -> None:
        hit = [self.services[t] for t in fault.targets if t in self.services]
        for service in hit:
            self.offsets.setdefault(service.name, []).append(fault.amount or 0)
            await self.set_clock(service)
        self.note("fault", kind="clock", targets=[s.name for s in hit], amount=fault.amount,
                  planned_t=self.planned(due))
        try:
            await self.until(due + fault.duration)
        finally:
            for service in hit:
                self.offsets[service.name].remove(fault.amount or 0)
                await self.set_clock(service)
            self.note("heal", kind="clock", targets=[s.name for s in hit],
                      planned_t=self.planned(due + fault.duration))

    async def set_clock(self, service: ServiceNode) -> None:
        """Write ``service``'s clock file: the sum of the offsets in effect on it."""
        assert service.clock_file is not None
        # one write at a time, the sum taken once it may write: two heals at once must
        # not let the older sum land last (the writes take a thread, or an agent's trip)
        async with self.writing.setdefault(service.name, asyncio.Lock()):
            offset = sum(self.offsets.get(service.name, ()))
            await service.node.send_file(service.clock_file, f"{offset:+g}\n".encode())
