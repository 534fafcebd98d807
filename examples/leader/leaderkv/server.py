"""leaderkv's HTTP interface and command line.

Every answer is JSON. For clients and checks:

- ``GET /status`` -> ``{"node", "name", "index", "term", "role", "leader", "length",
  "last_term", "keys", "bug"}``; ``role`` is "leader", "follower" or "candidate"
- ``PUT /kv/<key>`` with ``{"value": "..."}`` -> the leader only (409 elsewhere, 503
  when it cannot get a majority); 200 ``{"ok", "index", "term", "stored", "degraded"}``
- ``GET /kv/<key>`` -> ``{"key", "value"}`` from any node (404 and null when absent;
  a follower may be behind)
- ``GET /dump`` -> the status plus ``"data"``, the whole map

Between nodes: ``POST /vote``, ``POST /append``, ``POST /timeout_now``, ``GET /log?from=N``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .node import Node
from .storage import log


class Server(ThreadingHTTPServer):
    """A threading HTTP server that carries the node."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], node: Node) -> None:
        super().__init__(address, Handler)
        self.node = node

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A peer that gave up waiting (closed connection) is routine: one line, no trace."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log(f"{client_address[0]} hung up before the answer: {error}")
        else:
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Routes the endpoints above to the node."""

    server: Server

    def do_GET(self) -> None:
        node = self.server.node
        url = urlsplit(self.path)
        if url.path == "/status":
            self._send(200, node.status())
        elif url.path == "/dump":
            self._send(200, node.dump())
        elif url.path == "/log":
            start = int(parse_qs(url.query).get("from", ["0"])[0])
            self._send(200, node.entries_from(start))
        elif url.path.startswith("/kv/"):
            key = unquote(url.path[len("/kv/"):])
            value = node.get(key)
            self._send(404 if value is None else 200, {"key": key, "value": value})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def do_PUT(self) -> None:
        if not self.path.startswith("/kv/"):
            self._send(404, {"error": f"no route {self.path}"})
            return
        key = unquote(self.path[len("/kv/"):])
        self._send(*self.server.node.write(key, str(self._body()["value"])))

    def do_POST(self) -> None:
        node = self.server.node
        routes = {"/vote": node.vote, "/append": node.append, "/timeout_now": node.timeout_now}
        route = routes.get(self.path)
        if route is None:
            self._send(404, {"error": f"no route {self.path}"})
        else:
            self._send(200, route(self._body()))

    def _body(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: one line per request would drown the interesting ones."""


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load the data directory and serve until killed."""
    parser = argparse.ArgumentParser(
        prog="leaderkv", description="A replicated key-value map with a moving leader.")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--peers", required=True, metavar="HOST[:PORT],...",
                        help="all nodes, in ring order (port defaults to --listen's)")
    parser.add_argument("--data", required=True, metavar="DIR", help="kept across restarts")
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    peers = [p if ":" in p else f"{p}:{port}" for p in args.peers.split(",") if p]
    me = f"{host}:{port}"
    if me not in peers:
        parser.error(f"--listen {me} is not one of --peers {','.join(peers)}")
    os.makedirs(args.data, exist_ok=True)
    bug = os.environ.get("LEADER_BUG", "1") != "0"
    node = Node(me, peers, args.data, bug)
    server = Server((host, int(port)), node)

    def stop(signum: int, frame: Any) -> None:
        """SIGTERM exits at once: everything is already on disk."""
        log(f"{me} stopping on SIGTERM")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    node.start()
    log(f"{me} serving at term {node.state.term} with {len(node.log)} entries, "
        f"planted bug {'on' if bug else 'off'}")
    server.serve_forever()
