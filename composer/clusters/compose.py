"""Compose mode: the containers of a docker-compose file as the nodes of a run.

Imports ``composer.clusters`` (``docker``, whose network, addresses, labels, mounts,
command entry and network faults it shares; ``agents`` for per-node fault views; ``base``,
``processes``), ``composer.compose``, ``composer.templates``, ``composer.errors``, the
docker SDK and the standard library. Per run, each compose service is one container made from the
service's image, command, entrypoint, environment, volumes and healthcheck, named and
reachable as the service. Its own main process is the service: composer starts it
(``start_main``), and kill, stop, pause and their heals go through the engine (kill,
pause/unpause, start again). Test commands are found in the images, under
``/opt/antithesis/test/v1/<template>/``, and each runs in the container holding it, with
that container's environment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import shutil
import signal
import tarfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from composer.clusters.agents import node_views
from composer.clusters.base import ProcessSpec
from composer.clusters.docker import DockerCluster, DockerNode, engine, fault_kinds, need_image
from composer.clusters.processes import HostProcess
from composer.compose import TEMPLATES_DIR, ComposeFile, ComposeService
from composer.errors import ConfigError, InfraError, TemplateError
from composer.templates import Template, discover

__all__ = ["ComposeCluster", "prepare"]
#: Variables composer gives a container's processes on top of the container's own.
_OURS = ("COMPOSER_", "ANTITHESIS_")


def prepare(compose: ComposeFile, cache: Path, say=print) -> tuple[dict[str, Template], set[str]]:
    """Build the images that have a ``build``, check the others exist, and find the test
    templates in every image; return them and the services holding them."""
    client = engine()
    for service in compose.services:
        if service.build is not None:
            say(f"building {service.image} for service {service.name} ({service.build.context})")
            _build(client, service)
        else:
            need_image(client, service.image, f"pull or build it (service {service.name})")
    shutil.rmtree(cache, ignore_errors=True)
    templates: dict[str, Template] = {}
    holders = set()
    for service in compose.services:
        try:
            found = _templates_in(client, service, cache / service.name)
        except (TemplateError, ConfigError):
            raise
        except Exception as exc:  # the engine, or an archive it sent
            raise InfraError(f"reading {TEMPLATES_DIR} from image {service.image} (service "
                             f"{service.name}) failed: {exc}") from None
        holders |= {service.name} if found else set()
        for name, template in found.items():
            templates[name] = _merge(templates.get(name), template)
    if not templates:
        raise TemplateError(
            f"{compose.path}: no image holds test commands: put executable "
            f"parallel_driver_*, serial_driver_* ... files in {TEMPLATES_DIR}/<template>/ "
            "of a service's image")
    return templates, holders


def _build(client, service: ComposeService) -> None:
    build = service.build
    assert build is not None
    try:
        for chunk in client.api.build(path=str(build.context), dockerfile=build.dockerfile,
                                      tag=service.image, buildargs=dict(build.args), rm=True,
                                      decode=True):
            if "error" in chunk:
                raise ConfigError(f"building {service.image} for service {service.name} "
                                  f"failed: {chunk['error'].strip()}")
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"building {service.image} for service {service.name} failed: "
                          f"{exc}") from None


def _templates_in(client, service: ComposeService, cache: Path) -> dict[str, Template]:
    """Copy the image's template directory out of a container that never starts, then
    validate it as a project's would be; commands keep their path inside the image."""
    import docker

    api = client.api
    container = api.create_container(service.image, ["true"], entrypoint=[])
    try:
        try:
            stream, _ = api.get_archive(container["Id"], TEMPLATES_DIR)
        except docker.errors.NotFound:
            return {}
        _extract(b"".join(stream), cache)
    finally:
        api.remove_container(container["Id"], force=True)
    root = cache / PurePosixPath(TEMPLATES_DIR).name
    found = discover(root)
    return {name: Template(name, Path(TEMPLATES_DIR) / name, tuple(
        dataclasses.replace(c, path=Path(TEMPLATES_DIR) / name / c.name, node=service.name)
        for c in template.commands)) for name, template in found.items()}


