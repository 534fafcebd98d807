"""``composer.Service``: ducktape's service model over ``composer.Cluster``.

A service is ``num_nodes`` nodes of a cluster running one program. A subclass says how
to start one node (``start_node``), and optionally how to tell it is up (``alive``), how
to stop it (``stop_node``), wipe its data (``clean_node``) and wait for it to finish
(``wait_node``); users then call ``start()``, ``wait()``, ``stop()``, ``run()``,
``bounce(node)`` and ``run_parallel(*services)``, as in ducktape, on any backend:

    class Echo(composer.Service):
        num_nodes = 2
        logs = {"echo.log": "data/echo.log"}      # per node, relative to node.root

        def start_node(self, node):
            self.start_process(node, ["python3", "echo.py", node.address])

        def alive(self, node):
            node.dial(7000, timeout=1).close()     # OSError (refused): not yet
            return True

Processes started with ``start_process`` are the service's: the default hooks stop them
(SIGTERM, then SIGKILL), wait for them, and count them alive while they run. Every
node's output and ``logs`` files are copied into ``<log root>/<service>/<node>/`` when
the service stops, is bounced, or the test ends (``composer.service_logs``).

Not ``composer.services``, which runs a ``composer.toml`` project's services for
``composer explore``. Imports ``composer.api``, ``composer.errors`` and
``composer.service_logs``; never Hypothesis or the runner.
"""

from __future__ import annotations

import concurrent.futures
import re
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from composer import service_logs
from composer.api import Cluster, Node, Process
from composer.errors import ComposerError

__all__ = ["Service", "run_parallel", "ServiceError", "ServiceFailed", "ServiceTimeout", "ServiceStopped"]

#: seconds between two ``alive`` checks, and the longest slice ``wait_node`` is given
POLL = 0.05
WAIT_SLICE = 0.2


class ServiceError(ComposerError):
    """A service could not start, stop or finish; the message names the node."""


class ServiceFailed(ServiceError):
    """A node's process exited with an error (while starting, or in ``wait``); the
    message has its exit code and the end of its stderr, and the logs say more."""


class ServiceTimeout(ServiceError, TimeoutError):
    """A node was not alive (``start``, ``bounce``) or not finished (``wait``) in time;
    the message names the nodes. Fix the hook, or pass a longer ``timeout_sec``."""


class ServiceStopped(ServiceError):
    """``run_parallel`` stopped this service because another one failed."""


