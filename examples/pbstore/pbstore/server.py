"""pbstore's HTTP interface and command line.

Every answer is JSON:

- ``GET /status`` -> ``{"node", "index", "epoch", "role": "primary"|"backup", "primary",
  "ready", "eligible", "seq", "keys", "bug"}``; ``ready`` is true for a confirmed
  primary and for a backup that is caught up with it
- ``GET /kv/<key>`` -> ``{"key", "value", "epoch"}`` (404 with ``"value": null`` when absent)
- ``PUT /kv/<key>`` with ``{"value": "..."}`` -> the primary only: 200 ``{"ok": true,
  "seq", "epoch", "degraded", "timed_out"}`` once acknowledged; 409 on a backup (with
  ``"primary"``), 503 when the write is not acknowledged (``"error"`` says why)
- ``GET /dump`` -> ``{"epoch", "seq", "data"}``: the whole map, for the checks
- ``GET /log?from=N`` -> the status plus ``"entries"``: the log from entry N + 1 on
- ``POST /replicate`` with ``{"epoch", "entries"}`` -> from the primary of ``epoch``
- ``POST /epoch`` with ``{"epoch"}`` -> a promoted backup announcing its epoch
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

from .node import Node, log


class PBServer(ThreadingHTTPServer):
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
    """Routes the few endpoints above to the node."""

    server: PBServer

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
            self._send(404 if value is None else 200,
                       {"key": key, "value": value, "epoch": node.epoch})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def do_PUT(self) -> None:
        if not self.path.startswith("/kv/"):
            self._send(404, {"error": f"no route {self.path}"})
            return
        key = unquote(self.path[len("/kv/"):])
        self._send(*self.server.node.put(key, str(self._body()["value"])))

    def do_POST(self) -> None:
        node = self.server.node
        body = self._body()
        if self.path == "/replicate":
            answer = node.replicate(int(body["epoch"]), body["entries"])
            self._send(200 if answer["ok"] else 409, answer)
        elif self.path == "/epoch":
            node.learn_epoch(int(body["epoch"]))
            self._send(200, {"epoch": node.epoch})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def _body(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

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
        prog="pbstore", description="A primary-backup key-value store (see README.md).")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--peers", required=True, metavar="HOST[:PORT],...",
                        help="all nodes in order, the first is the primary of epoch 1 "
                        "(port defaults to --listen's)")
    parser.add_argument("--data", required=True, metavar="DIR", help="kept across restarts")
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    peers = [p if ":" in p else f"{p}:{port}" for p in args.peers.split(",") if p]
    me = f"{host}:{port}"
    if me not in peers:
        parser.error(f"--listen {me} is not one of --peers {','.join(peers)}")
    os.makedirs(args.data, exist_ok=True)
    bug = os.environ.get("PBSTORE_BUG", "1") != "0"
    server = PBServer((host, int(port)), Node(me, peers, args.data, bug))

    def stop(signum: int, frame: Any) -> None:
        """SIGTERM: everything is on disk already, so just go."""
        log(f"{me} stopping on SIGTERM")
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    log(f"{me} serving, epoch {server.node.epoch}, planted bug {'on' if bug else 'off'}")
    server.serve_forever()
