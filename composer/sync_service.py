"""The sync service: Testground's sync-service protocol over WebSocket, for every node.

Wire format (testground/sync-service ``types.go``, ``connection.go``): one JSON text
message per request, ``{"id": "3", "is_cancel": false, "publish": {"topic", "payload"}}``
(or ``subscribe: {topic}``, ``barrier: {state, target}``, ``signal_entry: {state}``),
and per response every key: ``{"id", "error", "publish": {"seq"} | null, "subscribe":
"<payload as a JSON string>" | "", "signal_entry": {"seq"} | null}``. A barrier answers
once when released; a subscription answers once per message under its request's id;
errors are a string in ``error``. Unlike Testground's own server, ``is_cancel`` really
ends a subscription. Any path is accepted, as Testground's server does, so a Testground
client (``ws://SYNC_SERVICE_HOST:SYNC_SERVICE_PORT``) connects unchanged. Imports
sync_state; ``websockets`` when started.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from composer.errors import ConfigError
from composer.sync_state import SyncError, SyncState

__all__ = ["SyncService", "response"]


def response(request_id: str, error: str = "", publish: Any = None, subscribe: str = "",
             signal_entry: Any = None) -> str:
    """One response as Testground's server writes it: every key present."""
    return json.dumps({"id": request_id, "error": error, "publish": publish,
                       "subscribe": subscribe, "signal_entry": signal_entry})


class SyncService:
    """A websockets server over one ``SyncState``, in the caller's event loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 state: SyncState | None = None) -> None:
        self.host, self.port = host, port
        self.state = state or SyncState()
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self, sock: socket.socket | None = None) -> SyncService:
        """Listen on ``host:port``, or on ``sock`` (bound where the nodes reach it: in
        the hub namespace of a netns cluster, say)."""
        try:
            from websockets.asyncio.server import serve
        except ImportError:  # a dependency: missing only from a hand-made environment
            raise ConfigError("the sync service needs the websockets package (a dependency "
                              "of composer-dst): pip install 'websockets>=12'") from None

        where: dict[str, Any] = {"sock": sock} if sock else {"host": self.host, "port": self.port}
        self._server = await serve(self._connection, max_size=16 << 20, compression=None,
                                   **where)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SyncService:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _connection(self, socket: Any) -> None:
        """Serve one client: each request in a task of its own (a barrier waits while
        the same client publishes), all of them ended when the client goes."""
        tasks: dict[str, asyncio.Task] = {}
        send_lock = asyncio.Lock()

        async def send(text: str) -> None:
            async with send_lock:
                await socket.send(text)

        try:
            async for message in socket:
                try:
                    request = json.loads(message)
                    request_id = str(request["id"])
                except (ValueError, KeyError, TypeError):
                    await send(response("", error=f"not a sync request: {str(message)[:200]}"))
                    continue
                if request.get("is_cancel"):
                    task = tasks.pop(request_id, None)
                    if task is not None:
                        task.cancel()
                    continue
                task = asyncio.create_task(self._serve(request, request_id, send))
                tasks[request_id] = task
                task.add_done_callback(lambda t, key=request_id: tasks.pop(key, None)
                                       if tasks.get(key) is t else None)
        except Exception:  # a client gone mid-message: its requests end below
            pass
        finally:
            for task in tasks.values():
                task.cancel()

    async def _serve(self, request: dict, request_id: str, send) -> None:
        try:
            if isinstance(request.get("publish"), dict):
                body = request["publish"]
                seq = self.state.publish(_key(body, "topic"), body.get("payload"))
                await send(response(request_id, publish={"seq": seq}))
            elif isinstance(request.get("signal_entry"), dict):
                seq = self.state.signal_entry(_key(request["signal_entry"], "state"))
                await send(response(request_id, signal_entry={"seq": seq}))
            elif isinstance(request.get("barrier"), dict):
                body = request["barrier"]
                target = body.get("target", 0)
                if not isinstance(target, int) or isinstance(target, bool):
                    raise SyncError(f"barrier target must be a whole number, not {target!r}")
                await self.state.barrier(_key(body, "state"), target)
                await send(response(request_id))
            elif isinstance(request.get("subscribe"), dict):
                async for payload in self.state.subscribe(_key(request["subscribe"], "topic")):
                    await send(response(request_id, subscribe=json.dumps(payload)))
            else:
                raise SyncError("a request needs one of publish, subscribe, barrier, "
                                "signal_entry")
        except SyncError as exc:
            await send(response(request_id, error=str(exc)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection is gone, or a bug: never the service
            try:
                await send(response(request_id, error=f"sync service: {exc!r}"))
            except Exception:
                pass


def _key(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise SyncError(f"{name!r} must be a non-empty string, not {value!r}")
    return value