class Service:
    """``num_nodes`` nodes of ``cluster`` running one program; subclass and implement
    ``start_node``. Nodes are made at once, named ``<name>-1``, ``<name>-2``, ...
    (``name`` defaults to the class name without "Service", in kebab case).

    Hooks (each gets one node; the defaults work on the processes ``start_process``
    started on it): ``start_node`` (required), ``alive``, ``stop_node``, ``clean_node``,
    ``wait_node``. ``results`` is a dict the service fills for the test to read.
    """

    #: how many nodes (default 1); an instance's ``num_nodes=`` wins
    num_nodes: ClassVar[int] = 1
    #: log files of every node: file name -> path on the node (relative: to node.root)
    logs: ClassVar[Mapping[str, str]] = {}
    #: seconds ``stop_node`` waits after SIGTERM before it sends SIGKILL
    stop_grace_sec: ClassVar[float] = 10.0

    def __init__(self, cluster: Cluster, num_nodes: int | None = None, *,
                 name: str | None = None) -> None:
        kind = type(self).__name__
        self.name = name or _kebab(kind)
        count = num_nodes if num_nodes is not None else type(self).num_nodes
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"{kind}: num_nodes={count!r}; give a whole number of at least 1 "
                             f"(as {kind}(cluster, num_nodes=3) or a class attribute)")
        for file in self.logs:
            if not file or "/" in file or file in (".", ".."):
                raise ValueError(f"{kind}.logs: {file!r} is not a file name; the keys name "
                                 "the copies (as 'server.log'), the values are paths")
        names = [f"{self.name}-{i}" for i in range(1, count + 1)]
        taken = {node.name for node in cluster.nodes}.intersection(names)
        if taken:
            raise ValueError(f"{kind}: the cluster already has node(s) {', '.join(sorted(taken))}"
                             f" (another {kind}?); pass name='{self.name}2' or another name")
        self.cluster = cluster
        self.num_nodes = count  # type: ignore[misc]  # the instance's own
        self.nodes: list[Node] = cluster.new_nodes(names=names)
        #: what the service measured or found, for the test to read
        self.results: dict = {}
        self._lock = threading.RLock()
        self._cancelled: str | None = None  # why run_parallel stopped it
        self._started: set[str] = set()  # nodes start_node was called on, not stopped since
        self._current: dict[str, list[Process]] = {n.name: [] for n in self.nodes}
        self._all: dict[str, list[Process]] = {n.name: [] for n in self.nodes}
        self._stopped: set[int] = set()  # ids of processes the service stopped itself
        service_logs.register(cluster, self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {', '.join(n.name for n in self.nodes)}>"

    # -- hooks ---------------------------------------------------------------------------

    def start_node(self, node: Node) -> None:
        """Start the program on ``node`` (with ``start_process``); return without waiting
        for it to be up: ``start`` asks ``alive`` until it is."""
        raise NotImplementedError(f"{type(self).__name__} must define start_node(self, node), "
                                  "which starts the node's program with self.start_process")

    def alive(self, node: Node) -> bool:
        """Return whether ``node`` is up. Default: it has processes, and each one runs or
        exited with 0 (a finite service may finish before this is asked). An ``OSError``
        (connection refused) counts as not yet."""
        processes = self._current[node.name]
        return bool(processes) and all(p.exit_code in (None, 0) for p in processes)

    def stop_node(self, node: Node) -> None:
        """Stop ``node``. Default: SIGTERM each of its processes, SIGKILL after
        ``stop_grace_sec``."""
        for process in self._current[node.name]:
            if process.exit_code is None:
                self._stopped.add(id(process))
                process.stop(grace=self.stop_grace_sec)

    def clean_node(self, node: Node) -> None:
        """Remove what ``node`` keeps across restarts. Default: ``data_dir(node)``."""
        node.run(["rm", "-rf", str(self.data_dir(node))], check=True, timeout=60)

    def wait_node(self, node: Node, timeout_sec: float) -> bool:
        """Wait up to ``timeout_sec`` for ``node`` to finish; return whether it has.
        ``wait`` calls it again and again with short timeouts. Default: its processes
        exited; ``ServiceFailed`` if one exited non-zero on its own."""
        deadline = time.monotonic() + timeout_sec
        for process in self._current[node.name]:
            if process.exit_code is None:
                try:
                    process.wait(max(deadline - time.monotonic(), 0.001))
                except TimeoutError:
                    return False
        for process in self._current[node.name]:
            if process.exit_code != 0 and id(process) not in self._stopped:
                raise ServiceFailed(self._exited(node, process, "before it was stopped"))
        return True

    # -- helpers for hooks -----------------------------------------------------------------

    def start_process(self, node: Node, argv: Sequence[str], *,
                      env: Mapping[str, str] | None = None, cwd: Path | None = None,
                      stdin: bool = False) -> Process:
        """Start ``argv`` on ``node`` as one of the service's processes (stopped, waited
        for and logged by the default hooks)."""
        with self._lock:
            self._check_cancelled()
            process = node.start(argv, env=env, cwd=cwd, stdin=stdin)
            self._current[node.name].append(process)
            self._all[node.name].append(process)
        return process

    def processes(self, node: Node) -> list[Process]:
        """The processes started on ``node`` since it was last (re)started."""
        return list(self._current[node.name])

    def data_dir(self, node: Node) -> Path:
        """The node's data directory, kept across ``bounce`` unless ``clean=True``."""
        return node.root / "data"

    def idx(self, node: Node) -> int:
        """The node's number in the service, from 1 (ducktape's ``idx``)."""
        return self._index(node) + 1

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout_sec: float = 60.0) -> None:
        """Start every node, then wait until each is ``alive``; ``ServiceTimeout`` names
        the nodes that are not after ``timeout_sec``, ``ServiceFailed`` a node whose
        process exited with an error meanwhile."""
        if self._started:
            raise ServiceError(f"{self.name}: start() while {', '.join(sorted(self._started))} "
                               "still run; stop() the service first, or bounce(node) one node")
        for node in self.nodes:
            self._start_one(node)
        self._await_alive(self.nodes, timeout_sec, "start")

    def wait(self, timeout_sec: float = 600.0) -> None:
        """Wait until every started node has finished (``wait_node``); ``ServiceTimeout``
        names those that have not after ``timeout_sec``."""
        deadline = time.monotonic() + timeout_sec
        pending = [n for n in self.nodes if n.name in self._started]
        while pending:
            self._check_cancelled()
            left = deadline - time.monotonic()
            pending = [n for n in pending if not self.wait_node(n, min(WAIT_SLICE, max(left, 0)))]
            if pending and time.monotonic() >= deadline:
                raise ServiceTimeout(
                    f"{self.name}: {', '.join(n.name for n in pending)} still running "
                    f"{timeout_sec}s into wait(); pass wait(timeout_sec=...) a longer time, "
                    f"or make {type(self).__name__}.wait_node say when a node is done")

    def stop(self) -> None:
        """Stop every started node (all of them, even if one fails) and collect the logs;
        safe to call twice."""
        errors: list[BaseException] = []
        with self._lock:
            for node in self.nodes:
                if node.name in self._started:
                    self._started.discard(node.name)
                    try:
                        self.stop_node(node)
                    except Exception as exc:  # stop the others anyway
                        errors.append(exc)
            self.collect_logs()
        _raise_all(errors, f"{self.name}: stop() failed on several nodes")

    def clean(self) -> None:
        """Run ``clean_node`` on every node (stop the service first)."""
        for node in self.nodes:
            self.clean_node(node)

    def run(self, timeout_sec: float = 600.0) -> None:
        """``start()``, ``wait(timeout_sec)``, then ``stop()`` whatever happened."""
        try:
            self.start()
            self.wait(timeout_sec)
        except BaseException as exc:
            try:
                self.stop()
            except Exception as also:
                exc.add_note(f"and stopping {self.name} failed too: {also}")
            raise
        self.stop()

    def bounce(self, node: Node, clean: bool = False, timeout_sec: float = 60.0) -> None:
        """Stop ``node``, wipe its data if ``clean``, start it again and wait until it is
        ``alive``; the other nodes keep running."""
        index = self._index(node)
        if node.name not in self._started:
            raise ServiceError(f"{self.name}: bounce({node.name}) of a node that is not "
                               "running; call start() first")
        node = self.nodes[index]
        with self._lock:
            self._started.discard(node.name)
            self.stop_node(node)
            self.collect_logs([node])
        if clean:
            self.clean_node(node)
        self._start_one(node)
        self._await_alive([node], timeout_sec, "bounce")

    def collect_logs(self, nodes: Sequence[Node] | None = None) -> list[Path]:
        """Copy the output of every process the service started, and its ``logs`` files,
        into ``<log root>/<service>/<node>/``; return the files written."""
        written: list[Path] = []
        for node in nodes or self.nodes:
            written += service_logs.collect(
                node, service_logs.directory(self.cluster, self.name, node.name),
                self._all[node.name], {k: node.root / v for k, v in self.logs.items()})
        return written

    # -- internals -------------------------------------------------------------------------

    def _start_one(self, node: Node) -> None:
        with self._lock:
            self._check_cancelled()
            self._current[node.name] = []
            self._started.add(node.name)
        self.start_node(node)

    def _await_alive(self, nodes: Sequence[Node], timeout_sec: float, during: str) -> None:
        deadline = time.monotonic() + timeout_sec
        pending = list(nodes)
        while True:
            self._check_cancelled()
            for node in pending:
                for process in self._current[node.name]:
                    if process.exit_code not in (None, 0):
                        raise ServiceFailed(self._exited(node, process, f"during {during}()"))
            pending = [n for n in pending if not self._is_alive(n)]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise ServiceTimeout(
                    f"{self.name}: {', '.join(n.name for n in pending)} not alive "
                    f"{timeout_sec}s into {during}() ({type(self).__name__}.alive said no)"
                    f"{''.join(self._tail(n) for n in pending)}\nRead its logs, fix "
                    f"start_node or alive, or pass {during}(timeout_sec=...) a longer time")
            time.sleep(POLL)

    def _is_alive(self, node: Node) -> bool:
        try:
            return bool(self.alive(node))
        except OSError:
            return False

    def _exited(self, node: Node, process: Process, when: str) -> str:
        code = process.exit_code
        stderr = process.stderr.decode(errors="replace").strip()[-1500:]
        return (f"{self.name}: {node.name}: {' '.join(process.argv)} exited with {code} {when}"
                + (f":\n{stderr}" if stderr else " (no stderr)")
                + f"\nits logs: {service_logs.directory(self.cluster, self.name, node.name)}")

    def _tail(self, node: Node) -> str:
        processes = self._current[node.name]
        if not processes:
            return f"\n{node.name}: start_node started no process (use self.start_process)"
        last = processes[-1]
        stderr = last.stderr.decode(errors="replace").strip()[-500:]
        return f"\n{node.name}: {last!r}" + (f", stderr ends:\n{stderr}" if stderr else "")

    def _index(self, node: Node) -> int:
        for i, mine in enumerate(self.nodes):
            if mine is node or mine.name == getattr(node, "name", None):
                return i
        raise ValueError(f"{node!r} is not a node of {self.name} "
                         f"({', '.join(n.name for n in self.nodes)})")

    def _check_cancelled(self) -> None:
        if self._cancelled is not None:
            raise ServiceStopped(f"{self.name}: stopped by run_parallel: {self._cancelled}")


