"""The heartbeat watchdog: an agent whose composer went silent cleans up after itself.

Imports the standard library only. The composer calls ``GET /v1/heartbeat`` every few
seconds. The deadline starts when the agent starts, so an agent whose composer died
before ever connecting also ends. What happens on expiry is the policy of the caller
(``composer_agent.server.serve``): kill every started process group, then exit, or power the
node off (``--poweroff``, for cloud nodes that must not outlive their run).
"""

from __future__ import annotations

import asyncio

__all__ = ["Heartbeat"]


class Heartbeat:
    """A deadline that each ``beat()`` pushes ``timeout`` seconds ahead; 0: never expires."""

    def __init__(self, timeout: float) -> None:
        if timeout < 0:
            raise ValueError(f"timeout={timeout!r}: give seconds > 0, or 0 for none")
        self.timeout = timeout
        self._deadline = asyncio.get_running_loop().time() + timeout

    def beat(self) -> None:
        self._deadline = asyncio.get_running_loop().time() + self.timeout

    def remaining(self) -> float:
        return self._deadline - asyncio.get_running_loop().time()

    async def expired(self) -> None:
        """Return once no beat came for ``timeout`` seconds (never, with timeout 0)."""
        if not self.timeout:
            await asyncio.Event().wait()
        while (remaining := self.remaining()) > 0:
            await asyncio.sleep(remaining)
