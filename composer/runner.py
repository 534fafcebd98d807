"""Runs one timeline on a fresh cluster: the only place timelines meet clusters.

Imports timeline, templates, config, services and clusters; never Hypothesis, schedule
or properties. The runner enforces the prefix rules of DESIGN.md, command timeouts and
heals, and writes everything to the timeline's directory: the SDK records of every
process (``sdk/*.jsonl``), composer's built-in property records (``composer.jsonl``),
logs, and ``run.json`` (what happened, when). Every fault is healed and every process
killed on every exit path, Ctrl-C included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from composer import clusters
from composer.clusters.base import Process, ProcessSpec
from composer.config import Project
from composer.errors import InfraError
from composer.hits import Hit, HitWatcher
from composer.nemesis import Nemesis
from composer.services import Environment, ServiceNode, SetupFailed
from composer.templates import Command, Template
from composer.timeline import Fault, Start, Timeline

__all__ = ["TimelineResult", "run_timeline", "builtin_catalog", "record_files",
           "ZERO_EXIT", "SETUP", "completion_id"]

ZERO_EXIT = "Commands finish with zero exit code"
SETUP = "Setup completes"
_COMPLETION = "Every command ran to completion at least once"
_DRIVERS = ("parallel_driver", "serial_driver", "singleton_driver")

OnEvent = Callable[[dict[str, Any]], None]


def completion_id(command: str) -> str:
    """Return the id of the built-in "ran to completion" property of ``command``."""
    return f"{_COMPLETION} ({command})"


def _assertion(id: str, display: str, condition: bool, hit: bool = True,
               details: dict | None = None) -> dict:
    kind = "always" if display == "Always" else "sometimes"
    record = {"hit": hit, "must_hit": True, "assert_type": kind, "display_type": display,
              "message": id, "condition": condition, "id": id,
              "location": {"class": "", "function": "", "file": "composer", "begin_line": 0,
                           "begin_column": 0}}
    if details is not None:
        record["details"] = details
    return {"antithesis_assert": record}


def builtin_catalog(template: Template, check_exit_code: bool = True) -> list[dict]:
    """Return declarations of the built-in properties, so unreached ones are reported."""
    records = [_assertion(SETUP, "Always", False, hit=False)]
    if check_exit_code:
        records.append(_assertion(ZERO_EXIT, "Always", False, hit=False))
    records += [_assertion(completion_id(c.name), "Sometimes", False, hit=False)
                for c in template.commands]
    return [r["antithesis_assert"] for r in records]


def record_files(directory: Path) -> list[Path]:
    """Return every JSONL file of SDK-shaped records a timeline run wrote."""
    return sorted((directory / "sdk").glob("*.jsonl")) + [directory / "composer.jsonl"]


@dataclasses.dataclass
class TimelineResult:
    """What running one timeline produced; the records are in ``record_files(directory)``."""

    timeline: Timeline
    directory: Path
    setup_ok: bool
    setup_error: str | None
    log: list[dict[str, Any]]
    elapsed: float
    #: first hits of assertion outcomes, ``at`` counted from the start of the run
    hits: list[Hit] = dataclasses.field(default_factory=list)
    #: when the driver phase began, counted the same way (None: it never began)
    phase_start: float | None = None


@dataclasses.dataclass(eq=False)
class _Invocation:
    """One run of one command."""

    number: int
    command: Command
    node: str
    seed: int
    started: float
    process: Process | None = None
    #: "running", "exited", "timeout", "killed" (by composer) or "failed-to-start"
    status: str = "running"
    exit_code: int | None = None
    stdout: Path | None = None
    #: watches the process to its end; done once the invocation is over
    task: asyncio.Future | None = None


async def run_timeline(timeline: Timeline, project: Project, template: Template,
                       backend: str, directory: Path, on_event: OnEvent | None = None
                       ) -> TimelineResult:
    """Run ``timeline`` on a new ``backend`` cluster, writing its files to ``directory``."""
    directory = directory.resolve()  # commands run in the project: their paths must be absolute
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "timeline.json").write_text(json.dumps(timeline.to_json(), indent=2))
    run = _Run(timeline, project, template, directory, on_event)
    options = {"compose": project.compose} if project.compose is not None else {}
    cluster = clusters.create(backend, directory, shared=[project.root], **options)
    try:
        await run.main(cluster)
    finally:
        try:
            await asyncio.shield(run.teardown(cluster))
        finally:
            run.finish()
    return TimelineResult(timeline, directory, run.setup_error is None, run.setup_error,
                          run.log, time.monotonic() - run.t0, run.hits.hits, run.phase_start)


class _Run:
    """State of one timeline run; every method appends to ``log`` what it did."""

    def __init__(self, timeline: Timeline, project: Project, template: Template,
                 directory: Path, on_event: OnEvent | None) -> None:
        self.timeline = timeline
        self.project = project
        self.template = template
        self.directory = directory
        self.on_event = on_event
        self.t0 = time.monotonic()
        self.log: list[dict[str, Any]] = []
        self.invocations: list[_Invocation] = []
        self.services: dict[str, ServiceNode] = {}
        self.nemesis: Nemesis | None = None
        self.setup_error: str | None = None
        self.check_exit = project.options_for(template.name).check_exit_code
        self.timeout = project.explore.command_timeout
        self.changed = asyncio.Condition()
        self.records = open(directory / "composer.jsonl", "a")
        self.hits = HitWatcher(directory / "sdk", self.t0)
        self.hit_task: asyncio.Future | None = None
        self.phase_start: float | None = None

    # -- bookkeeping -------------------------------------------------------------------

    def note(self, what: str, **fields: Any) -> None:
        entry = {"t": round(time.monotonic() - self.t0, 3), "what": what,
                 **{k: v for k, v in fields.items() if v is not None}}
        self.log.append(entry)
        if self.on_event:
            self.on_event(entry)

    def record(self, record: dict) -> None:
        self.records.write(json.dumps(record) + "\n")
        self.records.flush()

    def finish(self) -> None:
        self.records.close()
        (self.directory / "run.json").write_text(json.dumps({
            "setup_error": self.setup_error,
            "driver_phase_start": self.phase_start,
            "hits": [dataclasses.asdict(h) for h in self.hits.hits],
            "invocations": [
                {"number": i.number, "command": i.command.name, "kind": i.command.kind,
                 "node": i.node, "seed": i.seed, "status": i.status, "exit_code": i.exit_code,
                 "started": round(i.started, 3), "stdout": str(i.stdout)}
                for i in self.invocations
            ],
            "log": self.log,
        }, indent=2))

    # -- phases ------------------------------------------------------------------------

    async def main(self, cluster: clusters.Cluster) -> None:
        names = [n for s in self.project.services for n in s.node_names()]
        nodes = {n.name: n for n in await cluster.new_nodes(names)}
        self.nodes = nodes
        self.env = Environment(self.project, nodes, self.directory, self.timeline.seed)
        self.nemesis = Nemesis(cluster, self.services, self.env, self.hits, self.t0, self.note)
        for service in self.project.services:
            if not service.runs_process:
                continue
            for index, name in enumerate(service.node_names(), start=1):
                self.services[name] = ServiceNode(nodes[name], service, index, self.env,
                                                  self.directory)
        if any(isinstance(e, Fault) and e.kind == "clock" for e in self.timeline.events):
            for service in self.services.values():
                service.clock_file = self.directory / "nodes" / service.name / "clock"
                self.nemesis.set_clock(service)
        self.hit_task = asyncio.ensure_future(self.hits.watch())  # setup's hits get their time
        if not await self.setup():
            return
        self.driver_node = self.project.driver_nodes()[0]
        if self.timeline.first:
            await self.run_to_end(self.timeline.first)
        await self.driver_phase()
        if self.timeline.eventually:
            await self.stop_everything()
            await self.restart_services()
            await self.run_to_end(self.timeline.eventually)
        else:
            await self.nemesis.heal_all()
            await asyncio.gather(*(i.task for i in self.invocations))
            if self.timeline.finally_:
                await self.restart_services()
        if not self.timeline.finally_:
            return
        if all(i.status == "exited" for i in self.invocations):
            await self.run_to_end(self.timeline.finally_)
        else:
            self.note("skip", command=self.timeline.finally_,
                      reason="not every command completed on its own")

    async def run_to_end(self, name: str) -> None:
        """Run the timeline's first, eventually or finally command until it ends."""
        inv = await self.invoke(self.template.command(name), self.driver_node,
                                self.timeline.seed)
        await inv.task

    async def setup(self) -> bool:
        deadline = time.monotonic() + self.project.setup.timeout
        try:
            for service in self.services.values():
                for name in service.service.after_ready:  # compose: service_healthy
                    await asyncio.gather(*(self.services[n].wait_ready(deadline)
                                           for n in self.project.service(name).node_names()))
                await service.start()
            await asyncio.gather(*(s.wait_ready(deadline) for s in self.services.values()))
            if self.project.setup.sdk:
                await self.wait_setup_complete(deadline)
        except SetupFailed as exc:
            self.setup_error = str(exc)
            self.note("setup failed", reason=self.setup_error)
            self.record(_assertion(SETUP, "Always", False, details={"reason": self.setup_error}))
            return False
        self.note("setup complete", nodes={n: node.address for n, node in self.nodes.items()})
        self.record(_assertion(SETUP, "Always", True))
        return True

    async def wait_setup_complete(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            for path in (self.directory / "sdk").glob("*.jsonl"):
                if '"antithesis_setup"' in path.read_text(errors="replace"):
                    return
            await asyncio.sleep(0.05)
        fix = ("have a service's entrypoint call setup_complete() (antithesis.lifecycle) "
               "once the system is ready, or raise --setup-timeout"
               if self.project.compose is not None else "call sdk.setup_complete() when the "
               "system is ready, raise --setup-timeout, or set [setup] sdk = false")
        raise SetupFailed(f"no process called setup_complete() within "
                          f"{self.project.setup.timeout:g}s; {fix}")

    async def driver_phase(self) -> None:
        self.hits.poll()  # what setup and first_ wrote is stamped before the phase
        start = time.monotonic()
        self.phase_start = round(start - self.t0, 3)
        end = start + self.timeline.length
        starts = sorted((e for e in self.timeline.events if isinstance(e, Start)),
                        key=lambda e: e.at)
        faults = [e for e in self.timeline.events if isinstance(e, Fault)]
        assert self.nemesis is not None
        self.nemesis.start(faults, start, self.timeline.length)
        await asyncio.gather(*(self.start_when_allowed(e, start, end) for e in starts))
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        self.note("driver phase over")

    async def start_when_allowed(self, event: Start, start: float, end: float) -> None:
        """Start ``event``'s command at its time, or once the prefix rules allow it.

        Each start waits on its own: a serial driver waiting for the parallel ones to
        finish holds back no later parallel driver (every event starts at its planned
        time whatever an earlier one is doing), so it may wait until the phase is over,
        which the log says."""
        await asyncio.sleep(max(0.0, start + event.at - time.monotonic()))
        command = self.template.command(event.command)
        async with self.changed:
            try:
                if not self.may_start(command):
                    await asyncio.wait_for(
                        self.changed.wait_for(lambda: self.may_start(command)),
                        max(0.0, end - time.monotonic()),
                    )
            except asyncio.TimeoutError:
                self.note("skip", command=command.name, reason="driver phase over before "
                          "the prefix rules allowed it to start")
                return
        await self.invoke(command, event.node, event.seed)

    def may_start(self, command: Command) -> bool:
        running = [i.command.kind for i in self.invocations if i.status == "running"]
        drivers = [k for k in running if k in _DRIVERS]
        if command.kind == "parallel_driver":
            return (all(k == "parallel_driver" for k in drivers)
                    and len(drivers) < self.project.explore.max_parallel)
        if command.kind in ("serial_driver", "singleton_driver"):
            return not drivers
        return True

    async def stop_everything(self) -> None:
        """Kill running commands and heal every fault, as before an eventually_ command."""
        for inv in self.invocations:
            if inv.status == "running" and inv.process is not None:
                inv.status = "killed"
                inv.process.signal(signal.SIGKILL)
        await asyncio.gather(*(i.task for i in self.invocations))
        assert self.nemesis is not None
        await self.nemesis.heal_all()

    async def restart_services(self) -> None:
        restarted = []
        for service in self.services.values():
            service.check_exited()
            if service.state != "running":
                await service.heal()
                restarted.append(service.name)
        deadline = time.monotonic() + self.project.setup.timeout
        try:
            await asyncio.gather(*(s.wait_ready(deadline) for s in self.services.values()))
        except SetupFailed as exc:
            self.note("restart failed", reason=str(exc))
        if restarted:
            self.note("restart", targets=restarted)

    # -- commands ----------------------------------------------------------------------

    async def invoke(self, command: Command, node: str, seed: int) -> _Invocation:
        node = command.node or node  # compose: a command runs in the container it lives in
        inv = _Invocation(len(self.invocations) + 1, command, node, seed,
                          time.monotonic() - self.t0)
        self.invocations.append(inv)
        label = f"{inv.number:04d}-{command.name}"
        logs = self.directory / "logs" / node
        inv.stdout = logs / f"{label}.stdout"
        spec = ProcessSpec(argv=(str(command.path),),
                           env=self.env.for_process(self.nodes[node], seed, label),
                           cwd=self.project.root, stdout=inv.stdout,
                           stderr=logs / f"{label}.stderr")
        try:
            inv.process = await self.nodes[node].start(spec)
        except InfraError as exc:
            inv.status = "failed-to-start"
            self.note("start failed", command=command.name, node=node, reason=str(exc))
            inv.task = asyncio.ensure_future(asyncio.sleep(0))
            return inv
        self.note("start", command=command.name, node=node, seed=seed, number=inv.number)
        inv.task = asyncio.ensure_future(self.watch(inv))
        return inv

    async def watch(self, inv: _Invocation) -> None:
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
        self.note("exit", command=inv.command.name, number=inv.number, status=inv.status,
                  exit_code=inv.exit_code)
        if inv.status != "killed":
            if self.check_exit:
                self.record(_assertion(ZERO_EXIT, "Always", inv.status == "exited"
                                       and inv.exit_code == 0, details={
                                           "command": inv.command.name, "node": inv.node,
                                           "status": inv.status, "exit_code": inv.exit_code,
                                           "timeout": self.timeout, "stdout": str(inv.stdout)}))
            self.record(_assertion(completion_id(inv.command.name), "Sometimes",
                                   inv.status == "exited"))
        async with self.changed:
            self.changed.notify_all()

    async def teardown(self, cluster: clusters.Cluster) -> None:
        errors = []
        steps = [cluster.cleanup]
        if self.nemesis is not None:
            self.nemesis.closing = True
            steps.insert(0, self.nemesis.heal_all)
        for inv in self.invocations:
            if inv.status == "running" and inv.process is not None:
                inv.status = "killed"
                inv.process.signal(signal.SIGKILL)
        for step in steps:
            try:
                await step()
            except Exception as exc:  # collect every error, as aiohttp's CleanupContext
                errors.append(exc)
        tasks = [i.task for i in self.invocations if i.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.hit_task is not None:
            self.hit_task.cancel()
            self.hits.poll()  # what the last processes wrote before they ended
        if errors:
            raise InfraError(f"teardown failed: {'; '.join(map(str, errors))}")
