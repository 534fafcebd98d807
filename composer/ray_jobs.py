"""Timelines as Ray tasks: each runs on a worker machine that builds its cluster there.

The same calls as ``composer.jobs.ThreadJobs`` (submit, wait, run_all, close), so the
explorer does not know where its timelines run. A task gets the project as a
content-hashed archive (``composer.project_bundle``, put in Ray's object store once per
run), runs the timeline on the worker's own backend (netns, docker or local there) in a
temporary directory, judges it, and returns the verdict with the directory as a
compressed archive, unpacked here into the run directory as if it had run here. The
worker process's reaper (``composer.clusters.processes``) cleans up that machine if the
task dies; a lost worker or node comes back as ``JobLost``, an infrastructure event for
that timeline, not a property failure. Every worker needs composer installed (the same
version) and what its backend needs (root for netns, a Docker engine for docker).
Imports jobs, judging, project_bundle; ``ray`` only when used.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import os
import signal
import socket
import sys
import tarfile
import time
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

from composer import __version__, project_bundle
from composer.config import Project
from composer.errors import ConfigError, InfraError
from composer.jobs import Done, JobLost, Jobs
from composer.judging import Judged, run_and_judge
from composer.templates import Template
from composer.timeline import Timeline

__all__ = ["RayJobs", "connect", "in_child"]

_PR_SET_PDEATHSIG = 1
#: seconds a cancelled task gets to tear its cluster down before its worker is killed
_CANCEL_GRACE = 30.0
_POLL_SECONDS = 0.25


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray on this machine and on every worker: "
                          "pip install 'composer-dst[ray]'") from None
    return ray


def connect(address: str) -> Any:
    """Connect to the Ray cluster at ``address`` ("auto": the one started on this machine
    with ``ray start``); return the ray module."""
    ray = _ray()
    if not ray.is_initialized():
        _answers(address)
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False,
                     configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InfraError(f"--ray {address}: no Ray cluster answered ({exc}); start one "
                             "with 'ray start --head' (see the README)") from None
    return ray


def _answers(address: str) -> None:
    """Fail fast where nothing listens at host:port (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray knows better
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise InfraError(f"--ray {address}: no Ray cluster answered ({exc.strerror or exc}); "
                         "start one with 'ray start --head' (see the README)") from None


def in_child(run: Callable[[], int]) -> int:
    """Return ``run()``'s exit code, run in a forked child.

    Ray ends its driver process with exit code 1 when it loses the cluster (its GCS or
    the local raylet), from a thread of its own, and composer's exit 1 means a property
    failed. So the exploration runs in a child that reports its own code on a pipe
    before exiting; a child that ended without reporting was ended under composer, and
    its exit is 3 with a message. The child has a process group of its own, so Ctrl-C
    and SIGTERM reach it once, passed on by this process, and it dies with this one
    (SIGKILL included: the kernel's parent-death signal)."""
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        os.setpgid(0, 0)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(int(InfraError.exit_code))
        code = 3
        try:
            code = run()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.write(write, str(code).encode())
            os._exit(code)
    os.close(write)
    handlers = {number: signal.signal(number, lambda got, _: os.kill(pid, got))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        _, status = os.waitpid(pid, 0)
        reported = os.read(read, 16)
    finally:
        os.close(read)
        for number, handler in handlers.items():
            signal.signal(number, handler)
    code = os.waitstatus_to_exitcode(status)
    if reported:
        return code
    print(f"composer: error: the exploration ended without finishing (exit status {code}):"
          " Ray ends its driver when it loses the Ray cluster; see the cluster's logs "
          "(/tmp/ray/session_latest/logs on its head)", file=sys.stderr)
    return int(InfraError.exit_code)


def cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class RayJobs(Jobs[Judged]):
    """Up to ``jobs`` timelines at once as Ray tasks on the connected cluster."""

    def __init__(self, ray: Any, jobs: int, project: Project,
                 templates: Mapping[str, Template], backend: str) -> None:
        self._ray, self.jobs = ray, jobs
        self.bundle = project_bundle.pack(project.root)
        self._bundle_ref = ray.put(self.bundle)
        self._project, self._templates, self._backend = project, dict(templates), backend
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_on_worker)
        #: task reference -> (key, local directory, submitted at)
        self._refs: dict[Any, tuple[Hashable, Path, float]] = {}

    @property
    def running(self) -> int:
        return len(self._refs)

    def submit(self, key: Hashable, item: Timeline, directory: Path) -> None:
        if self.free() <= 0:
            raise RuntimeError("no free job")
        ref = self._remote.remote(self._bundle_ref, self._project, self._templates,
                                  self._backend, item, __version__)
        self._refs[ref] = (key, directory, time.monotonic())

    def wait(self, timeout: float | None = None) -> list[Done[Judged]]:
        if not self._refs:
            return []
        began = time.monotonic()
        while True:
            ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=_POLL_SECONDS)
            if ready or (timeout is not None and time.monotonic() - began >= timeout):
                break
        ready, _ = self._ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        return [self._done(ref) for ref in ready]

    def close(self) -> None:
        """Cancel what still runs (each task tears its cluster down), kill what has not
        ended after a grace period, and remove the project (and the directories of
        killed tasks) from every worker machine."""
        refs = list(self._refs)
        for ref in refs:
            self._ray.cancel(ref, force=False)
        if refs:
            _, late = self._ray.wait(refs, num_returns=len(refs), timeout=_CANCEL_GRACE)
            for ref in late:
                self._ray.cancel(ref, force=True)
        self._refs.clear()
        self._forget_bundle()

    def _forget_bundle(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        forget = self._ray.remote(num_cpus=0, max_retries=0)(project_bundle.after_run)
        refs = [forget.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node["NodeID"], soft=False)).remote(self.bundle.digest)
                for node in self._ray.nodes() if node.get("Alive")]
        try:
            self._ray.wait(refs, num_returns=len(refs), timeout=30)
        except Exception:  # a node gone meanwhile keeps its copy; gc of /tmp takes it
            pass

    def _done(self, ref: Any) -> Done[Judged]:
        key, directory, submitted = self._refs.pop(ref)
        seconds = time.monotonic() - submitted
        try:
            judged, archive = self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as exc:  # the task's own exception
            return Done(key, error=exc.as_instanceof_cause(), seconds=seconds)
        except self._ray.exceptions.TaskCancelledError as exc:
            return Done(key, error=asyncio.CancelledError(str(exc)), seconds=seconds)
        except self._ray.exceptions.RayError as exc:  # a worker or node lost
            return Done(key, error=JobLost(f"{type(exc).__name__}: {exc}".splitlines()[0]),
                        seconds=seconds)
        _unpack_run(archive, directory)
        result = project_bundle.rebase(judged.result, judged.result.directory, directory)
        return Done(key, value=Judged(result, judged.records, judged.garbage_lines,
                                      judged.violations), seconds=seconds)


def _unpack_run(archive: bytes, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(directory, filter="tar")


def run_on_worker(bundle: Any, project: Project, templates: Mapping[str, Template],
                  backend: str, timeline: Timeline, version: str) -> tuple[Judged, bytes]:
    """On a worker: run ``timeline`` on a cluster of this machine, judge it, and return
    the verdict with its directory as a gzipped tar (removed here)."""
    if version != __version__:
        raise InfraError(f"this worker has composer {__version__}, the head {version}: "
                         "install the same version on every machine")
    with project_bundle.in_use(bundle.digest):
        root = project_bundle.unpack(bundle)
        project = project_bundle.rebase(project, bundle.root, root)
        templates = project_bundle.rebase(templates, bundle.root, root)
        return _run_here(project, templates, backend, timeline)


def _run_here(project: Project, templates: Mapping[str, Template], backend: str,
              timeline: Timeline) -> tuple[Judged, bytes]:
    with project_bundle.scratch() as directory:
        judged = asyncio.run(run_and_judge(project, templates, backend, timeline, directory))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
            tar.add(str(directory), arcname=".")
        return judged, buffer.getvalue()
