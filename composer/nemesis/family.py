"""What every fault family shares: the run log's ``note``, times, and closing down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Family", "Note"]

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
