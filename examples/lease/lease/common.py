"""What the three lease services share: a JSON-over-HTTP server, a client call, a log.

Every endpoint takes and returns JSON. A route is a function from the decoded body
(``{}`` for a GET) to ``(status, answer)``, so each service is a small class plus a
table of routes.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = Callable[[Any], tuple[int, Any]]


class Unavailable(Exception):
    """A peer did not answer in time (down, paused or unreachable)."""


def log(message: str) -> None:
    """One line on stderr, which composer keeps per process (milliseconds: races show)."""
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
    print(f"lease {stamp} {message}", file=sys.stderr, flush=True)


def call(address: str, method: str, path: str, body: Any = None,
         timeout: float = 1.0) -> tuple[int, Any]:
    """Send one JSON request; return (status, decoded answer) or raise ``Unavailable``."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{address}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except (OSError, http.client.HTTPException, ValueError) as error:
        # refused, reset, timed out, or the peer died mid-answer
        raise Unavailable(f"{method} {address}{path}: {error}") from error


class JSONServer(ThreadingHTTPServer):
    """A threading HTTP server that sends each (method, path) to its route."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], routes: dict[tuple[str, str], Route]) -> None:
        super().__init__(address, _Handler)
        self.routes = routes

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up waiting (closed connection) is routine: one line, no trace."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log(f"{client_address[0]} hung up before the answer: {error}")
        else:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: JSONServer

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        route = self.server.routes.get((method, self.path))
        if route is None:
            self._send(404, {"error": f"no route {method} {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length)) if length else {}
        except ValueError as error:
            self._send(400, {"error": f"not JSON: {error}"})
            return
        self._send(*route(body))

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: one line per request would drown the interesting ones."""


def serve(listen: str, routes: dict[tuple[str, str], Route], what: str) -> None:
    """Serve ``routes`` on ``listen`` (HOST:PORT) until killed; SIGTERM exits cleanly."""
    host, port = listen.rsplit(":", 1)
    server = JSONServer((host, int(port)), routes)

    def graceful_stop(signum: int, frame: Any) -> None:
        log(f"{what} on {listen} stopping on SIGTERM")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, graceful_stop)
    log(f"{what} serving on {listen}")
    server.serve_forever()