def _extract(archive: bytes, into: Path) -> None:
    """Unpack names, modes and file contents; a link becomes an executable stand-in (its
    target lives in the image), so validation sees what the container would run."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            path = (into / member.name).resolve()
            if not path.is_relative_to(into.resolve()):
                continue
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if member.isfile():
                data = tar.extractfile(member)
                path.write_bytes(data.read() if data else b"")
                path.chmod(member.mode & 0o755)
            else:
                path.write_bytes(b"")
                path.chmod(0o755)


def _merge(known: Template | None, more: Template) -> Template:
    if known is None:
        return more
    names = {c.name: c.node for c in known.commands}
    for command in more.commands:
        if command.name in names:
            raise TemplateError(
                f"template {more.name!r}: command {command.name} is in the images of both "
                f"{names[command.name]} and {command.node}: rename one")
    commands = tuple(sorted(known.commands + more.commands, key=lambda c: c.name))
    return Template(known.name, known.path, commands)


class ContainerProcess:
    """A container's main process, driven through the engine: SIGSTOP and SIGCONT pause
    and unpause the whole container, other signals go to its main process."""

    def __init__(self, node: ComposeNode, spec: ProcessSpec, started: float,
                 state: dict) -> None:
        self._node = node
        self._api = node.api
        self._container = node.container
        self._spec = spec
        self._started = started
        self.pid = state["Pid"] or 0
        loop = asyncio.get_running_loop()
        self._exit: asyncio.Future[int] = loop.create_future()
        if state["Running"]:
            # a thread of its own: a thread pool would run out with many containers waiting
            threading.Thread(target=self._wait_engine, args=(loop,), daemon=True).start()
        else:  # its main process ended already
            self.save_logs()
            self._exit.set_result(int(state["ExitCode"]))

    def _wait_engine(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            code = int(self._api.wait(self._container)["StatusCode"])
        except Exception:  # removed at cleanup
            code = -signal.SIGKILL
        self.save_logs()

        def ended() -> None:
            if self._node.pid == self.pid:
                self._node.left()
            if not self._exit.done():
                self._exit.set_result(code)

        try:
            loop.call_soon_threadsafe(ended)
        except RuntimeError:  # the run is over and its loop closed
            pass

    @property
    def returncode(self) -> int | None:
        return self._exit.result() if self._exit.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    async def end_leftovers(self) -> bool:
        return False  # the container is the process: what it started ended with it

    def save_logs(self) -> None:
        """Copy what the engine logged since this start into the service's log files."""
        for path, stdout in ((self._spec.stdout, True), (self._spec.stderr, False)):
            try:
                logs = self._api.logs(self._container, stdout=stdout, stderr=not stdout,
                                      since=self._started)
            except Exception:  # removed already
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(logs[-self._spec.log_limit:])

    def signal(self, sig: int) -> None:
        if self.returncode is not None:
            return
        try:
            if sig == signal.SIGSTOP:
                self._api.pause(self._container)
            elif sig == signal.SIGCONT:
                self._api.unpause(self._container)
            else:
                self._api.kill(self._container, int(sig))
        except Exception:  # it exited meanwhile
            pass

    async def write_stdin(self, data: bytes) -> None:
        raise ValueError("a container's main process has no stdin pipe")

    async def close_stdin(self) -> None:
        pass


