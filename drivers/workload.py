"""``composer-workload NAME --adapter COMMAND``: one client of a ready-made workload.

Starts the adapter (the user's executable, any language), then for each operation
records the invocation, writes one JSON request line to the adapter's stdin and reads
one JSON answer line from its stdout: ``{"type": "ok"}`` (reads: ``"value"``),
``{"type": "fail", "error": ...}`` (it certainly did not happen) or ``{"type": "info",
"error": ...}`` (unknown). An adapter silent for ``--timeout`` seconds, or one that
answers garbage or exits, makes the operation ``info`` and is started again (a new
client process, as Jepsen's crashed clients). Operations are drawn from
``$COMPOSER_SEED``, so a replay repeats them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import shlex
import subprocess
import sys
import time
from typing import Any

from composer_drivers.generators import WORKLOADS
from composer_sdk import history

__all__ = ["main"]


class Adapter:
    """The user's client adapter as a child process speaking JSON lines."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.proc: subprocess.Popen | None = None
        self._buffer = b""

    def start(self) -> None:
        # in the driver's process group: a kill at the phase's end takes the adapter too
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._buffer = b""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request; return the answer, or ``{"type": "info", ...}`` when the
        adapter is silent, dies or answers something that is not a JSON object."""
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._lost("the adapter exited")
        line = self._line(timeout)
        if line is None:
            return self._lost(f"no answer in {timeout:g}s")
        try:
            answer = json.loads(line)
        except ValueError:
            return self._lost(f"not JSON: {line[:80]!r}")
        if not isinstance(answer, dict) or answer.get("type") not in ("ok", "fail", "info"):
            return self._lost(f"not an answer: {line[:80]!r}")
        return answer

    def _line(self, timeout: float) -> bytes | None:
        assert self.proc is not None and self.proc.stdout
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _lost(self, why: str) -> dict[str, Any]:
        self.stop()  # whatever state it is in, the next operation gets a fresh one
        return {"type": "info", "error": why}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="composer-workload", description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--adapter", required=True,
                        help="the client adapter command (shell words), run from the project")
    parser.add_argument("--ops", type=int, default=100,
                        help="operations before exiting (default 100, about two seconds; "
                             "composer waits for them unless an eventually_ command ends the phase)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for an answer before the operation is info")
    parser.add_argument("--pause", type=float, default=0.02,
                        help="mean seconds between operations, drawn exponentially "
                             "(default 0.02; Jepsen staggers its clients the same way)")
    args = parser.parse_args(argv)
    workload = WORKLOADS[args.workload]
    seed = int(os.environ.get("COMPOSER_SEED", "0") or 0)
    client = seed  # unique per invocation, and the same in a replay
    rng = random.Random(f"{seed}:{args.workload}")
    adapter = Adapter(shlex.split(args.adapter))
    try:
        for n in range(args.ops):
            request = workload.next_request(rng, client, n)
            op = history.invoke(request["f"], request.get("key"), request.get("value"))
            answer = adapter.ask(request, args.timeout)
            if answer["type"] == "ok":
                op.ok(answer.get("value"))
            elif answer["type"] == "fail":
                op.fail(answer.get("error"))
            else:
                op.info(answer.get("error"))
            if args.pause > 0:
                time.sleep(rng.expovariate(1 / args.pause))
    finally:
        adapter.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
