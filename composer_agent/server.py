"""The agent's HTTPS server: the route table, its state, and ``serve``.

Imports aiohttp, the ``agent`` modules below and the standard library. ``make_app``
builds the application (routes and state, no sockets); ``serve`` binds it with mutual
TLS, announces itself, and runs until SIGTERM/SIGINT or until the heartbeat expires.
Whichever ends it, every process group the agent started is killed first. Errors are
JSON ``{"error": "..."}`` with the HTTP status that fits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from composer_agent import clock, dial, files, listen, streaming, trees
from composer_agent.tls import Credentials, server_context
from composer_agent.heartbeat import Heartbeat
from composer_agent.network import NetworkFaults, NodeNetwork, packet_kinds
from composer_agent.processes import ProcessTable
from composer_agent.protocol import VERSION

__all__ = ["AgentState", "make_app", "serve"]


@dataclasses.dataclass
class AgentState:
    """What the handlers share: the root directory, the processes, the heartbeat."""

    root: Path
    processes: ProcessTable
    heartbeat: Heartbeat
    hostname: str = dataclasses.field(default_factory=socket.gethostname)
    network: NetworkFaults = dataclasses.field(default_factory=NetworkFaults)
    #: Open exec session and dial WebSockets, closed at shutdown.
    sessions: set[web.WebSocketResponse] = dataclasses.field(default_factory=set)
    tunnels: set[web.WebSocketResponse] = dataclasses.field(default_factory=set)
    #: connections to a listened port, waiting for composer to take them
    accepted: listen.Accepted = dataclasses.field(default_factory=dict)


STATE = web.AppKey("state", AgentState)


def _state(request: web.Request) -> AgentState:
    return request.app[STATE]


async def _heartbeat(request: web.Request) -> web.Response:
    state = _state(request)
    state.heartbeat.beat()
    return web.json_response({"ok": True, "hostname": state.hostname, "root": str(state.root),
                              "pid": os.getpid(), "timeout": state.heartbeat.timeout,
                              "version": VERSION, "faults": _fault_kinds()})


def _fault_kinds() -> list[str]:
    """The faults this machine can apply: clock with libfaketime; network faults as root
    with nft and tc (packet faults with netem or the packet shaper)."""
    kinds = ["clock"] if clock.missing() is None else []
    if os.geteuid() != 0 or not all(map(shutil.which, ("nft", "tc", "ip"))):
        return kinds
    return kinds + ["partition", "loss", "bandwidth", *sorted(packet_kinds())]


async def _network(request: web.Request) -> web.Response:
    try:
        view = NodeNetwork.from_json(await request.json())
    except ValueError as exc:
        raise web.HTTPBadRequest(reason=f"network: {exc}")
    try:
        await _state(request).network.apply(view)
    except RuntimeError as exc:
        raise web.HTTPConflict(reason=f"network: {exc}")
    return web.json_response({"ok": True})


async def _session(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    return await streaming.handle(request, state.processes, state.sessions)


async def _dial(request: web.Request) -> web.StreamResponse:
    return await dial.handle(request, _state(request).tunnels)


async def _listen(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    return await listen.handle_listen(request, state.accepted, state.tunnels)


async def _accepted(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    return await listen.handle_accepted(request, state.accepted, state.tunnels)


async def _processes(request: web.Request) -> web.Response:
    return web.json_response(_state(request).processes.describe())


async def _signal(request: web.Request) -> web.Response:
    table = _state(request).processes
    try:
        pid = int(request.match_info["pid"])
    except ValueError:
        raise web.HTTPNotFound(reason=f"pid={request.match_info['pid']!r} is not a pid")
    started = table.get(pid)
    if started is None:
        raise web.HTTPNotFound(reason=f"pid {pid} was not started by this agent")
    try:
        number = (await request.json())["signal"]
        sig = signal.Signals(number)
    except (ValueError, KeyError, TypeError):
        raise web.HTTPBadRequest(reason='give {"signal": N} with N a signal number')
    return web.json_response({"ok": True, "delivered": table.signal(started, sig)})


#: The route table: every endpoint of the agent, in one place.
ROUTES = [
    web.get("/v1/heartbeat", _heartbeat),
    web.put("/v1/files", files.put),
    web.get("/v1/files", files.get),
    web.put("/v1/tree", trees.put_tree),
    web.get("/v1/tree", trees.list_tree),
    web.get("/v1/tail", trees.tail),
    web.get("/v1/session", _session),
    web.get("/v1/processes", _processes),
    web.post("/v1/processes/{pid}/signal", _signal),
    web.get("/v1/dial", _dial),
    web.get("/v1/listen", _listen),
    web.get("/v1/accepted", _accepted),
    web.post("/v1/network", _network),
]


@web.middleware
async def _json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Answer every failure as JSON ``{"error": ...}``, keeping its HTTP status."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason}, status=exc.status)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception as exc:  # a bug: say what, keep serving
        print(f"composer-agent: {request.method} {request.path}: {exc!r}", file=sys.stderr)
        return web.json_response({"error": f"internal error: {exc!r}"}, status=500)


async def _close_sockets(app: web.Application) -> None:
    for ws in [*app[STATE].sessions, *app[STATE].tunnels]:
        await ws.close(code=1001, message=b"agent shutting down")


def make_app(state: AgentState) -> web.Application:
    """Return the agent's application over ``state``."""
    app = web.Application(middlewares=[_json_errors])
    app[STATE] = state
    app.add_routes(ROUTES)
    app.on_shutdown.append(_close_sockets)
    return app


