"""Services on a cluster, written once over the backend protocols.

Owns placeholders, the environment every process gets, starting a service and waiting
until it is ready, and the process faults (kill, stop, pause) with their heals. Imports
``composer.clusters.base``, ``composer.config``, ``composer.errors``;
never Hypothesis.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import cast

from composer.clusters.agent_mirror import COVERAGE_SITE
from composer.clusters.base import ContainerNode, Node, Process, ProcessSpec
from composer.config import PLACEHOLDER, Project, Service
from composer.errors import InfraError

__all__ = ["Environment", "ServiceNode", "SetupFailed", "substitute"]

#: The directory holding composer_sdk: on every process's PYTHONPATH.
_SDK_ROOT = Path(__file__).resolve().parent.parent
#: Makes the workloads importable as composer_drivers where only this source tree is (a
#: container mounting it, an editable install): a link to the drivers/ folder. An
#: installed composer has composer_drivers beside composer_sdk, and no link.
_IMPORT_PATHS = str(Path(__file__).resolve().parent / "import_paths") if (
    Path(__file__).resolve().parent / "import_paths" / "composer_drivers").is_dir() else ""
#: Holds the sitecustomize that traces a Python service's lines (``coverage = true``).
_COVERAGE_SITE = Path(__file__).resolve().parent / "linecover_site"
_STOP_GRACE = 5.0


class SetupFailed(Exception):
    """A service did not come up; the message says which, why, and the log to read."""


def substitute(command: str, node: Node, index: int, hosts: Mapping[str, list[str]]) -> str:
    """Fill the placeholders of ``command`` for ``node`` (the index-th of its service)."""

    def value(match: re.Match) -> str:
        key = match.group(1)
        if key == "host":
            return node.address
        if key == "name":
            return node.name
        if key == "index":
            return str(index)
        if key == "data":
            return shlex.quote(str(node.data_dir))
        return ",".join(hosts[key.split(".", 1)[1]])

    return PLACEHOLDER.sub(value, command)


class Environment:
    """Builds the environment of every process of one timeline (see DESIGN.md)."""

    def __init__(self, project: Project, nodes: Mapping[str, Node], directory: Path,
                 seed: int = 0, per_node: Mapping[str, Mapping[str, str]] | None = None
                 ) -> None:
        self.project = project
        #: node -> variables of its processes only (the sync service's, per group)
        self.per_node = per_node or {}
        #: seed of the timeline; service processes get it as COMPOSER_SEED
        self.seed = seed
        self.directory = directory
        self.sdk_dir = directory / "sdk"
        self.sdk_dir.mkdir(parents=True, exist_ok=True)
        self.hosts = {
            s.name: [nodes[n].address for n in s.node_names()] for s in project.services
        }
        service_of = {n: s.name for s in project.services for n in s.node_names()}
        topology = self.topology = directory / "topology.json"
        topology.write_text(json.dumps({
            "project": project.name,
            "nodes": [
                {"name": n.name, "address": n.address, "service": service_of[n.name],
                 "data": str(n.data_dir)}
                for n in nodes.values()
            ],
        }, indent=2))
        self.stop_faults = directory / "stop_faults.sh"
        self.stop_faults.write_text(
            "#!/bin/sh\n# Pause composer's faults for $1 seconds (default 10).\n"
            f"echo \"$(date +%s.%N) ${{1:-10}}\" >> {shlex.quote(str(directory / 'stop_faults'))}\n"
        )
        self.stop_faults.chmod(0o755)
        base = dict(os.environ)
        # composer's own commands (composer-sync): the console scripts beside this
        # Python, else (in a container, where that path is not) the SDK's shims
        base["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), base.get("PATH", ""),
                                        str(_SDK_ROOT / "composer_sdk" / "bin")])
        base["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_SDK_ROOT), _IMPORT_PATHS, base.get("PYTHONPATH", "")) if p
        )
        base.setdefault("PYTHONUNBUFFERED", "1")
        for service, addresses in self.hosts.items():
            base[f"COMPOSER_HOSTS_{_env_name(service)}"] = ",".join(addresses)
        base["COMPOSER_TOPOLOGY"] = str(topology)
        base["ANTITHESIS_OUTPUT_DIR"] = str(directory)
        base["ANTITHESIS_STOP_FAULTS"] = str(self.stop_faults)
        self._base = base

    def for_process(self, node: Node, seed: int, label: str, extra=()) -> dict[str, str]:
        """Return the environment of one process; ``label`` names its SDK output file."""
        env = dict(self._base)
        env.update(self.per_node.get(node.name, {}))
        env.update(extra)
        output = str(self.sdk_dir / f"{label}.jsonl")
        env.update({
            "COMPOSER_NODE": node.name,
            "COMPOSER_HOST": node.address,
            "COMPOSER_DATA": str(node.data_dir),
            "COMPOSER_SEED": str(seed),
            "COMPOSER_SDK_OUTPUT": output,
            "ANTITHESIS_SDK_LOCAL_OUTPUT": output,
        })
        return env

    def coverage(self, node: str, label: str) -> dict[str, str]:
        """Return the environment that makes a Python process trace its lines in the
        project into ``coverage/<node>-<label>.lines`` (read by ``composer.linecover``);
        on a node with a copy of composer's files (an agent's), that copy's site."""
        own = {**self._base, **self.per_node.get(node, {})}
        site = own.get(COVERAGE_SITE, str(_COVERAGE_SITE))
        return {
            "PYTHONPATH": os.pathsep.join([site, own["PYTHONPATH"]]),
            "COMPOSER_COVERAGE_FILE": str(self.directory / "coverage" / f"{node}-{label}.lines"),
            "COMPOSER_COVERAGE_ROOT": str(self.project.root),
        }

    def faults_paused(self) -> bool:
        """Return whether a process asked through ANTITHESIS_STOP_FAULTS to pause faults now."""
        try:
            lines = (self.directory / "stop_faults").read_text().split()
        except OSError:
            return False
        pairs = zip(lines[::2], lines[1::2])
        try:
            until = max(float(t) + float(s) for t, s in pairs)
        except ValueError:
            return False
        return time.time() < until


