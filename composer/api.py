"""Clusters for ordinary Python and pytest tests: clustertest's API over every backend.

    from composer import Cluster

    with Cluster("netns") as cluster:
        node = cluster.new_node()
        node.send_file(node.root / "hello", b"Hello, world!")
        assert node.run(["cat", str(node.root / "hello")]).stdout == b"Hello, world!"

Every method blocks. Underneath are the same asynchronous backends ``composer explore``
uses (``composer.clusters``); they run on an event loop in a thread of the cluster's
own, so tests need no asyncio. ``cleanup`` (or leaving the ``with`` block) kills every
process and removes every node; the reaper does it too if Python dies first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import itertools
import os
import re
import shutil
import signal as signals
import socket
import tempfile
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from composer import clusters
from composer.clusters.base import ProcessSpec
from composer.errors import ComposerError, ConfigError

__all__ = ["Cluster", "Node", "Process", "Result", "CommandFailed"]

T = TypeVar("T")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class CommandFailed(ComposerError):
    """``Node.run(..., check=True)`` saw a non-zero exit code."""

    def __init__(self, node: str, argv: Sequence[str], result: Result) -> None:
        stderr = result.stderr.decode(errors="replace").strip()[-2000:]
        super().__init__(f"{node}: {' '.join(argv)} exited with {result.exit_code}"
                         + (f":\n{stderr}" if stderr else ""))
        self.result = result


@dataclasses.dataclass(frozen=True)
class Result:
    """A finished command: exit code (negative: killed by that signal) and its output."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    seconds: float