class ComposeNode(DockerNode):
    """A container of a compose service; commands run in it with its own environment."""

    def __init__(self, cluster: ComposeCluster, name: str, address: str, root: Path,
                 container: str) -> None:
        super().__init__(cluster, name, address, root, container)
        self.api = cluster._client.api
        config = self.api.inspect_container(container)["Config"]
        self._env = dict(v.partition("=")[::2] for v in config.get("Env") or ())
        self._workdir = config.get("WorkingDir") or "/"
        #: the container's main process, once started
        self.main: ContainerProcess | None = None

    async def start_main(self, spec: ProcessSpec) -> ContainerProcess:
        """Start (or start again) the container; its main process is the service."""
        started = time.time()
        try:
            await asyncio.to_thread(self.api.start, self.container)
            state = (await asyncio.to_thread(self.api.inspect_container, self.container))["State"]
        except Exception as exc:
            raise InfraError(f"{self.name}: the container does not start: {exc}") from None
        self.main = ContainerProcess(self, spec, started, state)
        if state["Running"]:
            self.entered(state["Pid"])
            await self._reshape()
        return self.main

    async def _reshape(self) -> None:
        """A new network namespace: apply the faults in force, until what was applied is
        what the cluster was asked last (a reshape may come meanwhile)."""
        applied = None
        while self.network is not None and self._cluster.shape is not applied:
            applied = self._cluster.shape
            nodes = {n.name: n.address for n in self._cluster._nodes}
            await self.network.apply(node_views(applied, nodes)[self.name])

    async def start(self, spec: ProcessSpec) -> HostProcess:
        if not self.pid or not _running(self.pid):
            raise InfraError(f"{self.name}: the container is not running")
        env = {**self._env, **{k: v for k, v in spec.environment(self._env).items()
                               if k.startswith(_OURS)}}
        ours = dataclasses.replace(spec, env=env, extra_env={})
        return await self._enter(spec.argv, ours, self._workdir)


class ComposeCluster(DockerCluster):
    """The containers of one compose file, on a network of the run's own."""

    def __init__(self, workdir: Path, shared: Sequence[Path] = (), *,
                 compose: ComposeFile) -> None:
        self.compose = compose
        #: node -> variables its container gets beyond the compose file's (the sync
        #: service's), set before ``new_nodes``
        self.node_env: dict[str, dict[str, str]] = {}
        super().__init__(workdir, shared)

    @staticmethod
    def supported() -> frozenset[str]:
        engine()
        return fault_kinds()

    def _create_node(self, name: str, index: int) -> ComposeNode:
        service = self.compose.service(name)
        address, root = self._place(name, index)
        output = str(self.workdir / "sdk" / f"{name}-main.jsonl")
        env = {**dict(service.environment), **self.node_env.get(name, {}), "COMPOSER_NODE": name, "COMPOSER_HOST": address,
               "COMPOSER_SDK_OUTPUT": output, "ANTITHESIS_SDK_LOCAL_OUTPUT": output,
               "ANTITHESIS_OUTPUT_DIR": str(self.workdir)}
        options = {"environment": env, "entrypoint": service.entrypoint,
                   "working_dir": service.working_dir, "user": service.user,
                   "labels": dict(service.labels)}
        if service.cap_add or service.cap_drop or service.privileged:
            options.update(cap_add=list(service.cap_add) or None,
                           cap_drop=list(service.cap_drop) or None,
                           privileged=service.privileged)
        binds = [f"{self._volume(m.source) if m.volume else m.source}:{m.target}"
                 + (":ro" if m.read_only else "") for m in service.mounts]
        container = self._create_container(
            name, address, service.image, list(service.command) if service.command else None,
            hostname=service.hostname or name, init=service.init, binds=binds,
            **{k: v for k, v in options.items() if v is not None})
        return ComposeNode(self, name, address, root, container)

    async def cleanup(self) -> None:
        """Keep the logs of the services still running, then remove everything."""
        live = [n.main for n in self._nodes
                if isinstance(n, ComposeNode) and n.main and n.main.returncode is None]
        await asyncio.gather(*(asyncio.to_thread(p.save_logs) for p in live),
                             return_exceptions=True)
        await super().cleanup()

    def _volume(self, name: str) -> str:
        """The run's own docker volume for the compose volume ``name``."""
        full = f"composer-{self.block}-{name}"
        self._client.api.create_volume(full, labels=self._labels())
        return full


def _running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()
