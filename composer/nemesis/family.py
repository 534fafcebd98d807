"""What every fault family shares: the run log's ``note``, times, and closing down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["Family", "Note", "to_the_end"]

Note = Callable[..., None]


class Family:
    """One kind of fault: applies it, holds it to its planned end, undoes it."""

    def __init__(self, t0: float, note: Note) -> None:
        self.t0, self.note = t0, note
        #: set once the cluster is being torn down: nothing is restarted or reshaped then
        self.closing = False

    def planned(self, when: float) -> float:
        """``when`` (monotonic) as the run log counts time."""
        return round(when - self.t0, 3)

    async def until(self, when: float) -> None:
        """Hold until ``when`` (monotonic): a fault ends at its planned time, however long
        applying it took."""
        await asyncio.sleep(max(0.0, when - time.monotonic()))


async def to_the_end(undo: Awaitable) -> None:
    """Await ``undo`` to its end even if this task is cancelled meanwhile, then pass the
    cancellation on. A fault whose planned end is the end of the driver phase starts its
    heal just as ``heal_all`` cancels it: cut in half, the heal left a partition's rules
    in place (etcd's members then never converged) or a killed service unstarted."""
    task = asyncio.ensure_future(undo)
    interrupted = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            interrupted = not task.done() or interrupted
    task.result()
    if interrupted:
        raise asyncio.CancelledError
