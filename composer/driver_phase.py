"""The driver phase of one timeline: each event at its planned time, under the prefix rules.

The schedule interpreter (Jepsen's generator interpreter): command starts go to
``Invocations`` when their time comes *and* the prefix rules of DESIGN.md allow them,
faults go to the nemesis, and the phase lasts the timeline's length whatever its
commands do. ``may_start`` is the prefix rules alone, a pure function. Imports
invocations, templates and timeline; the nemesis comes in as an object.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

from composer.invocations import Invocations
from composer.run_record import RunRecord
from composer.templates import Template
from composer.timeline import Fault, Start, Timeline

__all__ = ["DRIVERS", "may_start", "run_driver_phase"]

#: the command kinds the prefix rules hold back (the others start whenever planned)
DRIVERS = ("parallel_driver", "serial_driver", "singleton_driver")


class FaultStarter(Protocol):
    def start(self, faults: list[Fault], start: float, length: float) -> None: ...


def may_start(kind: str, running: Sequence[str], max_parallel: int) -> bool:
    """Whether a command of ``kind`` may start while commands of the ``running`` kinds
    run: parallel drivers only beside other parallel drivers, at most ``max_parallel``
    of them; a serial or singleton driver only when no driver runs; anything else
    always."""
    drivers = [k for k in running if k in DRIVERS]
    if kind == "parallel_driver":
        return all(k == "parallel_driver" for k in drivers) and len(drivers) < max_parallel
    if kind in ("serial_driver", "singleton_driver"):
        return not drivers
    return True


async def run_driver_phase(timeline: Timeline, template: Template, commands: Invocations,
                           nemesis: FaultStarter, max_parallel: int,
                           record: RunRecord) -> float:
    """Run ``timeline``'s driver phase to its end; return when it began (seconds since
    the run began)."""
    start = time.monotonic()
    end = start + timeline.length
    nemesis.start([e for e in timeline.events if isinstance(e, Fault)], start,
                  timeline.length)
    starts = sorted((e for e in timeline.events if isinstance(e, Start)), key=lambda e: e.at)
    await asyncio.gather(*(_start_when_allowed(e, start, end, template, commands,
                                               max_parallel, record) for e in starts))
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    record.note("driver phase over")
    return start - record.t0


async def _start_when_allowed(event: Start, start: float, end: float, template: Template,
                              commands: Invocations, max_parallel: int,
                              record: RunRecord) -> None:
    """Start ``event``'s command at its time, or once the prefix rules allow it.

    Each start waits on its own: a serial driver waiting for the parallel ones to finish
    holds back no later parallel driver (every event starts at its planned time whatever
    an earlier one is doing), so it may wait until the phase is over, which the log
    says."""
    await asyncio.sleep(max(0.0, start + event.at - time.monotonic()))
    command = template.command(event.command)

    def allowed() -> bool:
        return may_start(command.kind, [i.command.kind for i in commands.running()],
                         max_parallel)

    async with commands.changed:
        try:
            if not allowed():
                await asyncio.wait_for(commands.changed.wait_for(allowed),
                                       max(0.0, end - time.monotonic()))
        except asyncio.TimeoutError:
            record.note("skip", command=command.name, reason="driver phase over before "
                        "the prefix rules allowed it to start")
            return
    await commands.invoke(command, event.node, event.seed)
