"""The asyncio client of one agent: what the composer's remote backends call.

Imports aiohttp, ``composer_agent.tls``, ``composer_agent.errors``, ``composer_agent.network``, ``composer_agent.remote``,
``composer_agent.session``, ``composer_agent.tunnel`` and the standard library. One
``aiohttp.ClientSession`` per client, made on first use (inside the event loop), with
mutual TLS from ``certs.client_context``; processes run over one exec session
(``composer_agent.session``), opened on the first ``start`` and again after it dropped, so a
start costs no TLS handshake. Every failure is an ``AgentError``: the agent's own
``{"error": ...}`` message when it answered, an ``AgentUnreachable`` when it could not
be reached or the TLS handshake was refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

from composer_agent.tls import Credentials, client_context
from composer_agent.errors import AgentError, AgentUnreachable
from composer_agent.network import NodeNetwork
from composer_agent.protocol import CHUNK
from composer_agent.remote import RemoteProcess
from composer_agent.session import Channel, ExecSession
from composer_agent.tunnel import DialWriter, open_tunnel

__all__ = ["AgentClient", "AgentError", "AgentUnreachable", "RemoteProcess", "DialWriter"]

#: what takes a connection made to a port the agent listens on for composer
Connected = Callable[[asyncio.StreamReader, DialWriter], Awaitable[None]]

#: Seconds ``close`` waits for WebSocket connections to finish their TLS shutdown.
_SHUTDOWN = 2.0


class AgentClient:
    """A connection to the agent at ``url`` (like ``https://10.0.0.2:7800``).

    ``timeout`` bounds connecting and each wait for an answer, in seconds; it does not
    bound how long a started process or a tunnel may stay silent.
    """

    def __init__(self, url: str, credentials: Credentials, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._ssl = client_context(credentials)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._shutdowns: set[asyncio.Future] = set()
        self._exec: ExecSession | None = None
        self._opening = asyncio.Lock()

    async def close(self) -> None:
        """Close the session, for good; attached processes are killed by the agent, and
        later calls (also through a ``RemoteProcess``) raise AgentError."""
        self._closed = True
        if self._exec is not None:
            await self._exec.close(_SHUTDOWN)
        if self._session is not None:
            await self._session.close()
        if self._shutdowns:  # WebSocket connections still in their TLS shutdown
            await asyncio.wait(self._shutdowns, timeout=_SHUTDOWN)

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def heartbeat(self) -> dict:
        """Push the agent's deadline back; return its hostname, root, pid and timeout."""
        return await self._call("GET", "/v1/heartbeat")

    async def put_file(self, path: str, source: bytes | Path, mode: int = 0o644) -> None:
        """Write ``source`` (bytes, or a local file streamed in chunks) to ``path``."""
        params = {"path": path, "mode": f"{mode:o}"}
        if isinstance(source, (bytes, bytearray)):
            await self._call("PUT", "/v1/files", params=params, data=source)
            return
        with open(source, "rb") as file:  # a missing source fails here, as OSError
            await self._call("PUT", "/v1/files", params=params, data=_chunks(file))

    async def get_file(self, path: str, destination: Path) -> None:
        """Stream the agent's file ``path`` to ``destination`` (replaced once complete)."""
        destination = Path(destination)
        part = destination.with_name(f".{destination.name}.part")
        try:
            with open(part, "wb") as file, self._errors():
                async with self._http().get(self._at("/v1/files"),
                                            params={"path": path}) as response:
                    await _check(response)
                    async for chunk in response.content.iter_chunked(CHUNK):
                        await asyncio.to_thread(file.write, chunk)
            os.replace(part, destination)
        finally:
            part.unlink(missing_ok=True)

    async def put_tree(self, path: str, archive: bytes, digest: str) -> bool:
        """Make the agent's directory ``path`` hold exactly ``archive`` (a gzipped tar
        whose content ``digest`` names); return whether it had to unpack it."""
        answer = await self._call("PUT", "/v1/tree", params={"path": path, "digest": digest},
                                  data=archive)
        return bool(answer["unpacked"])

    async def tree(self, path: str) -> dict:
        """The files under the agent's directory ``path``: ``{"digest", "files":
        [{"path", "size"}]}``."""
        return await self._call("GET", "/v1/tree", params={"path": path})

    async def tail(self, path: str, offset: int) -> bytes:
        """The agent's file ``path`` from byte ``offset`` on."""
        with self._errors():
            async with self._http().get(self._at("/v1/tail"),
                                        params={"path": path, "offset": str(offset)}) as r:
                await _check(r)
                return await r.read()

    async def read_file(self, path: str) -> bytes:
        """Return the agent's file ``path`` (held in memory: for small files)."""
        with self._errors():
            async with self._http().get(self._at("/v1/files"), params={"path": path}) as r:
                await _check(r)
                return await r.read()

    async def start(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                    env_add: Mapping[str, str] | None = None,
                    cwd: str | None = None, stdout: Path | None = None,
                    stderr: Path | None = None, stdin: bool = False, detach: bool = False,
                    log_limit: int = 10 * 1024 * 1024, clock: str | None = None
                    ) -> RemoteProcess:
        """Start ``argv`` on the agent's node and return it once it runs.

        ``env`` replaces the agent's environment (None: keep it); ``env_add`` is set
        over that, so ``env=None, env_add={...}`` extends the agent's own.
        ``stdout``/``stderr`` are local files the output goes to, at most ``log_limit``
        bytes each (None: kept in memory, as ``stdout_bytes``/``stderr_bytes``).
        Attached processes die with their connection (the client's exec session);
        ``detach=True`` ones outlive it, with their output on the agent's node. ``clock`` names a file on the node whose offset (seconds, written
        with ``put_file``) moves the process's wall clock. Raises AgentError if the
        process cannot be started.
        """
        if detach and (stdin or stdout or stderr):
            raise ValueError("a detached process keeps its output on the agent and reads "
                             "no stdin: drop stdin=, stdout= and stderr=")
        request = {"argv": list(argv), "env": dict(env) if env is not None else None,
                   "env_add": dict(env_add) if env_add else None, "cwd": cwd,
                   "stdin": stdin, "detach": detach, "clock": clock}
        session = await self._exec_session()
        channel = None if detach else Channel(stdout, stderr, log_limit)
        pid = await session.start(request, channel)
        return RemoteProcess(channel, pid, stdin=stdin, poll=self.processes,
                             signal_by_pid=self.signal)

    async def processes(self) -> list[dict]:
        """Return ``{"pid", "argv", "running", "returncode", "detached"}`` for every
        process the agent started."""
        return await self._call("GET", "/v1/processes")

    async def signal(self, pid: int, sig: int) -> bool:
        """Send ``sig`` to the process group of ``pid``, a process this agent started;
        return whether any process of the group was there to get it."""
        reply = await self._call("POST", f"/v1/processes/{pid}/signal",
                                 json={"signal": int(sig)})
        return bool(reply.get("delivered"))

    async def shape_network(self, view: NodeNetwork) -> None:
        """Make the agent's machine enforce ``view`` (an empty one heals everything)."""
        await self._call("POST", "/v1/network", json=dataclasses.asdict(view))

    async def dial(self, port: int, host: str = "127.0.0.1"
                   ) -> tuple[asyncio.StreamReader, DialWriter]:
        """Open a TCP connection from the agent to ``host:port`` (on its node); raise
        AgentError if the agent cannot connect."""
        ws = await self._connect("/v1/dial", params={"port": str(port), "host": host})
        try:
            with self._errors():
                await self._answer(ws, "dialed")
        except BaseException:
            await ws.close()
            raise
        return open_tunnel(ws)

    async def listen(self, port: int, on_connection: Connected, host: str = "127.0.0.1"
                     ) -> asyncio.Task:
        """Have the agent listen on ``host:port`` of its node and hand each connection
        made there to ``on_connection(reader, writer)``; return the task serving them
        (cancel it to close the port). AgentError if the agent cannot listen there."""
        ws = await self._connect("/v1/listen", params={"port": str(port), "host": host})
        try:
            with self._errors():
                await self._answer(ws, "listening")
        except BaseException:
            await ws.close()
            raise
        return asyncio.ensure_future(self._take_connections(ws, on_connection))

    async def _take_connections(self, ws: aiohttp.ClientWebSocketResponse,
                                on_connection: Connected) -> None:
        handlers: set[asyncio.Task] = set()
        try:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                key = json.loads(message.data).get("accepted")
                if key is None:
                    continue
                task = asyncio.ensure_future(self._take(str(key), on_connection))
                handlers.add(task)
                task.add_done_callback(handlers.discard)
        finally:
            for task in handlers:
                task.cancel()
            await ws.close()

    async def _take(self, key: str, on_connection: Connected) -> None:
        try:
            ws = await self._connect("/v1/accepted", params={"id": key})
            with self._errors():
                await self._answer(ws, "dialed")
        except (AgentError, OSError):
            return  # the node's client gave up already
        reader, writer = open_tunnel(ws)
        try:
            await on_connection(reader, writer)
        finally:
            writer.close()

    async def _exec_session(self) -> ExecSession:
        """Return the exec session, opened on first use and again once it closed."""
        async with self._opening:  # concurrent first starts share one
            if self._exec is None or not self._exec.open:
                self._exec = ExecSession(await self._connect("/v1/session"), self.url,
                                         self._timeout)
            return self._exec

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise AgentError(f"{self.url}: this AgentClient is closed; make a new one")
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout,
                                            sock_read=self._timeout)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=0), timeout=timeout)
        return self._session

    def _at(self, endpoint: str) -> str:
        return self.url + endpoint

    async def _call(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        with self._errors():
            async with self._http().request(method, self._at(endpoint), **kwargs) as response:
                await _check(response)
                return await response.json()

    async def _connect(self, endpoint: str, **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        with self._errors():
            ws = await self._http().ws_connect(self._at(endpoint), **kwargs)
        closed = _connection_closed(ws)
        if closed is not None:
            self._shutdowns.add(closed)
            closed.add_done_callback(_seen)
            closed.add_done_callback(self._shutdowns.discard)
        return ws

    async def _answer(self, ws: aiohttp.ClientWebSocketResponse, key: str) -> dict:
        """Return the agent's first message on ``ws``; AgentError if it is an error."""
        message = await ws.receive(timeout=self._timeout)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise AgentError(f"{self.url}: the agent closed the connection without answering")
        answer = json.loads(message.data)
        if key not in answer:
            raise AgentError(f"{self.url}: {answer.get('error', answer)}")
        return answer

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn aiohttp, TLS and socket failures into AgentError / AgentUnreachable."""
        try:
            yield
        except aiohttp.WSServerHandshakeError as exc:
            raise AgentError(f"{self.url}: {exc.status} {exc.message}",
                             status=exc.status) from exc
        except (aiohttp.ClientError, ssl.SSLError, ConnectionError, asyncio.TimeoutError) as exc:
            raise AgentUnreachable(f"{self.url}: {type(exc).__name__}: {exc}") from exc


def _seen(closed: asyncio.Future) -> None:
    """A TLS shutdown that failed (the far end closed first) is no news: retrieve it, so
    asyncio does not report it as never retrieved."""
    if not closed.cancelled():
        closed.exception()


def _connection_closed(ws: aiohttp.ClientWebSocketResponse) -> asyncio.Future | None:
    """Return the future aiohttp sets once the connection under ``ws`` is closed.

    A WebSocket's connection leaves the session's pool, so closing the session does not
    wait for its TLS shutdown; ``close`` waits on this instead, lest a loop that ends
    right after leave the socket open. aiohttp keeps the path to it private: None if it
    moved.
    """
    protocol = getattr(getattr(ws, "_conn", None), "protocol", None)
    closed = getattr(protocol, "closed", None)
    return closed if isinstance(closed, asyncio.Future) else None


async def _check(response: aiohttp.ClientResponse) -> None:
    """Raise AgentError with the agent's message if ``response`` is not a success."""
    if response.status < 400:
        return
    try:
        error = (await response.json(content_type=None))["error"]
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        error = response.reason
    raise AgentError(f"{response.url.path}: {response.status} {error}",
                     status=response.status)


async def _chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    """Yield ``file`` a chunk at a time, reading off the event loop."""
    while chunk := await asyncio.to_thread(file.read, CHUNK):
        yield chunk
