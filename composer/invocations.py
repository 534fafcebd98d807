"""The commands of one timeline run: start each on its node, see it to its end, judge it.

Every start is an ``Invocation`` (its number, command, node, seed, status, exit code and
log files); a watch task waits for its exit (or its timeout) and writes the built-in
"zero exit code" and "ran to completion" records. Whoever waits for a command to end
(the prefix rules, ``run_to_end``) waits on ``Invocations.changed``. Imports clusters'
interface, builtin_properties, run_record, services (the nodes' environment) and
templates; never the runner.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from pathlib import Path
from typing import Any

from composer.builtin_properties import ZERO_EXIT, assertion, completion_id
from composer.clusters.base import Node, Process, ProcessSpec
from composer.errors import InfraError
from composer.run_record import RunRecord
from composer.services import Environment
from composer.templates import Command

__all__ = ["Invocation", "Invocations"]


@dataclasses.dataclass(eq=False)
class Invocation:
    """One run of one command."""

    number: int
    command: Command
    node: str
    seed: int
    #: seconds since the run began
    started: float
    process: Process | None = None
    #: "running", "exited", "timeout", "killed" (by composer) or "failed-to-start"
    status: str = "running"
    exit_code: int | None = None
    stdout: Path | None = None
    #: watches the process to its end; done once the invocation is over
    task: asyncio.Future | None = None

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "command": self.command.name,
                "kind": self.command.kind, "node": self.node, "seed": self.seed,
                "status": self.status, "exit_code": self.exit_code,
                "started": round(self.started, 3), "stdout": str(self.stdout),
                "stderr": str(self.stdout.with_suffix(".stderr")),
                "sdk": f"{self.stdout.stem}.jsonl"}


class Invocations:
    """Every command started in one run, in start order."""

    def __init__(self, record: RunRecord, nodes: dict[str, Node], env: Environment,
                 cwd: Path, timeout: float, check_exit: bool) -> None:
        self.record, self.nodes, self.env = record, nodes, env
        self.cwd, self.timeout, self.check_exit = cwd, timeout, check_exit
        self.all: list[Invocation] = []
        #: notified whenever a command ends
        self.changed = asyncio.Condition()

    def running(self) -> list[Invocation]:
        return [i for i in self.all if i.status == "running"]

    async def invoke(self, command: Command, node: str, seed: int) -> Invocation:
        """Start ``command`` on ``node`` now; its watch task sees it to its end."""
        node = command.node or node  # compose: a command runs in the container it lives in
        inv = Invocation(len(self.all) + 1, command, node, seed, self.record.now())
        self.all.append(inv)
        label = f"{inv.number:04d}-{command.name}"
        logs = self.record.directory / "logs" / node
        inv.stdout = logs / f"{label}.stdout"
        spec = ProcessSpec(argv=(str(command.path),),
                           env=self.env.for_process(self.nodes[node], seed, label),
                           cwd=self.cwd, stdout=inv.stdout, stderr=logs / f"{label}.stderr")
        try:
            inv.process = await self.nodes[node].start(spec)
        except InfraError as exc:
            inv.status = "failed-to-start"
            self.record.note("start failed", command=command.name, node=node, reason=str(exc))
            inv.task = asyncio.ensure_future(asyncio.sleep(0))
            return inv
        self.record.note("start", command=command.name, node=node, seed=seed,
                         number=inv.number)
        inv.task = asyncio.ensure_future(self._watch(inv))
        return inv

    async def _watch(self, inv: Invocation) -> None:
        assert inv.process is not None
        try:
            inv.exit_code = await asyncio.wait_for(asyncio.shield(inv.process.wait()),
                                                   self.timeout)
        except asyncio.TimeoutError:
            inv.process.signal(signal.SIGKILL)
            inv.exit_code = await inv.process.wait()
            inv.status = "timeout"
        else:
            if inv.status == "running":
                inv.status = "exited"
        self.record.note("exit", command=inv.command.name, number=inv.number,
                         status=inv.status, exit_code=inv.exit_code)
        if await inv.process.end_leftovers():  # its own exit decided, not a child's
            self.record.note("leftovers killed", command=inv.command.name, number=inv.number,
                             reason="processes it started were still running after it exited")
        if inv.status != "killed":
            self._judge(inv)
        async with self.changed:
            self.changed.notify_all()

    def _judge(self, inv: Invocation) -> None:
        """Write the built-in records of a command that ended on its own (or timed out)."""
        if self.check_exit:
            self.record.assertion(assertion(
                ZERO_EXIT, "Always", inv.status == "exited" and inv.exit_code == 0,
                details={"command": inv.command.name, "node": inv.node, "status": inv.status,
                         "exit_code": inv.exit_code, "timeout": self.timeout,
                         "stdout": str(inv.stdout), "number": inv.number}))
        self.record.assertion(assertion(completion_id(inv.command.name), "Sometimes",
                                        inv.status == "exited"))

    def kill_running(self) -> None:
        """SIGKILL every running command (status "killed": judged by nothing)."""
        for inv in self.running():
            if inv.process is not None:
                inv.status = "killed"
                inv.process.signal(signal.SIGKILL)

    async def wait_all(self) -> None:
        """Wait until every command started so far has ended and been judged."""
        await asyncio.gather(*(i.task for i in self.all if i.task is not None),
                             return_exceptions=True)