async def serve(listen_host: str, listen_port: int, credentials: Credentials, *, root: Path,
                heartbeat_timeout: float, poweroff: bool = False) -> int:
    """Serve until SIGTERM/SIGINT or heartbeat loss; return the exit status.

    Prints ``composer-agent listening on https://HOST:PORT`` (the bound port) once
    connections are accepted. Raises OSError if the address cannot be bound.
    """
    state = AgentState(root=root, processes=ProcessTable(root),
                       heartbeat=Heartbeat(heartbeat_timeout))
    runner = web.AppRunner(make_app(state), handle_signals=False, access_log=None,
                           shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, listen_host, listen_port,
                           ssl_context=server_context(credentials))
        await site.start()
        host = f"[{listen_host}]" if ":" in listen_host else listen_host
        print(f"composer-agent listening on https://{host}:{site.port}", flush=True)
        why = await _until_stopped(state.heartbeat)
        killed = state.processes.kill_all()
        print(f"composer-agent: {why}; killed {killed} running process(es)",
              file=sys.stderr, flush=True)
        await state.processes.wait_all(timeout=5.0)
        for _ in range(40):  # let exec sessions send the exit codes of what was killed
            if not streaming.busy(state.sessions):
                break
            await asyncio.sleep(0.05)
    finally:
        state.processes.kill_all()
        await state.network.clear()
        await runner.cleanup()
    if why == "heartbeat lost" and poweroff:
        return _poweroff()
    return 0


async def _until_stopped(heartbeat: Heartbeat) -> str:
    """Return why the agent stops: SIGTERM/SIGINT, or no heartbeat for its timeout."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    stopped = asyncio.ensure_future(stop.wait())
    expired = asyncio.ensure_future(heartbeat.expired())
    try:
        await asyncio.wait([stopped, expired], return_when=asyncio.FIRST_COMPLETED)
        return "stopped" if stopped.done() else "heartbeat lost"
    finally:
        stopped.cancel()
        expired.cancel()


def _poweroff() -> int:
    """Power the node off (the run's composer is gone); return 1 if that failed."""
    print("composer-agent: powering off", file=sys.stderr, flush=True)
    try:
        subprocess.run(["poweroff"], check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"composer-agent: poweroff failed: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0