def _env_name(service: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", service).upper()


class ServiceNode:
    """A node running one service's command: start, readiness, process faults, heals."""

    def __init__(self, node: Node, service: Service, index: int, env: Environment,
                 directory: Path) -> None:
        self.node = node
        self.service = service
        self.index = index
        self.env = env
        self.directory = directory
        self.process: Process | None = None
        #: the wall-clock offset file when the timeline has clock faults
        self.clock_file: Path | None = None
        #: "running", "killed", "stopped", "paused" or "exited"
        self.state = "new"
        self.starts = 0
        #: a stop's grace wait, running beside the schedule
        self._grace: asyncio.Future | None = None
        #: called with this node and the exit code when its process exits while no fault
        #: holds it (set by the runner once setup is over)
        self.on_exit: Callable[[ServiceNode, int], None] | None = None
        self._exit_watch: asyncio.Future | None = None

    @property
    def name(self) -> str:
        return self.node.name

    def _spec(self, argv: tuple[str, ...], label: str) -> ProcessSpec:
        logs = self.directory / "logs" / self.name
        extra = dict(self.service.env)
        if self.service.coverage:
            extra.update(self.env.coverage(self.name, label))
        return ProcessSpec(
            argv=argv,
            env=self.env.for_process(self.node, self.env.seed, f"{self.name}-{label}", extra),
            cwd=self.env.project.root,
            stdout=logs / f"{label}.stdout",
            stderr=logs / f"{label}.stderr",
            clock=self.clock_file,
        )

    async def start(self) -> None:
        """Start the service command (again, after a kill or stop); for a service that is
        an image's container, start the container, whose own main process is the service."""
        self.starts += 1
        label = f"service-{self.starts}"
        if self.service.image is not None:
            self.spec = self._spec((), label)
            self.process = await cast(ContainerNode, self.node).start_main(self.spec)
        else:
            assert self.service.command is not None
            command = substitute(self.service.command, self.node, self.index, self.env.hosts)
            self.spec = self._spec(("/bin/sh", "-c", _exec(command)), label)
            self.process = await self.node.start(self.spec)
        self.state = "running"
        self._exit_watch = asyncio.ensure_future(self._watch_exit(self.process))

    async def _watch_exit(self, process: Process) -> None:
        """Mark the service exited the moment its process ends while no fault holds it."""
        code = await process.wait()
        if self.process is process and self.state == "running":
            self.state = "exited"
            if self.on_exit is not None:
                self.on_exit(self, code)

    async def wait_ready(self, deadline: float) -> None:
        """Wait until the readiness check passes; ``SetupFailed`` at ``deadline`` or exit."""
        ready = self.service.ready
        while True:
            if self.process is not None and self.process.returncode is not None:
                raise SetupFailed(
                    f"service {self.name} exited with code {self.process.returncode} before it was "
                    f"ready; see {self.spec.stderr}{_tail(self.spec.stderr)}"
                )
            if ready is None or await self._check(ready, deadline):
                return
            if time.monotonic() >= deadline:
                what = f"tcp port {ready.tcp}" if ready.tcp else f"command {ready.command!r}"
                raise SetupFailed(
                    f"service {self.name} not ready in time: {what} never succeeded on "
                    f"{self.node.address}; raise --setup-timeout (or [setup] timeout) or fix "
                    "the readiness check; "
                    f"log: {self.spec.stderr}{_tail(self.spec.stderr)}"
                )
            await asyncio.sleep(0.02)

    async def _check(self, ready, deadline: float) -> bool:
        if ready.tcp is not None:
            return await self.node.probe(ready.tcp, timeout=0.5)
        check = await self.node.start(self._spec(("/bin/sh", "-c", ready.command), "ready"))
        try:
            code = await asyncio.wait_for(check.wait(), max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            check.signal(signal.SIGKILL)
            return False
        return code == 0

    async def apply(self, kind: str) -> bool:
        """Apply process fault ``kind``; return False (nothing done) if not running.

        A stop sends SIGTERM and returns: the grace wait (then SIGKILL) runs beside the
        schedule, so a service that ignores SIGTERM delays no later event, and a heal that
        comes while it still waits kills and restarts it.
        """
        if self.state != "running" or self.process is None:
            return False
        if kind == "pause":
            self.state = "paused"
            self.process.signal(signal.SIGSTOP)
        elif kind == "kill":
            self.state = "killed"
            self.process.signal(signal.SIGKILL)
            await self.process.wait()
        elif kind == "stop":
            self.state = "stopped"
            self.process.signal(signal.SIGTERM)
            self._grace = asyncio.ensure_future(_kill_after(self.process, _STOP_GRACE))
        else:
            raise InfraError(f"{self.name}: {kind!r} is not a process fault")
        return True

    async def heal(self) -> None:
        """Undo whatever process fault holds this node: continue, or restart."""
        if self.state == "paused" and self.process is not None:
            self.process.signal(signal.SIGCONT)
            self.state = "running"
        elif self.state in ("killed", "stopped", "exited"):
            if self.process is not None and self.process.returncode is None:
                self.process.signal(signal.SIGKILL)  # a stop still waiting for its exit
                await self.process.wait()
            await self.start()

    def check_exited(self) -> int | None:
        """Mark the service exited if its process ended on its own; return the code once."""
        if self.state == "running" and self.process and self.process.returncode is not None:
            self.state = "exited"
            return self.process.returncode
        return None


async def _kill_after(process: Process, grace: float) -> None:
    """SIGKILL ``process`` if it has not exited ``grace`` s from now."""
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), grace)
    except asyncio.TimeoutError:
        process.signal(signal.SIGKILL)
        await process.wait()


def _exec(command: str) -> str:
    """Let a simple command replace its shell, so the service is the process composer
    starts and signals; compound commands (lists, pipes, subshells) keep the shell."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()")
    try:
        tokens = list(lexer)
    except ValueError:
        return command
    if "\n" in command or not tokens or tokens[0] == "exec" or any(set(t) <= set(";&|()") for t in tokens):
        return command
    return f"exec {command}"


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").rstrip().splitlines()[-lines:]
    except OSError:
        return ""
    return ("; last lines:\n    " + "\n    ".join(text)) if text else ""