class _Loop:
    """An event loop on a daemon thread; ``call`` runs a coroutine there and blocks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="composer-cluster",
                                        daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"gave up after {timeout}s") from None
        except BaseException:  # Ctrl-C in the caller: do not leave the work running
            future.cancel()
            raise

    def close(self) -> None:
        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.call(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Cluster:
    """Nodes of one backend (``local``, ``netns``, ``docker``, ``agents`` or ``aws``),
    until ``cleanup``.

    ``workdir`` keeps the nodes' directories and every process's output; by default a
    temporary directory removed by ``cleanup``. ``agents`` is the agents file of the
    ``agents`` backend; ``aws`` the settings of the ``aws`` backend (over
    ``COMPOSER_AWS_*``), which launches an instance per node at the first ``new_nodes``.
    """

    def __init__(self, backend: str = "local", *, workdir: Path | None = None,
                 agents: Path | None = None, aws: dict | None = None) -> None:
        if backend not in clusters.API_BACKENDS:
            raise ConfigError(f"Cluster({backend!r}): unknown backend; choose one of "
                              f"{', '.join(clusters.API_BACKENDS)}")
        if aws is not None and backend != "aws":
            raise ConfigError(f"Cluster({backend!r}, aws=...): aws settings are for the aws "
                              "backend")
        self.backend = backend
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="composer-cluster-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._nodes: list[Node] = []
        self._relays: set[asyncio.Future] = set()
        self._loop: _Loop | None = _Loop()
        options: dict = {"agents": agents} if agents is not None else {}
        if aws is not None:
            options["aws"] = aws

        async def create() -> clusters.Cluster:
            return clusters.create(backend, self.workdir, **options)

        try:
            self._cluster = self._loop.call(create())
        except BaseException:
            self._loop.close()
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def new_node(self, name: str | None = None) -> Node:
        """Add one node; names default to node-1, node-2, ..."""
        return self.new_nodes(names=[name] if name else None, count=1)[0]

    def new_nodes(self, count: int | None = None, *, names: Sequence[str] | None = None) -> list[Node]:
        """Add ``count`` nodes, or one per name, created together (faster than one by one)."""
        taken = {n.name for n in self._nodes}
        if names is None:
            if count is None or count < 1:
                raise ValueError("new_nodes needs a count of at least 1, or names")
            numbers = (i for i in itertools.count(len(self._nodes) + 1) if f"node-{i}" not in taken)
            names = [f"node-{i}" for i in itertools.islice(numbers, count)]
        for name in names:
            if not _NAME.fullmatch(name) or name in taken or list(names).count(name) > 1:
                raise ValueError(f"node name {name!r}: use 1-40 of a-z, 0-9 and '-', starting "
                                 "with a letter or digit, unique in the cluster")
        made = self._call(self._cluster.new_nodes(list(names)))
        nodes = [Node(self, backend_node) for backend_node in made]
        self._nodes.extend(nodes)
        return nodes

    def cleanup(self) -> None:
        """Kill every process and remove every node; safe to call twice."""
        if self._loop is None:
            return
        try:
            self._loop.call(self._cluster.cleanup())
        finally:
            self._loop.close()
            self._loop = None
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("this cluster was cleaned up")
        return self._loop.call(coroutine, timeout)


class Node:
    """One node: ``name``, ``address`` (reachable from the other nodes) and ``root``, a
    directory of its own (as the node's processes see it)."""

    def __init__(self, cluster: Cluster, node: clusters.base.Node) -> None:
        self._cluster = cluster
        self._node = node
        self.name: str = node.name
        self.address: str = node.address
        self.root: Path = node.root
        self._started = itertools.count(1)

    def __repr__(self) -> str:
        return f"<Node {self.name} {self.address} on {self._cluster.backend}>"

    def run(self, argv: Sequence[str], *, input: bytes | None = None,
            env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float | None = None, check: bool = False) -> Result:
        """Run ``argv`` to completion; ``TimeoutError`` (after killing it) past ``timeout``."""
        process = self.start(argv, stdin=input is not None, env=env, cwd=cwd)
        if input is not None:
            process.write(input)
            process.close_stdin()
        try:
            code = process.wait(timeout)
        except TimeoutError:
            process.signal(signals.SIGKILL)
            process.wait()
            raise TimeoutError(f"{self.name}: {' '.join(argv)} still ran after {timeout}s; "
                               "killed it") from None
        result = Result(code, process.stdout, process.stderr, process.seconds)
        if check and code != 0:
            raise CommandFailed(self.name, argv, result)
        return result

    def start(self, argv: Sequence[str], *, stdin: bool = False,
              env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Process:
        """Start ``argv`` in the background; ``env`` adds to the node's environment."""
        if isinstance(argv, (str, bytes)):
            raise TypeError(f"argv must be a list of arguments, not {argv!r}; "
                            "for a shell command use ['sh', '-c', ...]")
        argv = [str(a) for a in argv]
        if not argv:
            raise ValueError("argv is empty")
        logs = self._cluster.workdir / "logs" / self.name
        label = f"{next(self._started)}-{Path(argv[0]).name}"
        spec = ProcessSpec(argv=tuple(argv), env=None, extra_env=dict(env or {}),
                           cwd=Path(cwd) if cwd else self.root, stdout=logs / f"{label}.stdout",
                           stderr=logs / f"{label}.stderr", stdin=stdin)
        started = time.monotonic()
        return Process(self, argv, self._cluster._call(self._node.start(spec)), spec, started)

    def send_file(self, path: str | Path, data: bytes | str | os.PathLike, mode: int = 0o644) -> None:
        """Write ``data`` to ``path`` on the node: bytes, text, or a local file (a Path)."""
        source = data.encode() if isinstance(data, str) else data
        if isinstance(source, os.PathLike):
            source = Path(source)
        self._cluster._call(self._node.send_file(Path(path), source, mode))

    def read_file(self, path: str | Path) -> bytes:
        """Return the contents of ``path`` on the node."""
        return self._cluster._call(self._node.read_file(Path(path)))

    def dial(self, port: int, timeout: float = 10.0) -> socket.socket:
        """Return a socket connected to ``port`` on the node, from wherever it is."""
        return self._cluster._call(self._dial(port, timeout))

    async def _dial(self, port: int, timeout: float) -> socket.socket:
        reader, writer = await self._node.dial(port, timeout)
        mine, theirs = socket.socketpair()
        relay_reader, relay_writer = await asyncio.open_connection(sock=theirs)
        relay = asyncio.ensure_future(asyncio.gather(_pump(reader, relay_writer),
                                                     _pump(relay_reader, writer)))
        self._cluster._relays.add(relay)  # the loop keeps only weak references to tasks
        relay.add_done_callback(self._cluster._relays.discard)
        return mine


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(64 * 1024):
            sink.write(data)
            await sink.drain()
        if getattr(sink, "can_write_eof", lambda: False)():
            sink.write_eof()
        else:
            sink.close()
    except (OSError, asyncio.CancelledError):
        sink.close()


class Process:
    """A process started on a node, in a process group of its own."""

    def __init__(self, node: Node, argv: list[str], process: clusters.base.Process,
                 spec: ProcessSpec, started: float) -> None:
        self.node = node
        self.argv = argv
        self._process = process
        self._spec = spec
        self._started = started
        self._seconds: float | None = None

    def __repr__(self) -> str:
        state = "running" if self.exit_code is None else f"exit {self.exit_code}"
        return f"<Process {self.pid} {' '.join(self.argv)!r} on {self.node.name}: {state}>"

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def exit_code(self) -> int | None:
        """The exit code once it exited (negative: killed by that signal), else None."""
        return self._process.returncode

    @property
    def seconds(self) -> float:
        """How long it ran (so far)."""
        return self._seconds if self._seconds is not None else time.monotonic() - self._started

    @property
    def stdout(self) -> bytes:
        """What it wrote to stdout so far."""
        return _read(self._spec.stdout)

    @property
    def stderr(self) -> bytes:
        return _read(self._spec.stderr)

    def write(self, data: bytes) -> None:
        """Write to its stdin (start it with ``stdin=True``)."""
        self.node._cluster._call(self._process.write_stdin(data))

    def close_stdin(self) -> None:
        self.node._cluster._call(self._process.close_stdin())

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process and everything it started."""
        self.node._cluster._call(_sync(self._process.signal, sig))

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to exit and return the exit code; ``TimeoutError`` past ``timeout``."""
        code = self.node._cluster._call(self._process.wait(), timeout)
        if self._seconds is None:
            self._seconds = time.monotonic() - self._started
        return code

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited after ``grace`` seconds."""
        self.signal(signals.SIGTERM)
        try:
            return self.wait(grace)
        except TimeoutError:
            self.signal(signals.SIGKILL)
            return self.wait()


async def _sync(function, *args):
    return function(*args)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