def _kebab(class_name: str) -> str:
    """``KvService`` -> ``kv``, ``LoadGen`` -> ``load-gen``: a node name prefix."""
    base = class_name.removesuffix("Service") or class_name
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", base)
    return re.sub(r"[^a-z0-9-]+", "-", words.lower()).strip("-")[:30] or "service"


def _raise_all(errors: list[BaseException], summary: str) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ServiceError(summary + ":\n" + "\n".join(f"- {e}" for e in errors)) from errors[0]


def run_parallel(*services: Service, timeout_sec: float = 600.0) -> None:
    """Run every service's ``run(timeout_sec)`` at once; when one fails, stop the others
    and raise its error (the others' own failures are added as notes)."""
    if not services:
        return
    for service in services:
        service._cancelled = None
    pool = concurrent.futures.ThreadPoolExecutor(len(services), "composer-service")
    futures = {pool.submit(s.run, timeout_sec): s for s in services}
    first: BaseException | None = None
    try:
        for future in concurrent.futures.as_completed(futures):
            if future.exception() is not None:
                first = future.exception()
                break
    except BaseException as interrupt:  # Ctrl-C: stop everything too
        first = interrupt
    if first is not None:
        failed = next((s for f, s in futures.items() if f.done() and f.exception() is first),
                      None)
        reason = f"{failed.name} failed" if failed is not None else "interrupted"
        for future, service in futures.items():
            if service is not failed and not future.done():
                service._cancelled = reason
                try:
                    service.stop()
                except Exception as exc:
                    first.add_note(f"stopping {service.name} failed: {exc}")
    pool.shutdown(wait=True)
    for service in services:
        service._cancelled = None  # usable again
    for future, service in futures.items():
        error = future.exception()
        if error is not None and error is not first and not isinstance(error, ServiceStopped):
            if first is None:
                first = error
            else:
                first.add_note(f"{service.name} failed too: {error}")
    if first is not None:
        raise first
