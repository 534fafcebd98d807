"""Runs one timeline on a fresh cluster: the only place timelines meet clusters.

The runner brings the cluster up (services, ``setup_complete``), runs the timeline's
``first_`` command, hands the driver phase to ``driver_phase`` (starts under the prefix
rules) and the nemesis (faults), then heals, restarts and runs the ``eventually_`` and
``finally_`` checks, and tears everything down on every exit path, Ctrl-C included.
What happened goes to the timeline's directory through ``RunRecord``: ``run.json``, the
built-in properties' ``composer.jsonl``, beside the SDK records (``sdk/*.jsonl``) and
logs of every process. Each timeline has its own sync service (``timeline_sync``),
whose ``configure_network`` requests the nemesis applies (``link_requests``). Imports
the pieces of a run (run_record, invocations, driver_phase, nemesis, services, hits,
timeline_sync, link_requests), timeline, templates, config and clusters; never
Hypothesis, schedule or properties.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from composer import clusters
from composer.clusters.base import Node
from composer.builtin_properties import SERVICES_UP, SETUP, assertion
from composer.checks import run_checks
from composer.config import Project
from composer.driver_phase import run_driver_phase
from composer.errors import InfraError
from composer.hits import Hit, HitWatcher
from composer.invocations import Invocations
from composer.link_requests import serve_link_requests
from composer.nemesis import Nemesis
from composer.run_record import OnEvent, RunRecord
from composer.services import Environment, ServiceNode, SetupFailed
from composer.templates import Template
from composer.timeline import Fault, Timeline
from composer.timeline_sync import TimelineSync

__all__ = ["TimelineResult", "run_timeline", "Hold"]

#: a fixture's driver phase: given the run once its services are ready, returns at ``down``
Hold = Callable[["_Run"], Awaitable[None]]


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


async def run_timeline(timeline: Timeline, project: Project, template: Template,
                       backend: str, directory: Path, on_event: OnEvent | None = None,
                       hold: Hold | None = None) -> TimelineResult:
    """Run ``timeline`` on a new ``backend`` cluster, writing its files to ``directory``.

    ``hold``: a fixture's driver phase (``composer up``): after setup, awaited with the
    run (its nodes, services, nemesis) instead of the timeline's commands and faults;
    what it left in effect is healed when it returns, then the cluster is torn down."""
    directory = directory.resolve()  # commands run in the project: their paths must be absolute
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "timeline.json").write_text(json.dumps(timeline.to_json(), indent=2))
    record = RunRecord(directory, on_event)
    hits = HitWatcher(directory / "sdk", record.t0)
    cluster = clusters.create(backend, directory, shared=[project.root],
                              **project.cluster_options)
    run: _Run | None = None
    names = [n for s in project.services for n in s.node_names()]
    sync = TimelineSync(cluster, project.name, template.name,
                        {n: s.name for s in project.services if s.runs_process
                         for n in s.node_names()}, label=directory.name,
                        shaping="latency" in cluster.capabilities)
    try:
        early = None
        if hasattr(cluster, "node_env"):  # compose: containers are made with their variables
            early = cluster.node_env = sync.environment(names, directory)
        nodes = {n.name: n for n in await cluster.new_nodes(names)}
        # after the nodes: an agent node's control address is known only then
        per_node = early or sync.environment(names, directory)
        for name in names:  # where a node's copy of composer's SDK is, if it has one
            per_node[name] = {**per_node.get(name, {}), **cluster.environment(name)}
        await sync.start()
        run = _Run(timeline, project, template, record, hits, cluster, nodes, per_node)
        run.hold = hold
        await run.share_files()
        if sync.service is not None:
            run.link_task = asyncio.ensure_future(serve_link_requests(
                sync.state, sync.prefix, names, run.nemesis.network.configure_link,
                cluster.capabilities, backend, clusters.limitations(backend), record.note))
        await run.main()
    finally:
        try:
            await asyncio.shield(_teardown(cluster, run, sync))
            if run is not None:
                await run.check_history()
        finally:
            record.close(
                setup_error=run.setup_error if run else None,
                driver_phase_start=run.phase_start if run else None,
                hits=[dataclasses.asdict(h) for h in hits.hits],
                invocations=[i.to_json() for i in run.commands.all] if run else [])
    assert run is not None  # else new_nodes raised
    return TimelineResult(timeline, directory, run.setup_error is None, run.setup_error,
                          record.log, record.now(), hits.hits, run.phase_start)


async def _teardown(cluster: clusters.Cluster, run: _Run | None, sync: TimelineSync) -> None:
    """End the sync service's waits, kill every command, heal every fault, remove the
    cluster; raise what failed."""
    errors = []
    steps = [sync.close, cluster.cleanup]
    if run is not None:
        run.services_stayed_up()  # before anything is killed
        run.nemesis.closing()
        steps.insert(0, run.nemesis.heal_all)
        run.commands.kill_running()
    for step in steps:
        try:
            await step()
        except Exception as exc:  # collect every error, as aiohttp's CleanupContext
            errors.append(exc)
    if run is not None:
        await run.commands.wait_all()
        if run.link_task is not None:
            run.link_task.cancel()
        if run.hit_task is not None:
            run.hit_task.cancel()
            run.hits.poll()  # what the last processes wrote before they ended
    if errors:
        raise InfraError(f"teardown failed: {'; '.join(map(str, errors))}")


class _Run:
    """One timeline on a cluster whose nodes exist: services, commands and faults."""

    def __init__(self, timeline: Timeline, project: Project, template: Template,
                 record: RunRecord, hits: HitWatcher, cluster: clusters.Cluster,
                 nodes: dict[str, Node], per_node: dict[str, dict[str, str]]) -> None:
        self.timeline, self.project, self.template = timeline, project, template
        self.record, self.hits, self.nodes, self.cluster = record, hits, nodes, cluster
        self.env = Environment(project, nodes, record.directory, timeline.seed, per_node)
        self.services: dict[str, ServiceNode] = {}
        for service in project.services:
            if service.runs_process:
                for index, name in enumerate(service.node_names(), start=1):
                    self.services[name] = ServiceNode(nodes[name], service, index, self.env,
                                                      record.directory)
        self.nemesis = Nemesis(cluster, self.services, self.env, hits, record.t0, record.note)
        self.commands = Invocations(record, nodes, self.env, project.root,
                                    project.explore.command_timeout,
                                    project.options_for(template.name).check_exit_code)
        self.setup_error: str | None = None
        self.hit_task: asyncio.Future | None = None
        #: serves the nodes' configure_network requests
        self.link_task: asyncio.Future | None = None
        self.phase_start: float | None = None
        #: services that exited on their own
        self.crashed: list[str] = []
        #: the timeline ran to its end (not cut off by setup, an error or Ctrl-C)
        self.completed = False
        #: a fixture's driver phase, in place of the timeline's (see ``run_timeline``)
        self.hold: Hold | None = None

    async def share_files(self) -> None:
        """Give nodes that do not see this machine's files the ones their processes read."""
        for path in (self.env.topology, self.env.stop_faults, *sorted(
                self.record.directory.glob("nodes/*/outputs"))):
            await self.cluster.share(path)

    async def main(self) -> None:
        await self._steps()
        self.completed = self.setup_error is None

    async def _steps(self) -> None:
        if any(isinstance(e, Fault) and e.kind == "clock" for e in self.timeline.events):
            for service in self.services.values():
                service.clock_file = self.record.directory / "nodes" / service.name / "clock"
                await self.nemesis.clock.set_clock(service)
        self.hit_task = asyncio.ensure_future(self.hits.watch())  # setup's hits get their time
        if not await self.setup():
            return
        for service in self.services.values():
            if service.service.stays_up:
                service.on_exit = self.exited_on_its_own
        if self.hold is not None:
            self.phase_start = round(time.monotonic() - self.record.t0, 3)
            await self.hold(self)
            await self.nemesis.heal_all()
            return
        self.driver_node = self.project.driver_nodes()[0]
        if self.timeline.first:
            await self.run_to_end(self.timeline.first)
        self.hits.poll()  # what setup and first_ wrote is stamped before the phase
        self.phase_start = round(await run_driver_phase(
            self.timeline, self.template, self.commands, self.nemesis,
            self.project.explore.max_parallel, self.record), 3)
        if self.timeline.eventually:
            self.commands.kill_running()
            await self.commands.wait_all()
            await self.nemesis.heal_all()
            await self.restart_services()
            await self.run_to_end(self.timeline.eventually)
        else:
            await self.nemesis.heal_all()
            await self.commands.wait_all()
            if self.timeline.finally_:
                await self.restart_services()
        if not self.timeline.finally_:
            return
        if all(i.status == "exited" for i in self.commands.all):
            await self.run_to_end(self.timeline.finally_)
        else:
            self.record.note("skip", command=self.timeline.finally_,
                             reason="not every command completed on its own")

    async def check_history(self) -> None:
        """Judge what the clients recorded with the template's checks, once every process
        has ended (after teardown: the history is complete)."""
        checks = self.project.options_for(self.template.name).checks
        if not self.completed or not checks:
            return
        for record in await asyncio.to_thread(run_checks, checks, self.record.directory):
            details = record["antithesis_assert"]["details"]
            self.record.note("check", name=record["antithesis_assert"]["id"],
                             outcome=details["outcome"], explanation=details["explanation"])
            self.record.assertion(record)

    def exited_on_its_own(self, service: ServiceNode, code: int) -> None:
        """A service process ended while no fault held it: usually the bug."""
        self.crashed.append(service.name)
        self.record.note("service exited", node=service.name, exit_code=code)
        self.record.assertion(assertion(SERVICES_UP, "Always", False, details={
            "node": service.name, "exit_code": code, "at": round(self.record.now(), 3),
            "stderr": str(service.spec.stderr)}))

    def services_stayed_up(self) -> None:
        """At the end of the run, before teardown kills everything: the run's one
        passing record when no service crashed."""
        watched = [s for s in self.services.values() if s.on_exit is not None]
        for service in watched:
            service.on_exit = None  # what happens from here on is composer's doing
        if watched and not self.crashed:
            self.record.assertion(assertion(SERVICES_UP, "Always", True))

    async def run_to_end(self, name: str) -> None:
        """Run the timeline's first, eventually or finally command until it ends."""
        inv = await self.commands.invoke(self.template.command(name), self.driver_node,
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
            self.record.note("setup failed", reason=self.setup_error)
            self.record.assertion(assertion(SETUP, "Always", False,
                                            details={"reason": self.setup_error}))
            return False
        self.record.note("setup complete",
                         nodes={n: node.address for n, node in self.nodes.items()})
        self.record.assertion(assertion(SETUP, "Always", True))
        return True

    async def wait_setup_complete(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            for path in (self.record.directory / "sdk").glob("*.jsonl"):
                if '"antithesis_setup"' in path.read_text(errors="replace"):
                    return
            await asyncio.sleep(0.05)
        raise SetupFailed(f"no process called setup_complete() within "
                          f"{self.project.setup.timeout:g}s; {self.project.setup.hint}")

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
            self.record.note("restart failed", reason=str(exc))
        if restarted:
            self.record.note("restart", targets=restarted)
