"""What a fixture's ``control`` scripts can do, acted out on the live run.

Imports faults, services, timeline and the layout; the run (``composer.runner``'s, with
its nodes, services and nemesis) comes in as an object. Each action returns
``(exit code, stdout, stderr)``; a wrong request is exit 2 with the usage, something the
backend cannot do exit 2 with the reason, a failure of the cluster exit 3.

Per node (``DIR/<node>/control``): ``start``, ``stop``, ``kill``, ``pause``, ``resume``,
``restart``, ``status``, ``exec COMMAND...``. For the cluster (``DIR/control``): the
network and clock faults the backend applies (``partition A,B C,D``, ``loss NODE PCT``,
``bandwidth NODE KBITS``, ``latency NODE MS``, ``reorder|duplicate|corrupt NODE PCT``,
``clock NODE SECONDS``), held until ``heal``; the process faults on any node
(``kill NODE`` ...); ``status``; and ``down`` (the conductor's to do).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

from composer.clusters.base import ProcessSpec
from composer.faults import PACKET_FAULTS, PAIRS
from composer.fixture_layout import FixtureLayout
from composer.timeline import Fault

__all__ = ["FixtureControl", "NODE_USAGE", "CLUSTER_USAGE"]

#: a fixture's faults hold until ``heal``: longer than any fixture lives
_FOREVER = 10 * 365 * 24 * 3600.0
_AMOUNTS = {"loss": "PCT", "bandwidth": "KBITS", "latency": "MS", "clock": "SECONDS",
            **{kind: "PCT" for kind in PACKET_FAULTS if kind != "latency"}}
NODE_USAGE = ("usage: control start|stop|kill|pause|resume|restart|status\n"
              "       control exec COMMAND [ARG...]   (runs on this node, output here)\n")
CLUSTER_USAGE = ("usage: control partition NODE[,NODE...] NODE[,NODE...] [...]  (cut the groups "
                 "from each other)\n"
                 + "".join(f"       control {kind} NODE {unit}\n" for kind, unit in _AMOUNTS.items())
                 + "       control heal                  (undo every fault above)\n"
                   "       control kill|stop|pause|resume|start|restart NODE\n"
                   "       control status | down\n")


class FixtureControl:
    """The actions of one fixture on its run."""

    def __init__(self, run: Any, layout: FixtureLayout, capabilities: frozenset[str],
                 limitations: dict[str, str]) -> None:
        self.run, self.layout = run, layout
        self.capabilities, self.limitations = capabilities, limitations
        self._execs = itertools.count(1)
        self._lock = asyncio.Lock()

    async def handle(self, node: str | None, args: Sequence[str]) -> tuple[int, str, str]:
        """Act out one request; one at a time, as a shell test sends them."""
        async with self._lock:
            if node is not None:
                if node not in self.run.nodes:
                    return 2, "", f"no node {node!r}; the nodes are {', '.join(self.run.nodes)}\n"
                return await self.node_action(node, list(args))
            return await self.cluster_action(list(args))

    async def node_action(self, node: str, args: list[str]) -> tuple[int, str, str]:
        if not args or args[0] == "help":
            return (0 if args else 2), NODE_USAGE, ""
        action, rest = args[0], args[1:]
        if action == "exec":
            if not rest:
                return 2, "", "exec needs a command, e.g. control exec hostname\n"
            return await self.execute(node, rest)
        if rest:
            return 2, "", NODE_USAGE
        service = self.run.services.get(node)
        if service is None:
            return 2, "", (f"{node} runs no service (it is a {self._role(node)} node): only "
                           "exec works there\n")
        if action == "status":
            return 0, f"{self._state(service)}\n", ""
        if action in ("kill", "stop", "pause"):
            if not await service.apply(action):
                return 1, "", f"{node} is {self._state(service)}, not running\n"
            if action == "stop":  # the grace wait (then SIGKILL) runs its course
                await service.process.wait()
            return 0, f"{node} {self._state(service)}\n", ""
        if action in ("start", "resume", "restart"):
            return await self._start(node, service, action)
        return 2, "", f"unknown action {action!r}\n{NODE_USAGE}"

    async def _start(self, node: str, service: Any, action: str) -> tuple[int, str, str]:
        from composer.services import SetupFailed

        if action == "restart" and service.state == "running":
            await service.apply("stop")
            await service.process.wait()
        if action == "resume" and service.state != "paused":
            return 1, "", f"{node} is {self._state(service)}, not paused\n"
        if service.state == "running":
            return 0, f"{node} already running\n", ""
        restarted = service.state != "paused"
        await service.heal()
        if restarted:
            try:
                await service.wait_ready(time.monotonic() + self.run.project.setup.timeout)
            except SetupFailed as exc:
                return 1, "", f"{exc}\n"
            self.layout.service_started(node, self.run.nodes[node].address, service)
        return 0, f"{node} {self._state(service)}\n", ""

    async def execute(self, node: str, argv: list[str]) -> tuple[int, str, str]:
        """Run ``argv`` on ``node`` with a driver's environment; return its output."""
        number = next(self._execs)
        logs = self.run.record.directory / "logs" / node
        env = self.run.env
        spec = ProcessSpec(argv=tuple(argv), cwd=self.run.project.root,
                           env=env.for_process(self.run.nodes[node], env.seed,
                                               f"{node}-exec-{number}"),
                           stdout=logs / f"exec-{number}.stdout",
                           stderr=logs / f"exec-{number}.stderr")
        process = await self.run.nodes[node].start(spec)
        code = await process.wait()
        return code, _read(spec.stdout), _read(spec.stderr)

    async def cluster_action(self, args: list[str]) -> tuple[int, str, str]:
        if not args or args[0] == "help":
            return (0 if args else 2), CLUSTER_USAGE, ""
        action, rest = args[0], args[1:]
        if action == "status":
            return 0, self.status(), ""
        if action == "heal":
            await self.run.nemesis.heal_all()
            self.run.nemesis.tasks.clear()
            return 0, "healed\n", ""
        if action in ("kill", "stop", "pause", "resume", "start", "restart"):
            if len(rest) != 1:
                return 2, "", f"usage: control {action} NODE\n"
            if rest[0] not in self.run.nodes:
                return 2, "", f"no node {rest[0]!r}; the nodes are {', '.join(self.run.nodes)}\n"
            return await self.node_action(rest[0], [action])
        if action == "partition" or action in _AMOUNTS:
            return await self.fault(action, rest)
        return 2, "", f"unknown action {action!r}\n{CLUSTER_USAGE}"

    async def fault(self, kind: str, rest: list[str]) -> tuple[int, str, str]:
        """Start a network or clock fault that holds until ``heal``."""
        if kind not in self.capabilities:
            why = self.limitations.get(kind, "not supported by this backend")
            return 2, "", f"this backend cannot apply {kind} faults here: {why}\n"
        services = list(self.run.services)
        if kind == "partition":
            groups = [g.split(",") for g in rest]
            unknown = sorted({n for g in groups for n in g} - set(services))
            if len(groups) < 2 or unknown:
                return 2, "", ((f"not service nodes: {', '.join(unknown)} (they are "
                                f"{', '.join(services)})\n" if unknown else "")
                               + "usage: control partition NODE[,NODE...] NODE[,NODE...]\n")
            pairs = tuple(f"{a}>{b}" for g, h in itertools.permutations(groups, 2)
                          for a in g for b in h if a != b)
            fault = Fault(0.0, "partition", pairs, _FOREVER, shape=PAIRS)
        else:
            if len(rest) != 2 or rest[0] not in services:
                return 2, "", f"usage: control {kind} NODE {_AMOUNTS[kind]} (NODE one of {', '.join(services)})\n"
            try:
                amount = float(rest[1])
            except ValueError:
                return 2, "", f"{kind}: {rest[1]!r} is not a number ({_AMOUNTS[kind]})\n"
            fault = Fault(0.0, kind, (rest[0],), _FOREVER, amount=amount)
        self.run.nemesis.start([fault], time.monotonic(), _FOREVER)
        await asyncio.sleep(0)  # the fault's task applies it...
        for _ in range(200):  # ...and is in force once the nemesis logged it
            if self._in_force(fault):
                break
            await asyncio.sleep(0.01)
        return 0, f"{kind} {' '.join(rest)}: in force until heal\n", ""

    def _in_force(self, fault: Fault) -> bool:
        nemesis = self.run.nemesis
        if fault.kind == "clock":
            return fault.amount in nemesis.clock.offsets.get(fault.targets[0], [])
        return fault in nemesis.network.in_effect and not nemesis.network.lock.locked()

    def status(self) -> str:
        lines = []
        for name, node in self.run.nodes.items():
            service = self.run.services.get(name)
            state = self._state(service) if service else self._role(name)
            lines.append(f"{name:<12} {node.address:<15} {state}")
        faults = [f for f in self.run.nemesis.network.in_effect] + [
            Fault(0.0, "clock", (n,), 0.0, amount=sum(o)) for n, o in
            self.run.nemesis.clock.offsets.items() if o]
        lines += [f"fault: {f.kind} {' '.join(f.targets)}"
                  + (f" {f.amount:g}" if f.amount is not None else "") for f in faults]
        return "\n".join(lines) + "\n"

    def _state(self, service: Any) -> str:
        service.check_exited()
        pid = service.process.pid if service.process is not None else None
        return f"{service.state}" + (f" (pid {pid})" if service.state in ("running", "paused")
                                     else "")

    def _role(self, node: str) -> str:
        return "driver" if node in self.run.project.driver_nodes() else "idle"


def _read(path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
