"""The packet shaper of one network namespace, as a child process composer talks to.

``composer_agent.packet_shaper`` runs inside the namespace (behind ``enter``: ``ip netns
exec NS`` or ``nsenter -t PID -n``), queues what the namespace sends to its peers and
takes a whole configuration per stdin line, answering ``{"applied": N}`` once it is in
force. It is started when a node first needs packet faults and stopped when it needs
none, so a healthy network carries no user-space hop. It dies with composer (parent
death signal); its iptables rule lets packets pass if it is gone (queue bypass).
Imports only the standard library.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence

__all__ = ["ShaperProcess", "QUEUE"]

#: the NFQUEUE number the shaper binds in each namespace (namespaces have their own)
QUEUE = 7731
_ANSWER_SECONDS = 10.0


class ShaperProcess:
    """Start on first ``configure``; ``stop`` ends it and removes its rule."""

    def __init__(self, enter: Sequence[str], peers: Sequence[str]) -> None:
        self._enter, self._peers = list(enter), list(peers)
        self._process: asyncio.subprocess.Process | None = None
        self._lines = 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def configure(self, config: dict) -> None:
        """Put ``config`` in force; ``RuntimeError`` with the shaper's words if it cannot."""
        if not self.running:
            await self._start()
        assert self._process is not None and self._process.stdin and self._process.stdout
        self._process.stdin.write((json.dumps(config) + "\n").encode())
        self._lines += 1
        try:
            await self._process.stdin.drain()
            line = await asyncio.wait_for(self._process.stdout.readline(), _ANSWER_SECONDS)
        except (OSError, asyncio.TimeoutError):
            line = b""
        if not line:
            error = await self._error_output()
            await self.stop()
            raise RuntimeError(f"the packet shaper did not answer: {error or 'no output'}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the packet shaper refused its configuration: {answer['error']}")

    async def _start(self) -> None:
        argv = [*self._enter, sys.executable, "-m", "composer_agent.packet_shaper",
                "--queue", str(QUEUE)]
        for peer in self._peers:
            argv += ["--only", f"{peer}/32"]
        self._process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        self._lines = 0

    async def _error_output(self) -> str:
        process = self._process
        if process is None or process.stderr is None:
            return ""
        try:
            if process.returncode is None:
                await asyncio.wait_for(process.wait(), 2)
            return (await asyncio.wait_for(process.stderr.read(), 2)).decode(errors="replace").strip()
        except (asyncio.TimeoutError, OSError):
            return ""

    async def stop(self) -> None:
        """Close its stdin (it releases what it holds, removes its rule and exits);
        kill it if it does not within a few seconds."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        try:
            assert process.stdin is not None
            process.stdin.close()
            await asyncio.wait_for(process.wait(), 5)
        except (asyncio.TimeoutError, OSError):
            process.kill()
            await process.wait()
